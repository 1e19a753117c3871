/**
 * The session state machine against the spec's table of §6.14 (shared/spec "Sleeping clients"), one
 * test per row, with the manual clock deciding every expiry (as test/wheel.test.ts does).
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { ReturnCode } from '../src/codec/constants.js';
import type { Packet } from '../src/codec/types.js';
import { waitUntil } from './helpers/index.js';
import type { MqttSnTestClient } from './helpers/udp-client.js';
import { startGateway, type GatewayFixture } from './support/gateway-fixture.js';

const state = (gw: GatewayFixture, clientId: string): string | undefined =>
  gw.gateway.sessions.byClientId(clientId)?.state;

/** A device with a will, subscribed to `cmd` (topic id known from SUBACK), its session kept. */
async function device(
  t: TestContext,
  duration = 10,
): Promise<{ gw: GatewayFixture; c: MqttSnTestClient; topicId: number }> {
  const gw = await startGateway(t);
  const c = await gw.client();
  await c.connect({
    clientId: 'dev',
    duration,
    cleanSession: false,
    will: { topic: 'lwt', message: 'gone' },
  });
  await c.send({ type: 'SUBSCRIBE', dup: false, qos: 1, msgId: 1, topicIdType: 'normal', topicName: 'cmd' });
  const suback = await c.next('SUBACK');
  assert.equal(suback.returnCode, ReturnCode.ACCEPTED);
  return { gw, c, topicId: suback.topicId };
}

/** A broker message for the device, stored before `routeFromBroker` says done. */
function fromBroker(gw: GatewayFixture, text: string): Promise<void> {
  return new Promise((resolve, reject) =>
    gw.gateway.routeFromBroker('mqttsn/dev/cmd', Buffer.from(text), 1, false, (err) =>
      err ? reject(err) : resolve(),
    ),
  );
}

async function willsStored(gw: GatewayFixture): Promise<number> {
  return (await gw.stored()).filter((entry) => entry.topic === 'mqttsn/dev/lwt').length;
}

test('(not connected) CONNECT -> active; keep-alive = Duration with the 1.5x grace', async (t) => {
  const { gw } = await device(t, 10);
  assert.equal(state(gw, 'dev'), 'active');
  gw.advance(14_999);
  assert.equal(state(gw, 'dev'), 'active');
  gw.advance(1);
  assert.equal(state(gw, 'dev'), 'lost', 'active, keep-alive expiry -> lost');
  await waitUntil(async () => (await willsStored(gw)) === 1);
});

test('active DISCONNECT -> disconnected, answered DISCONNECT, no will', async (t) => {
  const { gw, c } = await device(t);
  assert.deepEqual(await c.disconnect(), { type: 'DISCONNECT' });
  assert.equal(state(gw, 'dev'), 'disconnected');
  gw.advance(60_000);
  assert.equal(state(gw, 'dev'), 'disconnected', 'no keep-alive supervision while disconnected');
  assert.equal(await willsStored(gw), 0);
});

test('active DISCONNECT(d) -> asleep, answered DISCONNECT without duration; sleep expiry -> lost, will', async (t) => {
  const { gw, c } = await device(t, 5);
  assert.deepEqual(await c.disconnect(20), { type: 'DISCONNECT' });
  assert.equal(state(gw, 'dev'), 'asleep');
  gw.advance(29_999); // well past the keep-alive: it does not apply while asleep
  assert.equal(state(gw, 'dev'), 'asleep');
  gw.advance(1);
  assert.equal(state(gw, 'dev'), 'lost');
  await waitUntil(async () => (await willsStored(gw)) === 1);
});

test('asleep: a broker message is buffered, not sent', async (t) => {
  const { gw, c } = await device(t);
  await c.disconnect(60);
  await fromBroker(gw, 'one');
  await c.expectNothing(200, 'PUBLISH');
  assert.equal(gw.gateway.sessions.byClientId('dev')?.outgoing.length, 1);
});

test('asleep PINGREQ(ClientId) -> awake: buffered messages, each acked, then PINGRESP -> asleep again', async (t) => {
  const { gw, c, topicId } = await device(t);
  await c.disconnect(60);
  await fromBroker(gw, 'one');
  await fromBroker(gw, 'two');
  gw.advance(50_000);
  await c.send({ type: 'PINGREQ', clientId: 'dev' });
  for (const text of ['one', 'two']) {
    const publish = await c.next('PUBLISH');
    assert.equal(Buffer.from(publish.data).toString(), text);
    assert.equal(publish.topicId, topicId);
    assert.equal(state(gw, 'dev'), 'awake');
    await c.send({ type: 'PUBACK', topicId, msgId: publish.msgId, returnCode: ReturnCode.ACCEPTED });
  }
  await c.next('PINGRESP');
  assert.equal(state(gw, 'dev'), 'asleep');
  // The sleep timer restarted with the PINGRESP: 90 s (1.5 x 60) from now, not from the DISCONNECT.
  gw.advance(89_999);
  assert.equal(state(gw, 'dev'), 'asleep');
  gw.advance(1);
  assert.equal(state(gw, 'dev'), 'lost');
});

