/**
 * Bad days (issue 9): acknowledgements stay true and the gateway recovers by itself — a store that fails
 * on purpose, SIGTERM under load and with a half-open broker link, a full disk, start-up errors, a taken
 * port. Real processes throughout: UDP on 127.0.0.1, LevelDB, Mosquitto, the CLI as a child.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { mkdtempSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import pino from 'pino';
import { createBridge, type Bridge, type BridgeParts } from '../src/bridge.js';
import { ReturnCode } from '../src/codec/constants.js';
import type { PacketOf } from '../src/codec/types.js';
import { loadConfig } from '../src/config/load.js';
import { openStore } from '../src/store/db.js';
import { FaultyDownlinkStore } from '../src/store/faulty.js';
import { Outbox } from '../src/store/outbox.js';
import {
  collect,
  connectClient,
  MqttSnTestClient,
  sleep,
  startFaultProxy,
  requireMosquitto,
  startMosquitto,
  freePort,
  uniqueClientId,
  waitUntil,
  withTempDir,
} from './helpers/index.js';
import { freeUdpPort, spawnGateway } from './support/gateway-process.js';

const silent = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

async function subscribeDevice(c: MqttSnTestClient, topicName: string, qos: 0 | 1 | 2): Promise<void> {
  const msgId = c.nextMsgId();
  await c.send({ type: 'SUBSCRIBE', dup: false, qos, msgId, topicIdType: 'normal', topicName });
  const suback = (await c.next((p) => p.type === 'SUBACK' && p.msgId === msgId)) as PacketOf<'SUBACK'>;
  assert.equal(suback.returnCode, ReturnCode.ACCEPTED);
}

/** Every PUBLISH the device gets, acknowledged like a well-behaved device (REGISTERs answered). */
function collectDevice(c: MqttSnTestClient): string[] {
  const got: string[] = [];
  void (async () => {
    for (;;) {
      let p;
      try {
        p = await c.next((x) => x.type === 'REGISTER' || x.type === 'PUBLISH', 60_000);
      } catch {
        return;
      }
      if (p.type === 'REGISTER') {
        await c.send({ type: 'REGACK', topicId: p.topicId, msgId: p.msgId, returnCode: ReturnCode.ACCEPTED });
      } else if (p.type === 'PUBLISH') {
        got.push(Buffer.from(p.data).toString());
        if (p.qos === 1)
          await c.send({
            type: 'PUBACK',
            topicId: p.topicId,
            msgId: p.msgId,
            returnCode: ReturnCode.ACCEPTED,
          });
      }
    }
  })();
  return got;
}

async function startBridge(
  t: TestContext,
  brokerUrl: string,
  extraArgs: string[],
  options: BridgeParts = {},
): Promise<{ bridge: Bridge; udpPort: number }> {
  const udpPort = await freeUdpPort();
  const config = await loadConfig({
    argv: [
      '--data-dir',
      withTempDir(t, 'bad-days-'),
      '--listen',
      `127.0.0.1:${udpPort}`,
      '--broker',
      brokerUrl,
      '--uplink-client-id',
      uniqueClientId('gw'),
      '--reconnect-initial',
      '50',
      '--reconnect-max',
      '200',
      ...extraArgs,
    ],
    env: {},
  });
  const bridge = await createBridge(config, { logger: silent, ...options });
  t.after(() => bridge.stop());
  return { bridge, udpPort };
}

