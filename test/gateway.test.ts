import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ReturnCode } from '../src/codec/constants.js';
import dgram from 'node:dgram';
import { decode, encode, shortTopicId } from '../src/codec/index.js';
import type { Packet } from '../src/codec/types.js';
import { MqttSnTestClient, sleep, waitUntil } from './helpers/index.js';
import { startGateway } from './support/gateway-fixture.js';

const text = (bytes: Uint8Array): string => Buffer.from(bytes).toString();

test('SEARCHGW is answered with GWINFO carrying the gateway id, unicast to the sender', async (t) => {
  const gw = await startGateway(t);
  const c = await gw.client();
  await c.send({ type: 'SEARCHGW', radius: 1 });
  assert.deepEqual(await c.next('GWINFO'), { type: 'GWINFO', gwId: 7 });
});

test('CONNECT is accepted; refused ones get the spec return codes', async (t) => {
  const gw = await startGateway(t, {
    config: { limits: { maxClients: 2, maxTopicsPerClient: 4, maxPacketSize: 1024, maxClientIdLength: 10 } },
  });
  const c = await gw.client();
  assert.equal((await c.connect({ clientId: 'dev1' })).returnCode, ReturnCode.ACCEPTED);

  const refused = async (packet: Packet | Uint8Array): Promise<number> => {
    const other = await gw.client();
    if (packet instanceof Uint8Array) await other.sendRaw(packet);
    else await other.send(packet);
    const connack = await other.next('CONNACK');
    assert.equal(connack.type, 'CONNACK');
    return connack.returnCode;
  };
  const connect = (clientId: string, protocolId = 1): Packet => ({
    type: 'CONNECT',
    will: false,
    cleanSession: true,
    protocolId,
    duration: 10,
    clientId,
  });
  assert.equal(await refused(connect('v2client', 0x02)), ReturnCode.NOT_SUPPORTED, 'MQTT-SN 2.0 ProtocolId');
  for (const bad of ['a/b', 'a+', 'x#', '$sys', 'elevenchars']) {
    assert.equal(await refused(connect(bad)), ReturnCode.NOT_SUPPORTED, `client id ${bad}`);
  }
  // An empty client id cannot even be decoded; it still gets its refusal.
  assert.equal(
    await refused(Uint8Array.from([0x06, 0x04, 0x04, 0x01, 0x00, 0x0a])),
    ReturnCode.NOT_SUPPORTED,
  );
  assert.equal((await (await gw.client()).connect({ clientId: 'dev2' })).returnCode, ReturnCode.ACCEPTED);
  assert.equal(await refused(connect('dev3')), ReturnCode.CONGESTION, 'client limit');
  assert.equal(gw.gateway.stats.rejectedNotSupported, 7);
});

test('the will flow: WILLTOPICREQ, WILLTOPIC, WILLMSGREQ, WILLMSG, CONNACK; the will is published when the client is lost', async (t) => {
  const gw = await startGateway(t);
  const c = await gw.client();
  const connack = await c.connect({
    clientId: 'willer',
    duration: 10,
    will: { topic: 'status', message: 'gone', qos: 1, retain: true },
  });
  assert.equal(connack.returnCode, ReturnCode.ACCEPTED);
  gw.advance(14_000);
  assert.equal(gw.gateway.sessions.byClientId('willer')?.state, 'active', 'not lost before 1.5 x keep-alive');
  gw.advance(2_000);
  const stored = await waitUntil(async () => {
    const entries = await gw.stored();
    return entries.length === 1 ? entries : undefined;
  });
  assert.equal(stored[0]!.topic, 'mqttsn/willer/status');
  assert.equal(text(stored[0]!.payload), 'gone');
  assert.equal(stored[0]!.retain, true);
  assert.equal(gw.gateway.stats.willsPublished, 1);
  assert.equal(gw.gateway.sessions.byClientId('willer'), undefined, 'a lost clean session is forgotten');
});

