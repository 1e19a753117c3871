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
import { FaultyDownlinkStore } from '../src/store/faulty.js';
import {
  connectClient,
  MqttSnTestClient,
  requireMosquitto,
  startMosquitto,
  uniqueClientId,
  waitUntil,
  withTempDir,
} from './helpers/index.js';
import { freeUdpPort } from './support/gateway-process.js';

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
