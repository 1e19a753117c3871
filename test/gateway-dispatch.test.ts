import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ReturnCode } from '../src/codec/constants.js';
import { encode, shortTopicId } from '../src/codec/index.js';
import type { Packet } from '../src/codec/types.js';
import { ROUTES } from '../src/gateway/handlers/index.js';
import { waitUntil } from './helpers/index.js';
import { startGateway } from './support/gateway-fixture.js';

/** A QoS 1 PUBLISH on the short topic "ab". */
function qos1Publish(msgId: number, data: Uint8Array): Packet {
  return {
    type: 'PUBLISH',
    dup: false,
    qos: 1,
    retain: false,
    topicIdType: 'short',
    topicId: shortTopicId('ab'),
    msgId,
    data,
  };
}

/** Packets a client sends that need a connected session, one of each. */
const NEED_CONNECTED: Packet[] = [
  { type: 'REGISTER', topicId: 0, msgId: 1, topicName: 'a' },
  { type: 'SUBSCRIBE', dup: false, qos: 1, msgId: 2, topicIdType: 'normal', topicName: 'a' },
  { type: 'UNSUBSCRIBE', msgId: 3, topicIdType: 'normal', topicName: 'a' },
  { type: 'WILLTOPICUPD', qos: 0, retain: false, willTopic: 'w' },
  { type: 'WILLMSGUPD', willMsg: Buffer.from('m') },
  qos1Publish(4, Buffer.from('x')),
];

test('the route table: every client-to-gateway type has a route, no gateway-to-client type has one', () => {
  const clientTypes = [
    'CONNECT',
    'WILLTOPIC',
    'WILLMSG',
    'PUBLISH',
    'REGISTER',
    'SUBSCRIBE',
    'UNSUBSCRIBE',
    'WILLTOPICUPD',
    'WILLMSGUPD',
    'PUBREL',
    'REGACK',
    'PUBACK',
    'PUBREC',
    'PUBCOMP',
    'PINGREQ',
    'PINGRESP',
    'DISCONNECT',
    'SEARCHGW',
  ];
  assert.deepEqual(Object.keys(ROUTES).sort(), [...clientTypes].sort());
  const needs = Object.fromEntries(
    Object.entries(ROUTES).map(([type, route]) => [
      type,
      typeof route.needs === 'string' ? route.needs : 'by packet',
    ]),
  );
  assert.deepEqual(
    Object.keys(needs).filter((type) => needs[type] === 'connected'),
    ['REGISTER', 'SUBSCRIBE', 'UNSUBSCRIBE', 'WILLTOPICUPD', 'WILLMSGUPD'],
  );
  assert.equal(needs.PUBLISH, 'by packet', 'QoS -1 needs no session');
});

test('the state guard: a packet needing a connected client gets DISCONNECT without one, asleep or absent', async (t) => {
  const gw = await startGateway(t);
  const stranger = await gw.client();
  for (const packet of NEED_CONNECTED) {
    await stranger.send(packet);
    await stranger.next('DISCONNECT');
  }
  // PUBREL needs a session in any state; without one it too is answered DISCONNECT.
  await stranger.send({ type: 'PUBREL', msgId: 9 });
  await stranger.next('DISCONNECT');
  assert.equal(gw.gateway.stats.unexpected, NEED_CONNECTED.length + 1);

  const sleeper = await gw.client();
  await sleeper.connect({ clientId: 'sleeper', cleanSession: false });
  await sleeper.disconnect(60);
  assert.equal(gw.gateway.sessions.byClientId('sleeper')?.state, 'asleep');
  for (const packet of NEED_CONNECTED) {
    await sleeper.send(packet);
    await sleeper.next('DISCONNECT');
  }
  // A session is all PUBREL needs: the sleeper's QoS 2 exchange can end while it sleeps.
  await sleeper.send({ type: 'PUBREL', msgId: 9 });
  assert.deepEqual(await sleeper.next('PUBCOMP'), { type: 'PUBCOMP', msgId: 9 });
  assert.equal((await gw.stored()).length, 0, 'nothing refused was stored');
  assert.equal(gw.gateway.stats.handlerErrors, 0);
});

