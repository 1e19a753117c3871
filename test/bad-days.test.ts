/**
 * Bad days (issue 9): acknowledgements stay true and the gateway recovers by itself — a store that fails
 * on purpose, SIGTERM under load and with a half-open broker link, a full disk, start-up errors, a taken
 * port. Real processes throughout: UDP on 127.0.0.1, LevelDB, Mosquitto, the CLI as a child.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import pino from 'pino';
import { Bridge } from '../src/bridge.js';
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
  options: Parameters<typeof Bridge.start>[3] = {},
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
  const bridge = await Bridge.start(config, config.broker.urls, silent, options);
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
  faulty!.faults.failNext(3); // the first delivery and two redeliveries fail to store
  // Resolves at the broker's PUBACK to the publisher: independent of the gateway's acknowledgement.
  await app.publishAsync('mqttsn/dev-1/cmd/led', 'on', { qos: 1 });
  await waitUntil(() => faulty!.faults.refused >= 1, { description: 'a refused downlink write' });
  assert.deepEqual(got, [], 'nothing delivered "from memory" while the write failed');
  // The broker redelivers after the gateway dropped the link; the third try is stored and delivered.
  await waitUntil(() => got.length >= 1, { timeoutMs: 15_000, description: 'the redelivered message' });
  assert.deepEqual(got, ['on']);
  assert.equal(faulty!.faults.refused, 3);
  assert.equal(bridge.gateway.stats.downlinkStoreFailures, 3);
  // Acknowledged once stored: no further redelivery (a link drop now would bring it back otherwise).
  await app.publishAsync('mqttsn/dev-1/cmd/led', 'off', { qos: 1 });
  await waitUntil(() => got.length >= 2, { description: 'the next message' });
  assert.deepEqual(got, ['on', 'off']);
});

/** Every PUBACK (accepted) msgId the client gets until `quietMs` pass without one. */
async function drainPubacks(c: MqttSnTestClient, quietMs: number): Promise<Set<number>> {
  const acked = new Set<number>();
  for (;;) {
    try {
      const p = (await c.next('PUBACK', quietMs)) as PacketOf<'PUBACK'>;
      if (p.returnCode === ReturnCode.ACCEPTED) acked.add(p.msgId);
    } catch {
      return acked;
    }
  }
}

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
    // Fire-and-forget bursts, so a commit is always under way when the signal comes.
    let sending = true;
    const senders = devices.map(async ({ c, name, topicId }) => {
      for (let i = 1; sending && i < 60_000; i++) {
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
    const acked = await Promise.all(acks);
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
  const bridge = await Bridge.start(config, config.broker.urls, silent);
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
  const acked = await acks;
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
