/**
 * SIGKILL a process that is appending to the outbox: every message it acknowledged (commit callback
 * fired, printed before the kill) must be on disk after reopening, in order.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import pino from 'pino';
import { openStore } from '../src/store/db.js';
import { Outbox } from '../src/store/outbox.js';
import { withTempDir } from './helpers/tmp.js';
import { waitUntil } from './helpers/wait.js';

const writerScript = fileURLToPath(new URL('./scripts/outbox-writer.ts', import.meta.url));

interface Acked {
  seq: number;
  device: number;
  counter: number;
}

async function killMidStream(dir: string, minAcked: number): Promise<Acked[]> {
  const child = spawn(process.execPath, ['--import', 'tsx', writerScript, dir], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<NodeJS.Signals | null>((resolve) =>
    child.once('exit', (_code, signal) => resolve(signal)),
  );
  try {
    await waitUntil(() => stdout.split('\n').length > minAcked + 2 || child.exitCode !== null, {
      timeoutMs: 20_000,
      description: `${minAcked} acknowledged appends`,
    });
  } finally {
    child.kill('SIGKILL');
  }
  assert.equal(await exited, 'SIGKILL', `writer died on its own: ${stderr}`);
  // Only complete lines: the kill may cut the last one.
  const lines = stdout.split('\n').slice(0, -1);
  assert.equal(lines.shift(), 'ready');
  return lines.map((line) => {
    const [seq, device, counter] = line.split(' ').map(Number);
    return { seq: seq!, device: device!, counter: counter! };
  });
}

test('every acknowledged append survives SIGKILL, in order', async (t) => {
  const dir = withTempDir(t, 'outbox-crash-');
  const acked: Acked[] = [];
  for (let round = 0; round < 2; round++) acked.push(...(await killMidStream(dir, 3000)));

  const store = await openStore(dir);
  t.after(() => store.close());
  const outbox = await Outbox.open(store, { gatewayId: 'crash', logger: pino({ level: 'silent' }) });
  t.after(() => outbox.close());
  const entries = await outbox.read(0, Number.MAX_SAFE_INTEGER);
  const bySeq = new Map(entries.map((entry) => [entry.seq, entry]));

  const missing = acked.filter((a) => !bySeq.has(a.seq));
  assert.deepEqual(missing, [], `${missing.length} acknowledged messages lost`);
  for (const a of acked) assert.equal(bySeq.get(a.seq)!.payload.toString(), `${a.device}:${a.counter}`);

  // In order: seqs strictly increase, and each device's counters increase along them.
  const lastCounter = new Map<string, number>();
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i]!;
    if (i > 0) assert.ok(entry.seq > entries[i - 1]!.seq);
    const [device, counter] = entry.payload.toString().split(':').map(Number);
    const previous = lastCounter.get(`${device}`) ?? -1;
    lastCounter.set(`${device}`, counter!);
    // A second run restarts each device at counter 0, so only compare within a run.
    if (counter! > 0) assert.ok(counter! > previous, `device ${device}: ${counter} after ${previous}`);
  }
  // Both runs' sequence numbers continue, never reused.
  assert.equal(new Set(acked.map((a) => a.seq)).size, acked.length);
  t.diagnostic(
    `acknowledged ${acked.length}, on disk ${entries.length} (unacknowledged but written: ${entries.length - acked.length})`,
  );
});
