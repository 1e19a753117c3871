/**
 * journald priorities: under systemd (JOURNAL_STREAM names the process's stdout) every JSON line
 * starts with an sd-daemon "<N>" prefix that follows the pino level, so journald files warnings as
 * warnings and `journalctl -p warning` works. Elsewhere stdout stays plain JSON.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePort, waitUntil, withTempDir } from './helpers/index.js';
import { journalPriority } from '../src/observe/logger.js';

const CLI = fileURLToPath(new URL('../src/cli.ts', import.meta.url));

/** The gateway with stdout into a file, against a broker port nobody listens on (so it warns). */
async function runGateway(
  dir: string,
  name: string,
  env: (stdout: number) => NodeJS.ProcessEnv,
  args: string[] = [],
): Promise<string> {
  const file = join(dir, `${name}.log`);
  const fd = openSync(file, 'w');
  const deadPort = await freePort();
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      CLI,
      '--broker',
      `mqtt://127.0.0.1:${deadPort}`,
      '--reconnect-initial',
      '50',
      '--listen',
      '127.0.0.1:0',
      '--data-dir',
      join(dir, name),
      ...args,
    ],
    {
      env: { ...process.env, MQTTSN_BRIDGE_LOG_LEVEL: 'debug', ...env(fd) },
      stdio: ['ignore', fd, 'inherit'],
    },
  );
  closeSync(fd);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await waitUntil(
    () => {
      const text = readFileSync(file, 'utf8');
      return /"level":40/.test(text) && text.includes('mqttsn-bridge ready');
    },
    { timeoutMs: 20_000, description: `a warning and the ready line in ${file}` },
  );
  child.kill('SIGTERM');
  assert.equal(await exited, 0);
  return readFileSync(file, 'utf8');
}

test('under journald (JOURNAL_STREAM is stdout) each line carries the priority of its level', async (t) => {
  const dir = withTempDir(t, 'mqttsn-journal-');
  const out = await runGateway(dir, 'journal', (fd) => {
    const stat = fstatSync(fd);
    return { JOURNAL_STREAM: `${stat.dev}:${stat.ino}` };
  });
  const lines = out.trim().split('\n');
  for (const line of lines) {
    const match = /^<(\d)>(\{"level":(\d+).*)$/.exec(line);
    assert.ok(match, `prefixed JSON: ${line}`);
    assert.equal(Number(match[1]), journalPriority(Number(match[3])));
    JSON.parse(match[2]!);
  }
  assert.ok(
    lines.some((l) => l.startsWith('<4>{"level":40')),
    'a warning at priority 4',
  );
  assert.ok(
    lines.some((l) => l.startsWith('<6>{"level":30')),
    'info at priority 6',
  );
});

test('elsewhere (no JOURNAL_STREAM, or one naming another stream) stdout is plain JSON; --log-format journal forces it', async (t) => {
  const dir = withTempDir(t, 'mqttsn-journal-');
  const plain = await runGateway(dir, 'plain', () => ({ JOURNAL_STREAM: '1:2' }));
  for (const line of plain.trim().split('\n')) assert.match(line, /^\{"level":\d+/);
  const forced = await runGateway(dir, 'forced', () => ({ JOURNAL_STREAM: '' }), ['--log-format', 'journal']);
  for (const line of forced.trim().split('\n')) assert.match(line, /^<\d>\{"level":\d+/);
});

test('priorities: trace and debug 7, info 6, warn 4, error 3, fatal 2', () => {
  assert.deepEqual([10, 20, 30, 40, 50, 60].map(journalPriority), [7, 7, 6, 4, 3, 2]);
});