test('traffic keeps a client alive; a clean DISCONNECT publishes no will', async (t) => {
  const gw = await startGateway(t);
  const c = await gw.client();
  await c.connect({ clientId: 'pinger', duration: 10, will: { topic: 'status', message: 'gone' } });
  for (let i = 0; i < 5; i++) {
    gw.advance(9_000);
    await c.pingreq();
  }
  assert.equal(gw.gateway.sessions.byClientId('pinger')?.state, 'active');
  await c.disconnect();
  gw.advance(60_000);
  await sleep(50);
  assert.equal((await gw.stored()).length, 0);
  assert.equal(gw.gateway.stats.willsPublished, 0);
});

test('a sleeping client that does not wake within its duration is lost and its will published', async (t) => {
  const gw = await startGateway(t);
  const c = await gw.client();
  await c.connect({ clientId: 'sleepy', duration: 5, will: { topic: 'lwt', message: 'lost' } });
  await c.disconnect(20);
  assert.equal(gw.gateway.sessions.byClientId('sleepy')?.state, 'asleep');
  gw.advance(25_000);
  assert.equal(
    gw.gateway.sessions.byClientId('sleepy')?.state,
    'asleep',
    'keep-alive does not apply while asleep',
  );
  await c.pingreq('sleepy');
  gw.advance(29_000);
  assert.equal(gw.gateway.sessions.byClientId('sleepy')?.state, 'asleep', 'waking restarted the sleep timer');
  gw.advance(2_000);
  await waitUntil(async () => (await gw.stored()).length === 1);
  assert.equal((await gw.stored())[0]!.topic, 'mqttsn/sleepy/lwt');
});

test('REGISTER gives per-client ids; bad names and a full table are refused with return codes', async (t) => {
  const gw = await startGateway(t, {
    config: { limits: { maxClients: 10, maxTopicsPerClient: 2, maxPacketSize: 1024, maxClientIdLength: 23 } },
  });
  const a = await gw.client();
  await a.connect({ clientId: 'a' });
  const id = await a.register('temp');
  assert.equal(await a.register('temp'), id, 'same name, same id');
  for (const bad of ['x/+', 'x/#', '$SYS/x', '/lead', 'trail/', 'a//b']) {
    await a.send({ type: 'REGISTER', topicId: 0, msgId: 99, topicName: bad });
    const regack = await a.next('REGACK');
    assert.equal(regack.type === 'REGACK' && regack.returnCode, ReturnCode.NOT_SUPPORTED, bad);
  }
  await a.register('hum');
  await a.send({ type: 'REGISTER', topicId: 0, msgId: 100, topicName: 'third' });
  const full = await a.next('REGACK');
  assert.equal(full.type === 'REGACK' && full.returnCode, ReturnCode.CONGESTION);
});

test('PUBLISH QoS 0, 1, 2 with normal, short and predefined ids land in the outbox under the namespace', async (t) => {
  const gw = await startGateway(t);
  const c = await gw.client();
  await c.connect({ clientId: 'dev' });
  await c.publish({ topicName: 'a/b', qos: 0, data: 'zero' });
  const ack1 = await c.publish({ topicName: 'a/b', qos: 1, data: 'one', retain: true });
  assert.equal(ack1?.type === 'PUBACK' && ack1.returnCode, ReturnCode.ACCEPTED);
  const comp = await c.publish({ topicName: 'ab', topicIdType: 'short', qos: 2, data: 'two' });
  assert.equal(comp?.type, 'PUBCOMP');
  await c.publish({ topicId: 5, topicIdType: 'predefined', qos: 1, data: 'five' });
  await waitUntil(async () => (await gw.stored()).length === 4);
  const stored = await gw.stored();
  assert.deepEqual(
    stored.map((e) => [e.topic, text(e.payload), e.retain, e.clientId]),
    [
      ['mqttsn/dev/a/b', 'zero', false, 'dev'],
      ['mqttsn/dev/a/b', 'one', true, 'dev'],
      ['mqttsn/dev/ab', 'two', false, 'dev'],
      ['factory/alarms', 'five', false, 'dev'],
    ],
  );
  assert.deepEqual(gw.gateway.stats.publishIn, [0, 1, 2, 1]);
});

