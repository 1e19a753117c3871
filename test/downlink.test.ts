import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ReturnCode } from '../src/codec/constants.js';
import { shortTopicId } from '../src/codec/index.js';
import type { Packet, PacketOf } from '../src/codec/types.js';
import { publishTo, sleep, waitUntil, type MqttSnTestClient } from './helpers/index.js';
import { compileNamespace } from '../src/topics/namespace.js';
import { startGateway, type GatewayFixture } from './support/gateway-fixture.js';

const text = (bytes: Uint8Array): string => Buffer.from(bytes).toString();

async function subscribe(
  c: MqttSnTestClient,
  topic: { topicName: string } | { topicIdType: 'predefined' | 'short'; topicId: number },
  qos: 0 | 1 | 2 = 1,
): Promise<PacketOf<'SUBACK'>> {
  const msgId = c.nextMsgId();
  const packet: Packet =
    'topicName' in topic
      ? { type: 'SUBSCRIBE', dup: false, qos, msgId, topicIdType: 'normal', topicName: topic.topicName }
      : { type: 'SUBSCRIBE', dup: false, qos, msgId, topicIdType: topic.topicIdType, topicId: topic.topicId };
  await c.send(packet);
  return c.next((p): p is PacketOf<'SUBACK'> => p.type === 'SUBACK' && p.msgId === msgId) as Promise<
    PacketOf<'SUBACK'>
  >;
}

/** Receives one PUBLISH and acknowledges it as a well-behaved device (answering a REGISTER first). */
async function receive(c: MqttSnTestClient, timeoutMs = 3000): Promise<PacketOf<'PUBLISH'>> {
  for (;;) {
    const p = await c.next((x) => x.type === 'REGISTER' || x.type === 'PUBLISH', timeoutMs);
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
    if (publish.qos === 2) {
      await c.send({ type: 'PUBREC', msgId: publish.msgId });
      await c.next((x) => x.type === 'PUBREL' && x.msgId === publish.msgId);
      await c.send({ type: 'PUBCOMP', msgId: publish.msgId });
    }
    return publish;
  }
}

/** The filters the broker holds for the gateway, from aedes' own subscribe / unsubscribe events. */
function watchBrokerSubscriptions(gw: GatewayFixture): Set<string> {
  const filters = new Set<string>();
  const broker = gw.broker!.broker;
  broker.on('subscribe', (subscriptions, client) => {
    if (client?.id.startsWith('fixture-')) for (const s of subscriptions) filters.add(s.topic);
  });
  broker.on('unsubscribe', (topics, client) => {
    if (client?.id.startsWith('fixture-')) for (const topic of topics) filters.delete(topic);
  });
  return filters;
}

test('a plain-name subscription gets its topic id in SUBACK and messages without a REGISTER', async (t) => {
  const gw = await startGateway(t, { broker: true });
  const c = await gw.client();
  await c.connect({ clientId: 'dev' });
  const suback = await subscribe(c, { topicName: 'cmd/led' }, 1);
  assert.equal(suback.returnCode, ReturnCode.ACCEPTED);
  assert.ok(suback.topicId > 0);
  assert.equal(suback.qos, 1);
  await publishTo(gw.broker!.url, 'mqttsn/dev/cmd/led', 'on', { qos: 1 });
  const publish = await c.next('PUBLISH');
  assert.deepEqual(
    [publish.topicIdType, publish.topicId, publish.qos, text(publish.data)],
    ['normal', suback.topicId, 1, 'on'],
  );
});

test('a wildcard subscription gets topic id 0; each new topic is REGISTERed (and REGACKed) before its PUBLISH', async (t) => {
  const gw = await startGateway(t, { broker: true });
  const c = await gw.client();
  await c.connect({ clientId: 'wild' });
  assert.equal((await subscribe(c, { topicName: 'cmd/#' }, 0)).topicId, 0);
  await publishTo(gw.broker!.url, 'mqttsn/wild/cmd/a/b', 'x');
  const register = await c.next('REGISTER');
  assert.equal(register.topicName, 'cmd/a/b');
  await c.expectNothing(100, 'PUBLISH'); // waits for REGACK
  await c.send({ type: 'REGACK', topicId: register.topicId, msgId: register.msgId, returnCode: 0 });
  const publish = await c.next('PUBLISH');
  assert.equal(publish.topicId, register.topicId);
  await publishTo(gw.broker!.url, 'mqttsn/wild/cmd/a/b', 'again');
  assert.equal(text((await c.next('PUBLISH')).data), 'again', 'known id: no second REGISTER');
  await publishTo(gw.broker!.url, 'mqttsn/other/cmd/a/b', 'not mine');
  await c.expectNothing(200);
});