test('a broker message whose storage fails is not acknowledged; the broker redelivers it once storage works', async (t) => {
  if (!requireMosquitto(t)) return;
  const broker = await startMosquitto();
  t.after(() => broker.stop());
  let faulty: FaultyDownlinkStore | undefined;
  const { bridge, udpPort } = await startBridge(t, broker.url, [], {
    stores: { downlink: (real) => (faulty = new FaultyDownlinkStore(real)) },
  });
  const device = await MqttSnTestClient.create({ gatewayPort: udpPort });
  t.after(() => device.close());
  assert.equal(
    (await device.connect({ clientId: 'dev-1', cleanSession: false })).returnCode,
    ReturnCode.ACCEPTED,
  );
  await subscribeDevice(device, 'cmd/#', 1);
  const got = collectDevice(device);
  await waitUntil(() => bridge.uplink.state === 'connected', { description: 'the uplink up' });

  const app = await connectClient(broker.url, { clientId: uniqueClientId('app') });
  t.after(() => app.endAsync());
  // The broker holds the gateway's subscription once a first message comes through.
  await app.publishAsync('mqttsn/dev-1/cmd/led', 'hello', { qos: 1 });
  await waitUntil(() => got.length === 1, { description: 'the first message' });
  got.length = 0;
  faulty!.faults.failNext(); // every write fails until heal()
  // Resolves at the broker's PUBACK to the publisher: independent of the gateway's acknowledgement.
  await app.publishAsync('mqttsn/dev-1/cmd/led', 'on', { qos: 1 });
  // Refused, then redelivered by the broker (the gateway dropped the link) and refused again.
  await waitUntil(() => bridge.gateway.stats.downlinkStoreFailures >= 2, {
    timeoutMs: 15_000,
    description: 'a refused write and a refused redelivery',
  });
  assert.deepEqual(got, [], 'nothing delivered "from memory" while the writes failed');
  faulty!.faults.heal();
  // The next redelivery is stored, acknowledged and delivered, once.
  await waitUntil(() => got.length >= 1, { timeoutMs: 15_000, description: 'the redelivered message' });
  assert.deepEqual(got, ['on']);
  // Acknowledged once stored: no further redelivery (a link drop now would bring it back otherwise).
  await app.publishAsync('mqttsn/dev-1/cmd/led', 'off', { qos: 1 });
  await waitUntil(() => got.length >= 2, { description: 'the next message' });
  assert.deepEqual(got, ['on', 'off']);
});

/** Every PUBACK (accepted) msgId the client gets until `quietMs` pass without one. */
/** The PUBACKs a device gets until `quietMs` pass without one: `acked` fills as they come. */
function drainPubacks(
  c: MqttSnTestClient,
  quietMs: number,
): { acked: Set<number>; done: Promise<Set<number>> } {
  const acked = new Set<number>();
  const done = (async () => {
    for (;;) {
      try {
        const p = (await c.next('PUBACK', quietMs)) as PacketOf<'PUBACK'>;
        if (p.returnCode === ReturnCode.ACCEPTED) acked.add(p.msgId);
      } catch {
        return acked;
      }
    }
  })();
  return { acked, done };
}

/**
 * PUBLISHes a test device keeps unacknowledged. A UDP socket's receive buffer holds about 270 small
 * datagrams (net.core.rmem_default); the gateway answers a commit's PUBACKs at once, so a device with
 * more in flight than that, in a test process too busy to read, loses PUBACKs in its own kernel
 * (/proc/net/snmp RcvbufErrors), which would look like the gateway never sending them.
 */
const DEVICE_WINDOW = 100;

