/**
 * The gateway-side packet trace: --trace-client and the admin API's trace routes on a real bridge with
 * real UDP devices, and the trace's bounds (devices, ring, log lines per second) with a manual clock.
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { test, type TestContext } from 'node:test';
import pino from 'pino';
import { encode } from '../src/codec/index.js';
import { loadConfig } from '../src/config/load.js';
import type { Peer } from '../src/gateway/peer.js';
import { MAX_HEX_BYTES, PacketTrace } from '../src/gateway/trace.js';
import { ManualClock } from '../src/time.js';
import { startRig, TOKEN } from './support/admin-rig.js';

type Line = Record<string, unknown>;

function memoryLog(level = 'info'): { log: pino.Logger; lines: Line[] } {
  const lines: Line[] = [];
  return {
    log: pino({ level }, { write: (line: string) => void lines.push(JSON.parse(line) as Line) }),
    lines,
  };
}

/** A bridge with the admin API on (the trace routes) and `extraArgs`. */
const startBridge = (t: TestContext, extraArgs: string[]) =>
  startRig(t, ['--admin-token', TOKEN, ...extraArgs]);

const traceLines = (lines: Line[], clientId: string): Line[] =>
  lines.filter((l) => l.clientId === clientId && typeof l.msg === 'string' && l.msg.startsWith('trace: '));

test('a device traced through the admin API before it connects: every datagram both ways, decoded and in hex, in the log and the ring', async (t) => {
  const { lines, device, api } = await startBridge(t, []);
  const on = await api('PUT', '/admin/traces/field-7');
  assert.equal(on.status, 200);
  const traced = await device('field-7');
  const other = await device('field-8');
  await traced.connect();
  await other.connect();
  await traced.publish({ type: 'short', name: 'ab' }, Buffer.from('hi'), { qos: 1 });
  await traced.ping();
  await other.ping();

  const body = (await (await api('GET', '/admin/traces/field-7')).json()) as {
    packets: Array<{ direction: string; type: string; hex: string; address: string; packet: Line }>;
  };
  assert.deepEqual(
    body.packets.map((p) => `${p.direction} ${p.type}`),
    ['in CONNECT', 'out CONNACK', 'in PUBLISH', 'out PUBACK', 'in PINGREQ', 'out PINGRESP'],
  );
  const connack = body.packets[1]!;
  assert.equal(connack.hex, Buffer.from(encode({ type: 'CONNACK', returnCode: 0 })).toString('hex'));
  assert.deepEqual(connack.packet, { type: 'CONNACK', returnCode: 0 });
  const publish = body.packets[2]!;
  assert.equal(publish.packet.data, Buffer.from('hi').toString('hex'), 'byte fields as hex (JSON-safe)');
  assert.equal(publish.packet.qos, 1);
  assert.match(publish.address, /^127\.0\.0\.1:\d+$/);

  // The same six in the log at info, with clientId and address in the context; nothing of field-8.
  const logged = traceLines(lines, 'field-7');
  assert.deepEqual(
    logged.map((l) => `${String(l.direction)} ${String(l.type)}`),
    body.packets.map((p) => `${p.direction} ${p.type}`),
  );
  assert.ok(
    logged.every((l) => l.level === 30 && l.address === publish.address && typeof l.hex === 'string'),
  );
  assert.deepEqual(traceLines(lines, 'field-8'), []);

  const list = (await (await api('GET', '/admin/traces')).json()) as { traced: Line[]; max: number };
  assert.deepEqual(list, { max: 32, traced: [{ clientId: 'field-7', configured: false, packets: 6 }] });
  const sessions = (await (await api('GET', '/admin/sessions')).json()) as { sessions: Line[] };
  assert.deepEqual(sessions.sessions.map((s) => [s.clientId, s.traced]).sort(), [
    ['field-7', true],
    ['field-8', false],
  ]);

  assert.equal((await api('DELETE', '/admin/traces/field-7')).status, 200);
  const before = traceLines(lines, 'field-7').length;
  await traced.ping();
  assert.equal(traceLines(lines, 'field-7').length, before, 'nothing logged once the trace is off');
  assert.equal((await api('GET', '/admin/traces/field-7')).status, 404);
});