test('predefined and short-name subscriptions are delivered with their own ids', async (t) => {
  const gw = await startGateway(t, { broker: true });
  const c = await gw.client();
  await c.connect({ clientId: 'ids' });
  assert.equal((await subscribe(c, { topicIdType: 'predefined', topicId: 5 })).topicId, 5);
  assert.equal((await subscribe(c, { topicIdType: 'short', topicId: shortTopicId('ab') })).topicId, 0);
  assert.equal(
    (await subscribe(c, { topicIdType: 'predefined', topicId: 99 })).returnCode,
    ReturnCode.INVALID_TOPIC_ID,
  );
  assert.equal((await subscribe(c, { topicName: 'a/#/b' })).returnCode, ReturnCode.NOT_SUPPORTED);
  await publishTo(gw.broker!.url, 'factory/alarms', 'fire', { qos: 1 });
  const p1 = await receive(c);
  assert.deepEqual([p1.topicIdType, p1.topicId, text(p1.data)], ['predefined', 5, 'fire']);
  await publishTo(gw.broker!.url, 'mqttsn/ids/ab', 'short', { qos: 1 });
  const p2 = await receive(c);
  assert.deepEqual([p2.topicIdType, p2.topicId, text(p2.data)], ['short', shortTopicId('ab'), 'short']);
});

test('delivery QoS is the lower of the subscription and the message; QoS 2 runs PUBREC/PUBREL/PUBCOMP', async (t) => {
  const gw = await startGateway(t, { broker: true });
  const c = await gw.client();
  await c.connect({ clientId: 'qos' });
  await subscribe(c, { topicName: 'q1' }, 1);
  await subscribe(c, { topicName: 'q2' }, 2);
  await publishTo(gw.broker!.url, 'mqttsn/qos/q1', 'a', { qos: 2 });
  assert.equal((await receive(c)).qos, 1);
  await publishTo(gw.broker!.url, 'mqttsn/qos/q2', 'b', { qos: 0 });
  assert.equal((await receive(c)).qos, 0);
  await publishTo(gw.broker!.url, 'mqttsn/qos/q2', 'c', { qos: 2 });
  const p = await receive(c);
  assert.equal(p.qos, 2);
  await waitUntil(() => gw.gateway.stats.downlinkDelivered === 3);
});

test('retained messages are delivered on subscribe, to a second subscriber of the same filter too, without repeats', async (t) => {
  const gw = await startGateway(t, { broker: true });
  await publishTo(gw.broker!.url, 'factory/alarms', 'last known', { qos: 1, retain: true });
  const a = await gw.client();
  await a.connect({ clientId: 'ra' });
  await subscribe(a, { topicIdType: 'predefined', topicId: 5 });
  const first = await receive(a);
  assert.equal(text(first.data), 'last known');
  assert.equal(first.retain, true);
  const b = await gw.client();
  await b.connect({ clientId: 'rb' });
  await subscribe(b, { topicIdType: 'predefined', topicId: 5 });
  assert.equal(text((await receive(b)).data), 'last known');
  await a.expectNothing(300, 'PUBLISH');
});

