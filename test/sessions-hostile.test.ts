/**
 * Sessions under hostile or unusual clients: sleeping devices as real client libraries wake them,
 * floods (subscriptions, sessions, sleeper queues), stolen sessions and the allow-list. Real UDP on
 * loopback, real LevelDB, a real broker (aedes in-process) where messages come from the cloud.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import pino from 'pino';
import { ReturnCode } from '../src/codec/constants.js';
import type { Packet, PacketOf } from '../src/codec/types.js';
import { publishTo, waitUntil, type MqttSnTestClient } from './helpers/index.js';
import { startGateway } from './support/gateway-fixture.js';

const text = (bytes: Uint8Array): string => Buffer.from(bytes).toString();

/** A pino logger whose JSON lines are kept for assertions. */
function capturingLog(): { log: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line));
      callback();
    },
  });
  return { log: pino({ level: 'debug' }, stream), lines };
}

async function subscribe(
  c: MqttSnTestClient,
  topicName: string,
  qos: 0 | 1 | 2 = 1,
): Promise<PacketOf<'SUBACK'>> {
  const msgId = c.nextMsgId();
  await c.send({ type: 'SUBSCRIBE', dup: false, qos, msgId, topicIdType: 'normal', topicName });
  return c.next((p): p is PacketOf<'SUBACK'> => p.type === 'SUBACK' && p.msgId === msgId) as Promise<
    PacketOf<'SUBACK'>
  >;
}

/** Receives one PUBLISH and acknowledges it as a well-behaved device (answering a REGISTER first). */
async function receive(c: MqttSnTestClient, timeoutMs = 3000): Promise<PacketOf<'PUBLISH'>> {
  for (;;) {
    const p = await c.next((x: Packet) => x.type === 'REGISTER' || x.type === 'PUBLISH', timeoutMs);
    if (p.type === 'REGISTER') {
      await c.send({ type: 'REGACK', topicId: p.topicId, msgId: p.msgId, returnCode: ReturnCode.ACCEPTED });
      continue;
    }
    const publish = p as PacketOf<'PUBLISH'>;
    if (publish.qos === 1)
      await c.send({
        type: 'PUBACK',
        topicId: publish.topicId,
        msgId: publish.msgId,
        returnCode: ReturnCode.ACCEPTED,
      });
    return publish;
  }
}

// --- Issue 9 §4: sleeping devices as real client libraries do it -------------------------------

test('a PINGREQ without client id from where a session sleeps wakes it: buffer first, then PINGRESP', async (t) => {
  const gw = await startGateway(t, { broker: true });
  const c = await gw.client();
  await c.connect({ clientId: 'paho-sleeper', duration: 30 });
  await subscribe(c, 'cmd', 1);
  await c.disconnect(60);
  await publishTo(gw.broker!.url, 'mqttsn/paho-sleeper/cmd', 'open', { qos: 1 });
  await waitUntil(() => gw.gateway.sessions.byClientId('paho-sleeper')!.outgoing.length === 1);
  await c.send({ type: 'PINGREQ' }); // the Paho MQTT-SN client's wake-up: no client id
  assert.equal(text((await receive(c)).data), 'open');
  await c.next('PINGRESP');
  assert.equal(gw.gateway.sessions.byClientId('paho-sleeper')!.state, 'asleep');
  assert.equal(c.undecodable.length, 0);
});

test('a CONNECT with CleanSession=1 from an asleep device wakes it: the buffer and subscriptions stay', async (t) => {
  const gw = await startGateway(t, { broker: true });
  const c = await gw.client();
  await c.connect({ clientId: 'waker', cleanSession: false });
  await subscribe(c, 'cmd', 1);
  await c.disconnect(120);
  await publishTo(gw.broker!.url, 'mqttsn/waker/cmd', 'while asleep', { qos: 1 });
  await waitUntil(() => gw.gateway.sessions.byClientId('waker')!.outgoing.length === 1);
  const connack = await c.connect({ clientId: 'waker', cleanSession: true });
  assert.equal(connack.returnCode, ReturnCode.ACCEPTED);
  assert.equal(text((await receive(c)).data), 'while asleep');
  await publishTo(gw.broker!.url, 'mqttsn/waker/cmd', 'after the wake', { qos: 1 });
  assert.equal(text((await receive(c)).data), 'after the wake');
  assert.equal(gw.gateway.stats.downlinkDiscarded.clean_session, 0);
});

test('discarding queued messages (CleanSession=1 after a clean DISCONNECT) is counted and logged at warn', async (t) => {
  const { log, lines } = capturingLog();
  const gw = await startGateway(t, { broker: true, log });
  const c = await gw.client();
  await c.connect({ clientId: 'fresh', cleanSession: false });
  await subscribe(c, 'cmd', 1);
  await c.disconnect();
  await publishTo(gw.broker!.url, 'mqttsn/fresh/cmd', 'stale 1', { qos: 1 });
  await publishTo(gw.broker!.url, 'mqttsn/fresh/cmd', 'stale 2', { qos: 1 });
  await waitUntil(() => gw.gateway.sessions.byClientId('fresh')?.outgoing.length === 2);
  await c.connect({ clientId: 'fresh', cleanSession: true });
  await c.expectNothing(200, 'PUBLISH');
  assert.equal(gw.gateway.stats.downlinkDiscarded.clean_session, 2);
  const warning = lines.find((l) => l.level === 40 && l.reason === 'clean_session');
  assert.ok(warning, 'a warn line');
  assert.equal(warning.messages, 2);
  assert.equal(warning.clientId, 'fresh');
});