test('a client-specific predefined id wins over the global one', async (t) => {
  const gw = await startGateway(t);
  const c = await gw.client();
  await c.connect({ clientId: 'special' });
  await c.publish({ topicId: 5, topicIdType: 'predefined', qos: 1, data: 'x' });
  assert.equal((await gw.stored())[0]!.topic, 'special/five');
});

// A reload of predefined ids while a session publishes on one: e2e.test.ts (SIGHUP).
test('a topic id resolved once follows its re-registration to another name after a clean session', async (t) => {
  const gw = await startGateway(t);
  const c = await gw.client();
  await c.connect({ clientId: 'dev' });
  const temp = await c.register('temp');
  await c.publish({ topicId: temp, topicIdType: 'normal', qos: 1, data: '1' });
  await c.publish({ topicId: 5, topicIdType: 'predefined', qos: 1, data: '2' });
  await c.connect({ clientId: 'dev', cleanSession: true }); // clears the topic table
  const hum = await c.register('hum');
  assert.equal(hum, temp, 'the cleared table gives the same id out again');
  await c.publish({ topicId: hum, topicIdType: 'normal', qos: 1, data: '3' });
  await c.publish({ topicId: 5, topicIdType: 'predefined', qos: 1, data: '4' });
  await waitUntil(async () => (await gw.stored()).length === 4);
  assert.deepEqual(
    (await gw.stored()).map((e) => [e.topic, text(e.payload)]),
    [
      ['mqttsn/dev/temp', '1'],
      ['factory/alarms', '2'],
      ['mqttsn/dev/hum', '3'],
      ['factory/alarms', '4'],
    ],
  );
});

test('unknown topic ids are answered with PUBACK "invalid topic id", also at QoS 0', async (t) => {
  const gw = await startGateway(t);
  const c = await gw.client();
  await c.connect({ clientId: 'dev' });
  for (const [topicIdType, topicId, qos] of [
    ['normal', 42, 1],
    ['normal', 42, 0],
    ['predefined', 99, 1],
    ['normal', 0xffff, 1],
  ] as const) {
    await c.send({
      type: 'PUBLISH',
      dup: false,
      qos,
      retain: false,
      topicIdType,
      topicId,
      msgId: qos ? 3 : 0,
      data: new Uint8Array(1),
    });
    const ack = await c.next('PUBACK');
    assert.equal(
      ack.type === 'PUBACK' && ack.returnCode,
      ReturnCode.INVALID_TOPIC_ID,
      `${topicIdType} ${topicId}`,
    );
  }
  assert.equal((await gw.stored()).length, 0);
});

test('retransmitted QoS 1 (DUP) and QoS 2 PUBLISHes are acknowledged again and stored once', async (t) => {
  const gw = await startGateway(t);
  const c = await gw.client();
  await c.connect({ clientId: 'dup' });
  const topicId = await c.register('t');
  await c.publish({ topicId, qos: 1, data: 'once', msgId: 10 });
  const again = await c.publish({ topicId, qos: 1, data: 'once', msgId: 10, dup: true });
  assert.equal(again?.type === 'PUBACK' && again.returnCode, ReturnCode.ACCEPTED);

  await c.send({
    type: 'PUBLISH',
    dup: false,
    qos: 2,
    retain: false,
    topicIdType: 'normal',
    topicId,
    msgId: 11,
    data: Buffer.from('twice?'),
  });
  await c.next('PUBREC');
  await c.send({
    type: 'PUBLISH',
    dup: true,
    qos: 2,
    retain: false,
    topicIdType: 'normal',
    topicId,
    msgId: 11,
    data: Buffer.from('twice?'),
  });
  await c.next('PUBREC');
  await c.send({ type: 'PUBREL', msgId: 11 });
  await c.next('PUBCOMP');
  await c.send({ type: 'PUBREL', msgId: 11 });
  await c.next('PUBCOMP');
  assert.deepEqual(
    (await gw.stored()).map((e) => text(e.payload)),
    ['once', 'twice?'],
  );
  assert.equal(gw.gateway.stats.duplicates, 2);
});