test('100 devices sharing a filter: one broker subscription, one message fans out to all, removed with the last', async (t) => {
  const gw = await startGateway(t, {
    broker: true,
    config: {
      limits: { maxClients: 200, maxTopicsPerClient: 16, maxPacketSize: 1024, maxClientIdLength: 23 },
    },
  });
  const brokerFilters = watchBrokerSubscriptions(gw);
  const devices = await Promise.all(Array.from({ length: 100 }, () => gw.client()));
  await Promise.all(devices.map((d, i) => d.connect({ clientId: `fan${i}` })));
  for (const d of devices) await subscribe(d, { topicIdType: 'predefined', topicId: 5 }, 1);
  assert.equal(gw.gateway.subscriptions.filterCount, 1);
  await waitUntil(() => brokerFilters.has('factory/alarms'));
  assert.deepEqual([...brokerFilters], ['factory/alarms'], 'one broker subscription for 100 devices');
  await publishTo(gw.broker!.url, 'factory/alarms', 'all hands', { qos: 1 });
  const got = await Promise.all(devices.map((d) => receive(d)));
  assert.ok(got.every((p) => text(p.data) === 'all hands'));
  for (const d of devices) {
    await d.send({ type: 'UNSUBSCRIBE', msgId: 77, topicIdType: 'predefined', topicId: 5 });
    await d.next('UNSUBACK');
  }
  assert.equal(gw.gateway.subscriptions.filterCount, 0);
  assert.deepEqual(
    gw.brokerCalls.filter((c) => c.startsWith('-')),
    ['-factory/alarms'],
  );
  await waitUntil(() => brokerFilters.size === 0, { description: 'the broker subscription removed' });
});

test('a PUBLISH the device does not acknowledge is resent with DUP after T_retry; one message in flight at a time', async (t) => {
  const gw = await startGateway(t, { broker: true });
  const c = await gw.client();
  await c.connect({ clientId: 'lossy', duration: 600 });
  await subscribe(c, { topicName: 'cmd' }, 1);
  await publishTo(gw.broker!.url, 'mqttsn/lossy/cmd', 'one', { qos: 1 });
  await publishTo(gw.broker!.url, 'mqttsn/lossy/cmd', 'two', { qos: 1 });
  const dropped = await c.next('PUBLISH'); // the device "loses" it: no PUBACK
  assert.equal(dropped.dup, false);
  await c.expectNothing(200, 'PUBLISH');
  gw.advance(10_000);
  const resent = await c.next('PUBLISH');
  assert.deepEqual([resent.dup, resent.msgId, text(resent.data)], [true, dropped.msgId, 'one']);
  await c.send({ type: 'PUBACK', topicId: resent.topicId, msgId: resent.msgId, returnCode: 0 });
  assert.equal(text((await receive(c)).data), 'two');
  assert.equal(gw.gateway.stats.downlinkRetransmissions, 1);
});

test('after N_retry unanswered resends the device is lost and its will published', async (t) => {
  const gw = await startGateway(t, { broker: true });
  const c = await gw.client();
  await c.connect({ clientId: 'deaf', duration: 600, will: { topic: 'lwt', message: 'deaf' } });
  await subscribe(c, { topicName: 'cmd' }, 1);
  await publishTo(gw.broker!.url, 'mqttsn/deaf/cmd', 'hello?', { qos: 1 });
  await c.next('PUBLISH');
  for (let i = 0; i < 3; i++) {
    gw.advance(10_000);
    await c.next('PUBLISH');
  }
  gw.advance(10_000);
  await waitUntil(async () => (await gw.stored()).some((e) => e.topic === 'mqttsn/deaf/lwt'));
});

test('a sleeping device wakes three times and receives every message once, in order, with PINGRESP last', async (t) => {
  const gw = await startGateway(t, { broker: true });
  const c = await gw.client();
  await c.connect({ clientId: 'sleeper', duration: 30 });
  await subscribe(c, { topicName: 'cmd/#' }, 1);
  await c.disconnect(60);
  let n = 0;
  for (let cycle = 0; cycle < 3; cycle++) {
    const batch = [n++, n++, n++];
    for (const [k, i] of batch.entries()) {
      // MQTT orders messages only within one QoS, so each is queued before the next is published.
      await publishTo(gw.broker!.url, `mqttsn/sleeper/cmd/${i % 2}`, `m${i}`, { qos: i % 2 === 0 ? 1 : 2 });
      await waitUntil(() => gw.gateway.sessions.byClientId('sleeper')!.outgoing.length === k + 1);
    }
    await c.expectNothing(100, 'PUBLISH');
    await c.send({ type: 'PINGREQ', clientId: 'sleeper' });
    const got: string[] = [];
    for (let k = 0; k < 3; k++) got.push(text((await receive(c)).data));
    assert.deepEqual(
      got,
      batch.map((i) => `m${i}`),
    );
    await c.next('PINGRESP');
    assert.equal(gw.gateway.sessions.byClientId('sleeper')!.state, 'asleep');
    gw.advance(50_000);
  }
  await c.send({ type: 'PINGREQ', clientId: 'sleeper' });
  await c.next('PINGRESP'); // nothing buffered: at once
  await c.expectNothing(200, 'PUBLISH');
});