test('SIGTERM under load: every message the gateway stored was acknowledged to its device', async (t) => {
  if (!requireMosquitto(t)) return;
  const broker = await startMosquitto();
  t.after(() => broker.stop());
  const collector = await collect(broker.url, 'mqttsn/#');
  t.after(() => collector.close());
  const dataDir = withTempDir(t, 'bad-days-');
  const args = ['--broker', broker.url, '--data-dir', dataDir, '--uplink-client-id', uniqueClientId('gw')];
  const rounds = 3;
  const missing: string[] = [];
  let stored = 0;
  let gw = await spawnGateway(args);
  t.after(() => gw.signal('SIGKILL'));
  for (let round = 0; round < rounds; round++) {
    const devices = await Promise.all(
      [0, 1, 2, 3].map(async (k) => {
        const c = await MqttSnTestClient.create({ gatewayPort: gw.udpPort });
        assert.equal((await c.connect({ clientId: `r${round}d${k}` })).returnCode, ReturnCode.ACCEPTED);
        return { c, name: `r${round}d${k}`, topicId: await c.register('load') };
      }),
    );
    const acks = devices.map(({ c }) => drainPubacks(c, 1500));
    // Fire-and-forget bursts (up to DEVICE_WINDOW in flight), so a commit is always under way when the signal comes.
    let sending = true;
    const senders = devices.map(async ({ c, name, topicId }, k) => {
      for (let i = 1; sending && i < 60_000; i++) {
        while (sending && i - acks[k]!.acked.size > DEVICE_WINDOW) await sleep(1);
        if (!sending) break;
        await c.send({
          type: 'PUBLISH',
          dup: false,
          qos: 1,
          retain: false,
          topicIdType: 'normal',
          topicId,
          msgId: i,
          data: Buffer.from(`${name}:${i}`),
        });
        if (i % 20 === 0) await sleep(1);
      }
    });
    await sleep(300);
    const exit = gw.signal('SIGTERM');
    await sleep(100);
    sending = false;
    await Promise.all(senders);
    assert.equal(await exit, 0, gw.output().slice(-2000));
    const acked = await Promise.all(acks.map((a) => a.done));
    for (const { c } of devices) await c.close();
    // What was stored reaches the broker: the rest of it after the restart.
    const before = gw;
    gw = await spawnGateway(args);
    void before;
    let last = -1;
    while (collector.messages.length !== last) {
      last = collector.messages.length;
      await sleep(500);
    }
    if (process.env.DEBUG_BAD_DAYS)
      t.diagnostic(
        `round ${round}: acked ${acked.map((a) => a.size).join(',')} broker ${collector.messages.length}`,
      );
    for (const m of collector.messages.splice(0)) {
      const [name, i] = m.payload.toString().split(':');
      const k = devices.findIndex((d) => d.name === name);
      if (k < 0) continue;
      stored++;
      if (!acked[k]!.has(Number(i))) missing.push(m.payload.toString());
    }
  }
  t.diagnostic(
    `${rounds} SIGTERMs under load: ${stored} messages stored, ${missing.length} not acknowledged`,
  );
  assert.deepEqual(missing, [], 'stored but never acknowledged to the device');
});

test('SIGTERM with a half-open (blackholed) broker link exits 0 within a bounded time', async (t) => {
  if (!requireMosquitto(t)) return;
  const broker = await startMosquitto();
  t.after(() => broker.stop());
  const proxy = await startFaultProxy(broker.port);
  t.after(() => proxy.close());
  const gw = await spawnGateway([
    '--broker',
    proxy.url,
    '--data-dir',
    withTempDir(t, 'bad-days-'),
    '--uplink-client-id',
    uniqueClientId('gw'),
    '--keepalive',
    '60',
  ]);
  t.after(() => gw.signal('SIGKILL'));
  await waitUntil(() => gw.output().includes('uplink connected'), { description: 'the uplink up' });
  const c = await MqttSnTestClient.create({ gatewayPort: gw.udpPort });
  t.after(() => c.close());
  await c.connect({ clientId: 'bh' });
  const topicId = await c.register('t');
  proxy.blackhole(true);
  // A message in flight to the broker, whose PUBACK never comes.
  await c.publish({ topicId, qos: 1, data: 'stuck' });
  const exit = gw.signal('SIGTERM');
  const code = await Promise.race([exit, sleep(20_000).then(() => 'still running' as const)]);
  assert.equal(code, 0, gw.output().slice(-3000));
  assert.match(gw.output(), /"stopped"/);
});