test('asleep PINGREQ with nothing buffered: PINGRESP at once, still asleep', async (t) => {
  const { gw, c } = await device(t);
  await c.disconnect(60);
  await c.send({ type: 'PINGREQ', clientId: 'dev' });
  await c.next('PINGRESP');
  assert.equal(state(gw, 'dev'), 'asleep');
});

test('asleep / awake CONNECT -> active: the rest of the buffer is delivered, keep-alive resumes', async (t) => {
  const { gw, c, topicId } = await device(t, 10);
  await c.disconnect(60);
  await fromBroker(gw, 'one');
  // A wake-up CONNECT keeps the session whatever its CleanSession flag says (paho#122).
  await c.send({
    type: 'CONNECT',
    will: false,
    cleanSession: true,
    protocolId: 1,
    duration: 10,
    clientId: 'dev',
  });
  await c.next('CONNACK');
  // A new connection: the topic id is confirmed again (REGISTER) before the PUBLISH that uses it.
  const register = await c.next('REGISTER');
  assert.deepEqual([register.topicId, register.topicName], [topicId, 'cmd']);
  await c.send({ type: 'REGACK', topicId, msgId: register.msgId, returnCode: ReturnCode.ACCEPTED });
  const publish = await c.next('PUBLISH');
  assert.equal(Buffer.from(publish.data).toString(), 'one');
  await c.send({ type: 'PUBACK', topicId, msgId: publish.msgId, returnCode: ReturnCode.ACCEPTED });
  await waitUntil(() => gw.gateway.stats.downlinkDelivered === 1);
  assert.equal(state(gw, 'dev'), 'active');
  gw.advance(15_000);
  assert.equal(state(gw, 'dev'), 'lost', 'keep-alive supervises it again');
});

test('asleep DISCONNECT(d) -> asleep with the new duration; DISCONNECT -> disconnected', async (t) => {
  const { gw, c } = await device(t);
  await c.disconnect(60);
  await c.disconnect(10);
  assert.equal(state(gw, 'dev'), 'asleep');
  gw.advance(14_999);
  assert.equal(state(gw, 'dev'), 'asleep');
  await c.disconnect();
  assert.equal(state(gw, 'dev'), 'disconnected');
  gw.advance(60_000);
  assert.equal(state(gw, 'dev'), 'disconnected');
  assert.equal(await willsStored(gw), 0);
});

test('kick: DISCONNECT to the device, the will published or used up, the kept session stays', async (t) => {
  const { gw, c } = await device(t);
  const session = gw.gateway.sessions.byClientId('dev')!;
  gw.gateway.lifecycle.kick(session, { publishWill: false });
  await c.next('DISCONNECT');
  assert.equal(state(gw, 'dev'), 'disconnected');
  assert.equal(await willsStored(gw), 0);
  assert.equal(session.will, undefined, 'the will is used up, as by a clean DISCONNECT');

  await c.connect({ clientId: 'dev', cleanSession: false, will: { topic: 'lwt', message: 'gone' } });
  gw.gateway.lifecycle.kick(gw.gateway.sessions.byClientId('dev')!, { publishWill: true });
  await c.next('DISCONNECT');
  await waitUntil(async () => (await willsStored(gw)) === 1);
  assert.equal(state(gw, 'dev'), 'disconnected');
  assert.equal(gw.gateway.subscriptions.filterCount, 1, 'subscriptions kept with the session');
});

test('forget: the session, its record, its queue and its broker subscriptions go', async (t) => {
  const { gw, c } = await device(t);
  await c.disconnect(60);
  await fromBroker(gw, 'queued');
  assert.equal(gw.gateway.lifecycle.forget('dev'), true);
  await c.next('DISCONNECT');
  assert.equal(gw.gateway.sessions.byClientId('dev'), undefined);
  assert.equal(gw.gateway.subscriptions.filterCount, 0);
  assert.deepEqual(gw.brokerCalls, ['+mqttsn/dev/cmd', '-mqttsn/dev/cmd']);
  assert.equal(gw.gateway.stats.downlinkDiscarded.forgotten, 1);
  assert.equal(gw.gateway.lifecycle.forget('dev'), false, 'nothing left to forget');
  // Nothing comes back after a restart: the record and the queue are gone from disk too.
  await gw.restart();
  assert.equal(gw.gateway.sessions.byClientId('dev'), undefined);
});

test('the packet tap sees every datagram in and out, with the client id once known', async (t) => {
  const gw = await startGateway(t);
  const seen: string[] = [];
  gw.gateway.tap = {
    active: true,
    packet: (direction, _peer, bytes, packet: Packet | undefined, clientId) =>
      void seen.push(`${direction} ${packet?.type ?? 'undecodable'} ${bytes.length} ${clientId ?? '-'}`),
  };
  const c = await gw.client();
  await c.connect({ clientId: 'traced' });
  await c.pingreq();
  await c.sendRaw(Uint8Array.from([3, 0xff, 0]));
  await waitUntil(() => seen.length === 5);
  assert.deepEqual(seen, [
    'in CONNECT 12 -',
    'out CONNACK 3 traced',
    'in PINGREQ 2 traced',
    'out PINGRESP 2 traced',
    'in undecodable 3 traced',
  ]);
});