test('CONNECT while asleep makes the device active and delivers what is left', async (t) => {
  const gw = await startGateway(t, { broker: true });
  const c = await gw.client();
  await c.connect({ clientId: 'early', cleanSession: false });
  await subscribe(c, { topicName: 'cfg' }, 1);
  await c.disconnect(120);
  await publishTo(gw.broker!.url, 'mqttsn/early/cfg', 'v2', { qos: 1 });
  await waitUntil(() => gw.gateway.sessions.byClientId('early')!.outgoing.length === 1);
  await c.connect({ clientId: 'early', cleanSession: false });
  assert.equal(text((await receive(c)).data), 'v2');
});

test('QoS 0 for sleepers follows the setting; a full per-device queue drops its oldest', async (t) => {
  const gw = await startGateway(t, {
    broker: true,
    config: {
      downlink: {
        retryMs: 10_000,
        maxRetries: 3,
        maxQueuedPerClient: 3,
        policy: 'drop-oldest',
        bufferQos0ForSleepers: false,
      },
    },
  });
  const c = await gw.client();
  await c.connect({ clientId: 'small' });
  await subscribe(c, { topicName: 'x' }, 1);
  await c.disconnect(60);
  await publishTo(gw.broker!.url, 'mqttsn/small/x', 'qos0 dropped', { qos: 0 });
  for (let i = 0; i < 5; i++) await publishTo(gw.broker!.url, 'mqttsn/small/x', `m${i}`, { qos: 1 });
  await waitUntil(() => gw.gateway.stats.downlinkDropped === 3);
  await c.send({ type: 'PINGREQ', clientId: 'small' });
  const got = [text((await receive(c)).data), text((await receive(c)).data), text((await receive(c)).data)];
  assert.deepEqual(got, ['m2', 'm3', 'm4']);
  await c.next('PINGRESP');
});

test('a sleeping device’s buffer and a CleanSession=0 session survive a gateway restart', async (t) => {
  const gw = await startGateway(t, { broker: true });
  const c = await gw.client();
  await c.connect({ clientId: 'durable', cleanSession: false, will: { topic: 'lwt', message: 'gone' } });
  await subscribe(c, { topicName: 'cmd/#' }, 1);
  await c.disconnect(300);
  await publishTo(gw.broker!.url, 'mqttsn/durable/cmd/1', 'before restart', { qos: 1 });
  await waitUntil(() => gw.gateway.sessions.byClientId('durable')!.outgoing.length === 1);
  await gw.restart();
  const restored = gw.gateway.sessions.byClientId('durable')!;
  assert.equal(restored.state, 'asleep');
  assert.equal(restored.outgoing.length, 1);
  await publishTo(gw.broker!.url, 'mqttsn/durable/cmd/2', 'after restart', { qos: 1 });
  await waitUntil(() => restored.outgoing.length === 2, {
    description: 'the restored subscription is live at the broker',
  });
  await c.send({ type: 'PINGREQ', clientId: 'durable' });
  assert.equal(text((await receive(c)).data), 'before restart');
  assert.equal(text((await receive(c)).data), 'after restart');
  await c.next('PINGRESP');
  gw.advance(500_000); // never woke again: lost, the restored will is published
  await waitUntil(async () => (await gw.stored()).some((e) => e.topic === 'mqttsn/durable/lwt'));
});

test('CleanSession=1 clears subscriptions and queued messages', async (t) => {
  const gw = await startGateway(t, { broker: true });
  const c = await gw.client();
  await c.connect({ clientId: 'fresh', cleanSession: false });
  await subscribe(c, { topicName: 'cmd' }, 1);
  await c.disconnect();
  await publishTo(gw.broker!.url, 'mqttsn/fresh/cmd', 'stale', { qos: 1 });
  await waitUntil(() => gw.gateway.sessions.byClientId('fresh')?.outgoing.length === 1);
  await c.connect({ clientId: 'fresh', cleanSession: true });
  await c.expectNothing(300, 'PUBLISH');
  assert.equal(gw.gateway.subscriptions.filterCount, 0);
  await publishTo(gw.broker!.url, 'mqttsn/fresh/cmd', 'unsubscribed', { qos: 1 });
  await c.expectNothing(200, 'PUBLISH');
});