test('stop() with a commit under way: its PUBACKs still reach the devices before the socket closes', async (t) => {
  // No broker (a closed port): everything stored stays in the outbox, where it can be counted.
  const dataDir = withTempDir(t, 'bad-days-');
  const udpPort = await freeUdpPort();
  const config = await loadConfig({
    argv: [
      '--data-dir',
      dataDir,
      '--listen',
      `127.0.0.1:${udpPort}`,
      '--broker',
      `mqtt://127.0.0.1:${await freePort()}`,
    ],
    env: {},
  });
  const bridge = await createBridge(config, { logger: silent });
  const device = await MqttSnTestClient.create({ gatewayPort: udpPort });
  t.after(() => device.close());
  await device.connect({ clientId: 'loader' });
  const topicId = await device.register('load');
  const acks = drainPubacks(device, 1000);
  for (let i = 1; i <= 300; i++)
    void device.send({
      type: 'PUBLISH',
      dup: false,
      qos: 1,
      retain: false,
      topicIdType: 'normal',
      topicId,
      msgId: i,
      data: Buffer.from(String(i)),
    });
  // Stop the moment the first messages are taken: their commit is under way.
  while (bridge.outbox.stats.appended === 0) await new Promise((resolve) => setImmediate(resolve));
  await bridge.stop();
  const acked = await acks.done;
  const store = await openStore(dataDir);
  const outbox = await Outbox.open(store, { gatewayId: 'check', logger: silent });
  const stored = (await outbox.read(0, 1000)).map((e) => Number(e.payload.toString()));
  await outbox.close();
  await store.close();
  t.diagnostic(`stored ${stored.length}, acknowledged ${acked.size}`);
  assert.ok(stored.length > 0);
  assert.deepEqual(
    stored.filter((i) => !acked.has(i)),
    [],
    'stored but never acknowledged',
  );
});

const CLI = new URL('../src/cli.ts', import.meta.url).pathname;

/** Runs the real CLI to its exit (killed after 30 s); its exit code and everything it printed. */
function runCli(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], {
      env: { ...process.env, MQTTSN_BRIDGE_LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/** A small tmpfs of our own (we run as root), unmounted after the test. */
function mountTmpfs(t: TestContext, size: string, extra = ''): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bad-days-mnt-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}${extra}`, 'tmpfs', dir]);
  t.after(() => {
    execFileSync('umount', ['-l', dir]);
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

/** Fills the file system of `dir` up to `leaveMiB` free (0: until it refuses more, full for everyone). */
function fill(dir: string, leaveMiB = 0): void {
  const free = Math.floor((statfsSync(dir).bavail * statfsSync(dir).bsize) / 1048576) - leaveMiB;
  const count = leaveMiB === 0 ? [] : [`count=${Math.max(0, free)}`];
  try {
    execFileSync('dd', ['if=/dev/zero', `of=${path.join(dir, 'filler')}`, 'bs=1M', ...count], {
      stdio: 'ignore',
    });
  } catch {
    // dd exits non-zero on ENOSPC: expected
  }
}

async function startupArgs(dataDir: string): Promise<string[]> {
  return [
    '--data-dir',
    dataDir,
    '--listen',
    `127.0.0.1:${await freeUdpPort()}`,
    '--broker',
    `mqtt://127.0.0.1:${await freePort()}`,
  ];
}

test('start-up errors say which: a file, a read-only dir, a full disk, a data dir in use (with its pid); exit non-zero', async (t) => {
  const base = withTempDir(t, 'bad-days-');
  const file = path.join(base, 'not-a-dir');
  writeFileSync(file, 'x');
  const asFile = await runCli(await startupArgs(file));
  assert.notEqual(asFile.code, 0);
  assert.match(asFile.output, /is a file, not a directory/, asFile.output);

  const readOnly = mountTmpfs(t, '1m', ',ro');
  const ro = await runCli(await startupArgs(readOnly));
  assert.notEqual(ro.code, 0);
  assert.match(ro.output, /read-only file system/, ro.output);

  const full = mountTmpfs(t, '1m');
  fill(full);
  const noSpace = await runCli(await startupArgs(path.join(full, 'data')));
  assert.notEqual(noSpace.code, 0);
  assert.match(noSpace.output, /no space left on the device/, noSpace.output);

  const shared = withTempDir(t, 'bad-days-');
  const first = await spawnGateway([
    '--data-dir',
    shared,
    '--broker',
    `mqtt://127.0.0.1:${await freePort()}`,
  ]);
  t.after(() => first.signal('SIGKILL'));
  const second = await runCli(await startupArgs(shared));
  assert.notEqual(second.code, 0);
  assert.match(
    second.output,
    new RegExp(`another mqttsn-bridge is running on this data dir .*\\(pid ${first.pid}\\)`),
  );
  for (const run of [asFile, ro, noSpace, second])
    assert.doesNotMatch(run.output, /^mqttsn-bridge: Database failed to open/m);
});