test('QoS -1 without a connection: predefined ids, short names under the anonymous id, and the Paho long-name form', async (t) => {
  const gw = await startGateway(t);
  const c = await gw.client();
  await c.publish({ topicId: 5, topicIdType: 'predefined', qos: -1, data: 'alarm' });
  await c.publish({ topicName: 'tt', topicIdType: 'short', qos: -1, data: 'short' });
  // Capture PA4: topic type normal, topic id = name length, name prefixed to the payload.
  await c.sendRaw(Buffer.from('210c600011000061206c6f6e6720746f706963206e616d656d797061796c6f6164', 'hex'));
  await c.publish({ topicId: 77, topicIdType: 'predefined', qos: -1, data: 'unknown id' });
  await waitUntil(async () => (await gw.stored()).length === 3);
  assert.deepEqual(
    (await gw.stored()).map((e) => [e.topic, text(e.payload)]),
    [
      ['factory/alarms', 'alarm'],
      ['mqttsn/$anonymous/tt', 'short'],
      ['mqttsn/$anonymous/a long topic name', 'mypayload'],
    ],
  );
  await c.expectNothing(100);
  assert.equal(gw.gateway.stats.rejectedInvalidTopic, 1);
});

test('packets needing a session from an unknown address get DISCONNECT', async (t) => {
  const gw = await startGateway(t);
  const c = await gw.client();
  await c.send({ type: 'REGISTER', topicId: 0, msgId: 1, topicName: 'x' });
  await c.next('DISCONNECT');
  await c.send({
    type: 'PUBLISH',
    dup: false,
    qos: 1,
    retain: false,
    topicIdType: 'short',
    topicId: shortTopicId('ab'),
    msgId: 1,
    data: new Uint8Array(),
  });
  await c.next('DISCONNECT');
});

test('a CONNECT with a known client id from a new address takes the session over', async (t) => {
  const gw = await startGateway(t);
  const first = await gw.client();
  await first.connect({ clientId: 'roamer', cleanSession: false });
  const topicId = await first.register('x');
  const second = await gw.client();
  await second.send({
    type: 'CONNECT',
    will: false,
    cleanSession: false,
    protocolId: 1,
    duration: 60,
    clientId: 'roamer',
  });
  // The old address is asked first (stolen sessions); it stays silent, so the session moves.
  await first.next('PINGREQ');
  gw.advance(2_000);
  assert.equal((await second.next('CONNACK')).returnCode, ReturnCode.ACCEPTED);
  const ack = await second.publish({ topicId, qos: 1, data: 'kept id' });
  assert.equal(
    ack?.type === 'PUBACK' && ack.returnCode,
    ReturnCode.ACCEPTED,
    'CleanSession=0 kept the topic table',
  );
  await first.send({ type: 'PINGREQ' });
  await first.next('DISCONNECT');
  assert.equal(gw.gateway.sessions.size, 1);
});

test('outbox quota: QoS 1 beyond it gets PUBACK "congestion"', async (t) => {
  const gw = await startGateway(t, { outbox: { maxMessages: 3 } });
  const c = await gw.client();
  await c.connect({ clientId: 'q' });
  const codes: number[] = [];
  for (let i = 0; i < 5; i++) {
    const ack = await c.publish({ topicName: 'fill', qos: 1, data: `m${i}` });
    codes.push(ack?.type === 'PUBACK' ? ack.returnCode : -1);
  }
  assert.deepEqual(codes, [0, 0, 0, ReturnCode.CONGESTION, ReturnCode.CONGESTION]);
  assert.equal((await gw.stored()).length, 3);
});