test('WILLTOPICUPD / WILLMSGUPD change the will; an empty WILLTOPICUPD deletes it', async (t) => {
  const gw = await startGateway(t);
  const c = await gw.client();
  await c.connect({ clientId: 'upd', duration: 10, will: { topic: 'old', message: 'old' } });
  await c.send({ type: 'WILLTOPICUPD', qos: 1, retain: true, willTopic: 'new' });
  assert.equal((await c.next('WILLTOPICRESP')).returnCode, 0);
  await c.send({ type: 'WILLMSGUPD', willMsg: Buffer.from('new message') });
  assert.equal((await c.next('WILLMSGRESP')).returnCode, 0);
  await c.send({ type: 'WILLTOPICUPD', qos: 0, retain: false, willTopic: 'bad/#' });
  assert.equal((await c.next('WILLTOPICRESP')).returnCode, ReturnCode.NOT_SUPPORTED);
  gw.advance(16_000);
  await waitUntil(async () => (await gw.stored()).length === 1);
  const [will] = await gw.stored();
  assert.deepEqual([will!.topic, text(will!.payload), will!.retain], ['mqttsn/upd/new', 'new message', true]);

  const d = await gw.client();
  await d.connect({ clientId: 'nowill', duration: 10, will: { topic: 'w', message: 'w' } });
  await d.send({ type: 'WILLTOPICUPD', qos: 0, retain: false });
  assert.equal((await d.next('WILLTOPICRESP')).returnCode, 0);
  gw.advance(16_000);
  await sleep(100);
  assert.equal((await gw.stored()).length, 1, 'no will after deleting it');
});

test('a wildcard filter shared by 100 devices (namespace without {clientId}) is one broker subscription', async (t) => {
  const gw = await startGateway(t, {
    broker: true,
    config: {
      namespace: compileNamespace('site/', '7'),
      limits: { maxClients: 200, maxTopicsPerClient: 16, maxPacketSize: 1024, maxClientIdLength: 23 },
    },
  });
  const brokerFilters = watchBrokerSubscriptions(gw);
  const devices = await Promise.all(Array.from({ length: 100 }, () => gw.client()));
  await Promise.all(devices.map((d, i) => d.connect({ clientId: `w${i}` })));
  for (const d of devices) assert.equal((await subscribe(d, { topicName: 'cmd/#' }, 1)).topicId, 0);
  await waitUntil(() => brokerFilters.has('site/cmd/#'));
  assert.deepEqual([...brokerFilters], ['site/cmd/#'], 'one broker subscription for 100 devices');
  await publishTo(gw.broker!.url, 'site/cmd/all-lights', 'off', { qos: 1 });
  const got = await Promise.all(devices.map((d) => receive(d)));
  assert.ok(got.every((p) => text(p.data) === 'off'));
});

test('a persistent session whose device stays away past --device-session-expiry is forgotten with its queue', async (t) => {
  const gw = await startGateway(t, { broker: true, config: { sessionExpiryMs: 60_000 } });
  const c = await gw.client();
  await c.connect({ clientId: 'gone', cleanSession: false });
  await subscribe(c, { topicName: 'cmd' }, 1);
  await c.disconnect();
  await publishTo(gw.broker!.url, 'mqttsn/gone/cmd', 'waiting', { qos: 1 });
  await waitUntil(() => gw.gateway.sessions.byClientId('gone')?.outgoing.length === 1);
  gw.advance(59_000);
  assert.ok(gw.gateway.sessions.byClientId('gone'), 'kept within the expiry');
  gw.advance(2_000);
  assert.equal(gw.gateway.sessions.byClientId('gone'), undefined);
  assert.equal(gw.gateway.subscriptions.filterCount, 0, 'its broker subscription is released');
  assert.equal(gw.gateway.stats.sessionsExpired, 1);
  await gw.restart();
  assert.equal(gw.gateway.sessions.byClientId('gone'), undefined, 'not restored either');
});