test('--trace-client traces from the start; a SIGHUP reload with another id moves the trace, API-set traces stay', async (t) => {
  const { bridge, lines, device, api, args } = await startBridge(t, ['--trace-client', 'dev-a']);
  const a = await device('dev-a');
  const b = await device('dev-b');
  const c = await device('dev-c');
  await a.connect();
  await b.connect();
  assert.deepEqual(
    traceLines(lines, 'dev-a').map((l) => l.type),
    ['CONNECT', 'CONNACK'],
  );
  assert.equal((await api('PUT', '/admin/traces/dev-c')).status, 200);

  const { applied } = bridge.reload(
    await loadConfig({ argv: [...args.slice(0, -2), '--trace-client', 'dev-b'], env: {} }), // dev-a out, dev-b in
  );
  assert.deepEqual(applied, ['traceClients']);
  await a.ping();
  await b.ping();
  await c.connect();
  assert.deepEqual(
    traceLines(lines, 'dev-a').map((l) => l.type),
    ['CONNECT', 'CONNACK'],
  );
  assert.deepEqual(
    traceLines(lines, 'dev-b').map((l) => l.type),
    ['PINGREQ', 'PINGRESP'],
  );
  assert.deepEqual(
    traceLines(lines, 'dev-c').map((l) => l.type),
    ['CONNECT', 'CONNACK'],
  );
});

test('the trace is bounded: devices traced, datagrams kept per device, hex per datagram, log lines per second', async (t) => {
  const clock = new ManualClock();
  const { log, lines } = memoryLog();
  const trace = new PacketTrace(log, clock, { maxClients: 2, ringSize: 5, logLinesPerSecond: 3 });
  const socket = dgram.createSocket('udp4');
  t.after(() => socket.close());
  const peer: Peer = { socket, address: '127.0.0.1', port: 40000, key: '127.0.0.1|40000' };

  assert.equal(trace.on('a'), 'on');
  assert.equal(trace.on('b'), 'on');
  assert.equal(trace.on('c'), 'full');
  assert.equal(trace.on('a'), 'already');
  assert.deepEqual(trace.configure(['x']), ['x'], 'configured ids past the bound are named');

  const ping = { type: 'PINGREQ' } as const;
  for (let i = 0; i < 8; i++) trace.packet('in', peer, encode(ping), ping, 'a');
  assert.equal(trace.recent('a')!.length, 5);
  // 3 lines this second; the other 5 are counted, summarised once the next second starts.
  assert.equal(traceLines(lines, 'a').length, 3);
  assert.equal(trace.suppressedLines, 5);
  clock.advance(1000);
  trace.packet('out', peer, encode({ type: 'PINGRESP' }), { type: 'PINGRESP' }, 'a');
  const summary = traceLines(lines, 'a').at(-2)!;
  assert.equal(summary.suppressed, 5);
  assert.equal(traceLines(lines, 'a').at(-1)!.type, 'PINGRESP');
  assert.equal(trace.recent('a')!.at(-1)!.type, 'PINGRESP', 'the ring is oldest first, newest last');

  const data = new Uint8Array(2000).fill(0xab);
  const big = {
    type: 'PUBLISH',
    dup: false,
    qos: 0,
    retain: false,
    topicIdType: 'short',
    topicId: 1,
    msgId: 0,
    data,
  } as const;
  trace.packet('out', peer, encode(big), big, 'b');
  const [entry] = trace.recent('b')!;
  assert.equal(entry!.length, encode(big).length);
  assert.equal(entry!.hex.length, MAX_HEX_BYTES * 2 + 3, 'hex cut at MAX_HEX_BYTES, marked with ...');
  assert.equal(String(entry!.packet.data).length, MAX_HEX_BYTES * 2 + 3);

  assert.equal(trace.off('a'), true);
  assert.equal(trace.recent('a'), undefined);
  assert.equal(trace.on('c'), 'on', 'room again once one is off');
});