test('an oversized PUBLISH gets PUBACK "not supported" and is not stored', async (t) => {
  const gw = await startGateway(t, {
    config: { limits: { maxClients: 10, maxTopicsPerClient: 10, maxPacketSize: 64, maxClientIdLength: 23 } },
  });
  const c = await gw.client();
  await c.connect({ clientId: 'big' });
  const ack = await c.publish({ topicName: 'b', qos: 1, data: 'x'.repeat(100) });
  assert.equal(ack?.type === 'PUBACK' && ack.returnCode, ReturnCode.NOT_SUPPORTED);
  assert.equal(gw.gateway.stats.oversized, 1);
});

test('malformed datagrams are dropped and counted; the gateway keeps serving', async (t) => {
  const gw = await startGateway(t);
  const c = await gw.client();
  for (const hex of ['', '00', '0301', '05030000', '020c', '0c0c030001000068656c6c6f', 'ff'.repeat(40)]) {
    await c.sendRaw(Buffer.from(hex, 'hex'));
  }
  await c.send({ type: 'SEARCHGW', radius: 0 });
  await c.next('GWINFO');
  assert.equal(gw.gateway.stats.malformed, 7);
});

test('random datagrams never crash the gateway', async (t) => {
  const gw = await startGateway(t);
  const c = await gw.client();
  let seed = 12345;
  const random = (): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
  const valid = [
    encode({ type: 'CONNECT', will: true, cleanSession: true, protocolId: 1, duration: 5, clientId: 'fz' }),
    encode({
      type: 'PUBLISH',
      dup: false,
      qos: 1,
      retain: false,
      topicIdType: 'short',
      topicId: 0x6162,
      msgId: 1,
      data: Buffer.from('x'),
    }),
    encode({ type: 'DISCONNECT', duration: 3 }),
  ];
  for (let i = 0; i < 3000; i++) {
    let bytes: Uint8Array;
    if (random() < 0.5) {
      bytes = Uint8Array.from({ length: Math.floor(random() * 40) }, () => Math.floor(random() * 256));
      if (bytes.length > 1) bytes[0] = bytes.length;
    } else {
      bytes = Uint8Array.from(valid[i % valid.length]!);
      bytes[Math.floor(random() * bytes.length)] ^= 1 << Math.floor(random() * 8);
    }
    await c.sendRaw(bytes);
    if (i % 500 === 0) await sleep(5);
  }
  const probe = await gw.client();
  await probe.send({ type: 'SEARCHGW', radius: 0 });
  await probe.next('GWINFO', 3000);
  assert.ok(gw.gateway.stats.malformed > 0);
  assert.equal(gw.gateway.stats.handlerErrors, 0, 'no handler threw');
});

test('a forwarder-encapsulated PUBLISH is answered through the forwarder with the same node id', async (t) => {
  const gw = await startGateway(t);
  const forwarder = await gw.client();
  const nodeId = Buffer.from('node1');
  const wrap = (packet: Exclude<Packet, { type: 'ENCAPSULATED' }>): Packet => ({
    type: 'ENCAPSULATED',
    radius: 0,
    wirelessNodeId: nodeId,
    packet,
  });
  await forwarder.send(
    wrap({
      type: 'CONNECT',
      will: false,
      cleanSession: true,
      protocolId: 1,
      duration: 30,
      clientId: 'behind-fwd',
    }),
  );
  const connack = await forwarder.next('ENCAPSULATED');
  assert.ok(connack.type === 'ENCAPSULATED' && connack.packet.type === 'CONNACK');
  assert.deepEqual(Buffer.from(connack.wirelessNodeId), nodeId);
  await forwarder.send(
    wrap({
      type: 'PUBLISH',
      dup: false,
      qos: 1,
      retain: false,
      topicIdType: 'short',
      topicId: shortTopicId('tt'),
      msgId: 4,
      data: Buffer.from('via forwarder'),
    }),
  );
  const puback = await forwarder.next('ENCAPSULATED');
  assert.ok(puback.type === 'ENCAPSULATED' && puback.packet.type === 'PUBACK' && puback.packet.msgId === 4);
  assert.equal((await gw.stored())[0]!.topic, 'mqttsn/behind-fwd/tt');
});