test('a UDP port or metrics port already taken: the gateway closes what it opened and exits non-zero', async (t) => {
  const taken = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => taken.bind(0, '127.0.0.1', resolve));
  t.after(() => taken.close());
  const udp = await runCli([
    '--data-dir',
    withTempDir(t, 'bad-days-'),
    '--listen',
    `127.0.0.1:${taken.address().port}`,
    '--broker',
    `mqtt://127.0.0.1:${await freePort()}`,
  ]);
  assert.equal(udp.code, 1, udp.output);
  assert.match(udp.output, /cannot listen on UDP 127\.0\.0\.1:\d+: EADDRINUSE/);

  // The same with the embedded broker (no --broker): its listener must not keep the failed gateway
  // alive, and SIGTERM must not be swallowed by the start-up's signal hold.
  const embedded = await runCli([
    '--data-dir',
    withTempDir(t, 'bad-days-'),
    '--listen',
    `127.0.0.1:${taken.address().port}`,
  ]);
  assert.equal(embedded.code, 1, embedded.output);
  assert.match(embedded.output, /cannot listen on UDP 127\.0\.0\.1:\d+: EADDRINUSE|EADDRINUSE.*1883/);

  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => server.close(resolve)));
  const http = await runCli([
    ...(await startupArgs(withTempDir(t, 'bad-days-'))),
    '--metrics',
    `127.0.0.1:${(server.address() as net.AddressInfo).port}`,
  ]);
  assert.equal(http.code, 1, http.output);
  assert.match(http.output, /cannot listen for HTTP .*EADDRINUSE/);
});