test('answers to our messages without a session, and gateway-to-client types, are counted and ignored', async (t) => {
  const gw = await startGateway(t);
  const c = await gw.client();
  const ignored: Packet[] = [
    { type: 'PUBACK', topicId: 1, msgId: 1, returnCode: ReturnCode.ACCEPTED },
    { type: 'REGACK', topicId: 1, msgId: 1, returnCode: ReturnCode.ACCEPTED },
    { type: 'PUBREC', msgId: 1 },
    { type: 'PUBCOMP', msgId: 1 },
    { type: 'WILLTOPIC', qos: 0, retain: false, willTopic: 'w' },
    { type: 'CONNACK', returnCode: ReturnCode.ACCEPTED },
    { type: 'WILLTOPICREQ' },
    { type: 'GWINFO', gwId: 3 },
    { type: 'ADVERTISE', gwId: 3, duration: 60 },
    { type: 'SUBACK', qos: 0, topicId: 0, msgId: 1, returnCode: ReturnCode.ACCEPTED },
  ];
  for (const packet of ignored) await c.send(packet);
  await c.expectNothing(200);
  assert.equal(gw.gateway.stats.unexpected, ignored.length);
  assert.equal(gw.gateway.stats.handlerErrors, 0);
});

test('any packet from a connected client moves its keep-alive deadline, also one that is ignored', async (t) => {
  const gw = await startGateway(t);
  const c = await gw.client();
  await c.connect({ clientId: 'kept', duration: 10 }); // lost 15 s after it was last heard from
  gw.advance(14_000);
  // A type the gateway ignores still proves the client alive (it reaches the dispatcher first).
  await c.send({ type: 'GWINFO', gwId: 1 });
  await waitUntil(() => gw.gateway.stats.unexpected === 1);
  gw.advance(14_000); // 28 s after CONNECT, 14 s after the GWINFO
  assert.equal(gw.gateway.sessions.byClientId('kept')?.state, 'active');
  gw.advance(1_001); // 15 s after the GWINFO
  assert.equal(gw.gateway.sessions.byClientId('kept'), undefined, 'lost, and forgotten (CleanSession=1)');
  assert.equal(gw.gateway.stats.sessionsLost, 1);
});

test('the one size rule: any datagram over the limit is dropped and counted; a QoS 1 PUBLISH gets its refusal', async (t) => {
  const gw = await startGateway(t, {
    config: { limits: { maxClients: 10, maxTopicsPerClient: 10, maxPacketSize: 64, maxClientIdLength: 23 } },
  });
  const c = await gw.client();
  await c.connect({ clientId: 'big' });
  await c.send({ type: 'REGISTER', topicId: 0, msgId: 7, topicName: 'x'.repeat(80) });
  await c.send({
    type: 'SUBSCRIBE',
    dup: false,
    qos: 1,
    msgId: 8,
    topicIdType: 'normal',
    topicName: 'y'.repeat(80),
  });
  await c.expectNothing(200);
  const publish: Packet = qos1Publish(9, Buffer.alloc(80));
  await c.send(publish);
  const puback = await c.next('PUBACK');
  assert.deepEqual([puback.msgId, puback.returnCode], [9, ReturnCode.NOT_SUPPORTED]);
  // From a sender without a session it is only dropped: an oversized datagram earns no DISCONNECT.
  const stranger = await gw.client();
  await stranger.sendRaw(encode(publish));
  await stranger.expectNothing(200);
  assert.equal(gw.gateway.stats.oversized, 4);
  assert.equal((await gw.stored()).length, 0);
});

test('a handler that throws costs its packet only: counted, and the next packets are served', async (t) => {
  const gw = await startGateway(t, {
    sink: () => ({
      append() {
        throw new Error('this sink fails on purpose');
      },
    }),
  });
  const c = await gw.client();
  await c.connect({ clientId: 'thrower' });
  await c.send(qos1Publish(1, Buffer.from('x')));
  await c.pingreq(); // answered: the gateway goes on
  assert.equal(gw.gateway.stats.handlerErrors, 1);
  assert.equal(gw.gateway.stats.errorsByBoundary.get('datagram'), 1);
});