test('IPv6: the gateway listens on ::1 and answers from the same socket', async (t) => {
  const gw = await startGateway(t, {
    listen: [
      { host: '127.0.0.1', port: 0 },
      { host: '::1', port: 0 },
    ],
  });
  const c = await gw.client('udp6');
  assert.equal((await c.connect({ clientId: 'v6' })).returnCode, ReturnCode.ACCEPTED);
  const ack = await c.publish({ topicName: 'six', qos: 1, data: '6' });
  assert.equal(ack?.type === 'PUBACK' && ack.returnCode, ReturnCode.ACCEPTED);
});

test('two devices at the same port number on different addresses are told apart, also once one leaves', async (t) => {
  const gw = await startGateway(t, {
    listen: [
      { host: '127.0.0.1', port: 0 },
      { host: '::1', port: 0 },
    ],
  });
  const gatewayPort = (family: string): number =>
    gw.gateway.addresses().find((a) => a.family === family)!.port;
  const v4 = await MqttSnTestClient.create({ gatewayPort: gatewayPort('IPv4') });
  t.after(() => v4.close());
  const v6 = await MqttSnTestClient.create({
    gatewayPort: gatewayPort('IPv6'),
    family: 'udp6',
    bindPort: v4.port,
  });
  t.after(() => v6.close());
  await v4.connect({ clientId: 'four' });
  await v6.connect({ clientId: 'six' });
  await v4.publish({ topicName: 'ab', topicIdType: 'short', qos: 1, data: '4a' });
  await v6.publish({ topicName: 'ab', topicIdType: 'short', qos: 1, data: '6a' });
  await v4.send({ type: 'DISCONNECT' });
  await v4.next('DISCONNECT');
  await v6.publish({ topicName: 'ab', topicIdType: 'short', qos: 1, data: '6b' });
  // No session at the IPv4 address any more: told to connect again, nothing stored.
  await v4.send({
    type: 'PUBLISH',
    dup: false,
    qos: 1,
    retain: false,
    topicIdType: 'short',
    topicId: shortTopicId('ab'),
    msgId: 9,
    data: Buffer.from('4b'),
  });
  await v4.next('DISCONNECT');
  await waitUntil(async () => (await gw.stored()).length === 3);
  assert.deepEqual(
    (await gw.stored()).map((e) => [e.clientId, e.topic, text(e.payload)]),
    [
      ['four', 'mqttsn/four/ab', '4a'],
      ['six', 'mqttsn/six/ab', '6a'],
      ['six', 'mqttsn/six/ab', '6b'],
    ],
  );
});

test('QoS 0 while the uplink is down is dropped and counted when buffering is off', async (t) => {
  // The bridge's own rule (--no-buffer-qos0), not a stand-in: the fixture's uplink never connects.
  const gw = await startGateway(t, { outbox: { bufferQos0: false } });
  const c = await gw.client();
  await c.connect({ clientId: 'drop' });
  await c.publish({ topicName: 'q0', qos: 0, data: 'gone' });
  await c.publish({ topicName: 'q0', qos: 1, data: 'kept' });
  assert.deepEqual(
    (await gw.stored()).map((e) => text(e.payload)),
    ['kept'],
  );
  assert.equal(gw.gateway.stats.droppedWhileDown, 1);
});

test('periodic ADVERTISE goes to the configured address (loopback here), carrying the interval', async (t) => {
  const listener = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => listener.bind(0, '127.0.0.1', resolve));
  t.after(() => listener.close());
  const received: Buffer[] = [];
  listener.on('message', (msg) => received.push(msg));
  await startGateway(t, {
    config: { advertise: { host: '127.0.0.1', port: listener.address().port, intervalSeconds: 1 } },
  });
  await waitUntil(() => received.length >= 2, { timeoutMs: 3000, description: 'two ADVERTISEs' });
  assert.deepEqual(decode(received[0]!), { type: 'ADVERTISE', gwId: 7, duration: 1 });
});