async function healthz(port: number): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}/healthz`);
  return { status: res.status, body: await res.text() };
}

test('disk full, then freed: congestion and /healthz 503 while full, recovery without a restart, 0 lost, few duplicates', async (t) => {
  if (!requireMosquitto(t)) return;
  const broker = await startMosquitto();
  t.after(() => broker.stop());
  const collector = await collect(broker.url, 'mqttsn/#');
  t.after(() => collector.close());
  const mount = mountTmpfs(t, '24m');
  const metricsPort = await freePort();
  const args = [
    '--broker',
    broker.url,
    '--data-dir',
    path.join(mount, 'data'),
    '--uplink-client-id',
    uniqueClientId('gw'),
    '--metrics',
    `127.0.0.1:${metricsPort}`,
    '--max-packet-size',
    '20000',
  ];
  const gw = await spawnGateway(args);
  t.after(() => gw.signal('SIGKILL'));
  const device = await MqttSnTestClient.create({ gatewayPort: gw.udpPort });
  t.after(() => device.close());
  await device.connect({ clientId: 'disk' });
  const topicId = await device.register('d');
  const acked: number[] = [];
  let congested = 0;
  let n = 0;
  const publish = async (size = 0): Promise<number> => {
    const i = ++n;
    // Random text, so LevelDB's compression cannot shrink it.
    const data = size === 0 ? String(i) : `${i} ${randomBytes(size).toString('base64').slice(0, size)}`;
    const ack = (await device.publish({ topicId, qos: 1, data })) as PacketOf<'PUBACK'>;
    if (ack.returnCode === ReturnCode.ACCEPTED) acked.push(i);
    else if (ack.returnCode === ReturnCode.CONGESTION) congested++;
    return ack.returnCode;
  };
  for (let i = 0; i < 100; i++) assert.equal(await publish(), ReturnCode.ACCEPTED);
  assert.equal((await healthz(metricsPort)).status, 200);

  // Leave a few MiB, then fill them with big messages: LevelDB's log fills up and the flush of its 4 MiB
  // memtable fails, after which LevelDB refuses every write until it is reopened, whatever the free space.
  fill(mount, 6);
  let refusedInARow = 0;
  for (let i = 0; i < 5000 && refusedInARow < 20; i++)
    refusedInARow = (await publish(15_000)) === ReturnCode.CONGESTION ? refusedInARow + 1 : 0;
  assert.equal(refusedInARow, 20, 'PUBACK "congestion" while the disk is full');
  const whileFull = await healthz(metricsPort);
  assert.equal(whileFull.status, 503, whileFull.body);
  assert.match(whileFull.body, /cannot write to the data dir/);

  rmSync(path.join(mount, 'filler'));
  // Freed: accepted again without a restart.
  await waitUntil(async () => (await publish()) === ReturnCode.ACCEPTED, {
    timeoutMs: 20_000,
    description: 'PUBLISH accepted again after the disk was freed',
  });
  for (let i = 0; i < 100; i++) assert.equal(await publish(), ReturnCode.ACCEPTED);
  await waitUntil(async () => (await healthz(metricsPort)).status === 200, {
    description: '/healthz 200 again',
  });
  const episodes = gw.output().match(/cannot write to the data dir; devices get PUBACK/g) ?? [];
  assert.equal(episodes.length, 1, 'one log line for the episode');
  assert.match(gw.output(), /writing to the data dir works again/);

  // A restart must not send again what the broker already acknowledged (the deletes were kept and written).
  await waitUntil(() => collector.messages.length >= acked.length, { description: 'all delivered' });
  assert.equal(await gw.signal('SIGTERM'), 0);
  await gw.restart();
  await sleep(2000);
  const counts = new Map<string, number>();
  for (const m of collector.messages) {
    const i = m.payload.toString().split(' ')[0]!;
    counts.set(i, (counts.get(i) ?? 0) + 1);
  }
  const lost = acked.filter((i) => !counts.has(String(i)));
  const duplicates = [...counts.values()].reduce((sum, c) => sum + c - 1, 0);
  t.diagnostic(
    `disk-full cycle: ${acked.length} acknowledged, ${congested} refused with congestion, ${lost.length} lost, ${duplicates} duplicates`,
  );
  if (lost.length > 0 && process.env.DEBUG_BAD_DAYS) {
    t.diagnostic(`lost: ${lost.join(',')}`);
    t.diagnostic(
      gw
        .output()
        .split('\n')
        .filter((l) => /"level":(40|50)/.test(l))
        .join('\n')
        .slice(0, 6000),
    );
  }
  assert.deepEqual(lost, []);
  assert.ok(duplicates <= 64, `duplicates ${duplicates} > one uplink window (64)`);
});

test('SIGTERM while the gateway is still starting: it finishes starting, stops cleanly and exits 0', async (t) => {
  const dir = withTempDir(t, 'bad-days-early-term-');
  const deadPort = await freeUdpPort();
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      CLI,
      '--data-dir',
      path.join(dir, 'data'),
      '--listen',
      '127.0.0.1:0',
      '--broker',
      `mqtt://127.0.0.1:${deadPort}`,
    ],
    { env: { ...process.env, MQTTSN_BRIDGE_LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let output = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  // The first line is logged inside the start (the uplink identity), before the gateway is ready.
  await new Promise<void>((resolve) =>
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('uplink client id')) resolve();
    }),
  );
  child.kill('SIGTERM');
  assert.equal(await exited, 0, output);
  assert.match(output, /"stopping"/);
  assert.match(output, /"stopped"/);
});
