/**
 * Hostile input (issue 8): strings the broker would refuse never reach it, decodable-but-invalid
 * packets are answered, cloud messages a device cannot be sent are refused before storing, no input
 * ends the process, and a flood of refusals writes a handful of log lines. Real UDP, LevelDB, brokers.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test, type TestContext } from 'node:test';
import mqtt from 'mqtt';
import pino from 'pino';
import { ReturnCode } from '../src/codec/constants.js';
import { shortTopicId } from '../src/codec/index.js';
import { DownlinkStore } from '../src/store/downlink.js';
import { SessionStore } from '../src/store/sessions.js';
import { decodeMqttString, mqttStringProblem } from '../src/topics/mqtt-string.js';
import {
  collect,
  MqttSnTestClient,
  requireMosquitto,
  sleep,
  startMosquitto,
  waitUntil,
  withTempDir,
  type MosquittoHandle,
} from './helpers/index.js';
import { startGateway } from './support/gateway-fixture.js';
import { openOutboxStore, startUplink } from './support/uplink-rig.js';
import { spawnGateway, type GatewayProcess } from './support/gateway-process.js';

/** Strings Mosquitto refuses (mosquitto_validate_utf8), one of each class. */
const REFUSED = {
  NUL: 'a\u0000b',
  TAB: 'a\tb',
  'C0 0x1f': 'a\u001fb',
  DEL: 'a\u007fb',
  'C1 0x80': 'a\u0080b',
  'C1 0x9f': 'a\u009fb',
  'U+FDD0': 'a\ufdd0b',
  'U+FDEF': 'a\ufdefb',
  'U+FFFE': 'a\ufffeb',
  'U+FFFF': 'a\uffffb',
  'U+1FFFE': 'a\u{1fffe}b',
  'U+10FFFF': 'a\u{10ffff}b',
  'lone surrogate': 'a\ud800b',
};

test('the broker string rules: what Mosquitto refuses is refused, everything else passes', () => {
  for (const [name, s] of Object.entries(REFUSED)) assert.notEqual(mqttStringProblem(s), null, name);
  for (const ok of [
    'a',
    'température/°C',
    '温度',
    'a\u00a0b',
    'a\ufdcfb',
    'a\ufdf0b',
    'a\ufffdb',
    '😀',
    '\ufeffa',
  ]) {
    assert.equal(mqttStringProblem(ok), null, JSON.stringify(ok));
  }
  assert.notEqual(mqttStringProblem('x'.repeat(65_536)), null, 'longer than the 16-bit length');
  // Ill-formed bytes: overlong '/', an encoded surrogate, beyond U+10FFFF, truncated, a bare continuation.
  for (const bytes of [[0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82], [0x80]]) {
    assert.ok('problem' in decodeMqttString(Uint8Array.from(bytes)), bytes.join(','));
  }
  assert.deepEqual(decodeMqttString(Buffer.from('ok/topic')), { value: 'ok/topic' });
});

/** A pino logger writing to a line counter. */
function countingLogger(level = 'info'): { log: pino.Logger; lines: () => string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(line);
      callback();
    },
  });
  return { log: pino({ level }, stream), lines: () => lines };
}

test('every device-side path refuses strings the broker would refuse, with the spec return code', async (t) => {
  const gw = await startGateway(t);
  const c = await gw.client();
  assert.equal((await c.connect({ clientId: 'dev' })).returnCode, ReturnCode.ACCEPTED);

  for (const [name, bad] of Object.entries(REFUSED)) {
    if (name === 'lone surrogate') continue; // not encodable as UTF-8 on the wire: see the raw bytes below
    const msgId = c.nextMsgId();
    await c.send({ type: 'REGISTER', topicId: 0, msgId, topicName: `t/${bad}` });
    const regack = await c.next('REGACK');
    assert.equal(regack.returnCode, ReturnCode.NOT_SUPPORTED, `REGISTER ${name}`);

    const subId = c.nextMsgId();
    await c.send({
      type: 'SUBSCRIBE',
      dup: false,
      qos: 1,
      msgId: subId,
      topicIdType: 'normal',
      topicName: `s/${bad}/#`,
    });
    const suback = await c.next('SUBACK');
    assert.equal(suback.returnCode, ReturnCode.NOT_SUPPORTED, `SUBSCRIBE ${name}`);

    await c.send({ type: 'WILLTOPICUPD', qos: 0, retain: false, willTopic: `w/${bad}` });
    assert.equal(
      (await c.next('WILLTOPICRESP')).returnCode,
      ReturnCode.NOT_SUPPORTED,
      `WILLTOPICUPD ${name}`,
    );

    const other = await gw.client();
    const connack = await other.connect({ clientId: `x${bad}`.slice(0, 8) });
    assert.equal(connack.returnCode, ReturnCode.NOT_SUPPORTED, `client id ${name}`);
    const willer = await gw.client();
    const willConnack = await willer.connect({
      clientId: 'willer',
      will: { topic: `w/${bad}`, message: 'x' },
    });
    assert.equal(willConnack.returnCode, ReturnCode.NOT_SUPPORTED, `will topic ${name}`);
  }

  // Short topic names made of one refused character: PUBLISH QoS 1 gets "invalid topic id".
  for (const short of ['A\u007f', 'A\t', '\u0000A', 'A\u0085']) {
    const bytes = Buffer.from(short, 'utf8');
    if (bytes.length !== 2) continue;
    const ack = await c.publish({ topicIdType: 'short', topicId: bytes.readUInt16BE(0), qos: 1, data: 'x' });
    assert.equal(ack?.type, 'PUBACK');
    assert.equal(
      (ack as { returnCode: number }).returnCode,
      ReturnCode.INVALID_TOPIC_ID,
      JSON.stringify(short),
    );
  }

  // QoS −1, no session: the 8-byte datagram of issue 8 (short topic "A<DEL>") and Paho's long-name form.
  const anon = await gw.client();
  await anon.sendRaw(Uint8Array.from([0x08, 0x0c, 0x62, 0x41, 0x7f, 0x00, 0x00, 0x78]));
  const longName = Buffer.from('a\tb');
  await anon.sendRaw(
    Buffer.concat([
      Buffer.from([7 + longName.length + 1, 0x0c, 0x60, 0x00, longName.length, 0, 0]),
      longName,
      Buffer.from('x'),
    ]),
  );
  // A well-formed QoS −1 message afterwards proves the datagrams were processed (in order) and dropped.
  await anon.publish({ qos: -1, topicIdType: 'short', topicId: shortTopicId('ok'), data: 'fine' });
  const stored = await waitUntil(async () => {
    const entries = await gw.stored();
    return entries.length >= 1 ? entries : undefined;
  });
  await sleep(50);
  assert.deepEqual(
    (await gw.stored()).map((e) => e.topic),
    ['mqttsn/$anonymous/ok'],
    `nothing invalid stored: ${JSON.stringify(stored.map((e) => e.topic))}`,
  );
  assert.ok(gw.gateway.stats.rejectedInvalidTopic >= 3 + 2, `${gw.gateway.stats.rejectedInvalidTopic}`);
});

test('a REGISTER, SUBSCRIBE or WILLTOPICUPD that is not UTF-8 or is empty is answered "not supported", not ignored', async (t) => {
  const gw = await startGateway(t);
  const c = await gw.client();
  assert.equal((await c.connect({ clientId: 'dev' })).returnCode, ReturnCode.ACCEPTED);
  const bad = [0xc0, 0xaf]; // an overlong '/'
  // REGISTER: len, 0x0a, topicId(2), msgId(2), name.
  await c.sendRaw(Uint8Array.from([6 + bad.length, 0x0a, 0, 0, 0x12, 0x34, ...bad]));
  assert.deepEqual(await c.next('REGACK'), {
    type: 'REGACK',
    topicId: 0,
    msgId: 0x1234,
    returnCode: ReturnCode.NOT_SUPPORTED,
  });
  await c.sendRaw(Uint8Array.from([6, 0x0a, 0, 0, 0x12, 0x35])); // empty name
  assert.equal((await c.next('REGACK')).returnCode, ReturnCode.NOT_SUPPORTED);
  // SUBSCRIBE: len, 0x12, flags, msgId(2), name.
  await c.sendRaw(Uint8Array.from([5 + bad.length, 0x12, 0x20, 0x00, 0x07, ...bad]));
  assert.deepEqual(await c.next('SUBACK'), {
    type: 'SUBACK',
    qos: 0,
    topicId: 0,
    msgId: 7,
    returnCode: ReturnCode.NOT_SUPPORTED,
  });
  // UNSUBSCRIBE is always answered.
  await c.sendRaw(Uint8Array.from([5 + bad.length, 0x14, 0x00, 0x00, 0x08, ...bad]));
  assert.deepEqual(await c.next('UNSUBACK'), { type: 'UNSUBACK', msgId: 8 });
  // WILLTOPICUPD: len, 0x1a, flags, topic.
  await c.sendRaw(Uint8Array.from([3 + bad.length, 0x1a, 0x00, ...bad]));
  assert.equal((await c.next('WILLTOPICRESP')).returnCode, ReturnCode.NOT_SUPPORTED);
  // PUBLISH QoS 1 with a reserved flag bit (Will) set: PUBACK "not supported" instead of a silent drop.
  await c.sendRaw(Uint8Array.from([8, 0x0c, 0x20 | 0x08 | 0x02, 0x61, 0x62, 0x00, 0x09, 0x78]));
  assert.deepEqual(await c.next('PUBACK'), {
    type: 'PUBACK',
    topicId: 0x6162,
    msgId: 9,
    returnCode: ReturnCode.NOT_SUPPORTED,
  });
  // The will flow: a WILLTOPIC that is not UTF-8 ends it with CONNACK "not supported".
  const willer = await gw.client();
  await willer.send({
    type: 'CONNECT',
    will: true,
    cleanSession: true,
    protocolId: 1,
    duration: 10,
    clientId: 'w',
  });
  await willer.next('WILLTOPICREQ');
  await willer.sendRaw(Uint8Array.from([3 + bad.length, 0x07, 0x00, ...bad]));
  assert.equal((await willer.next('CONNACK')).returnCode, ReturnCode.NOT_SUPPORTED);
  assert.equal(gw.gateway.sessions.byClientId('dev')?.state, 'active', 'the session is untouched');
});

test('a persisted session with a filter, will or client id the broker refuses does not bring it back on restart', async (t) => {
  let seeded = false;
  const gw = await startGateway(t, {
    async seed(store, writer) {
      if (seeded) return;
      seeded = true;
      const sessions = new SessionStore(store, writer);
      const save = (snapshot: Parameters<SessionStore['save']>[0]): Promise<void> =>
        new Promise((resolve, reject) => sessions.save(snapshot, (err) => (err ? reject(err) : resolve())));
      // What an older version accepted: DEL in a filter, C1 in a will topic, TAB in a client id.
      await save({
        clientId: 'old',
        subscriptions: [
          { filter: 'mqttsn/old/good/#', qos: 1, topicIdType: 'normal' },
          { filter: 'mqttsn/old/b\u007fd/#', qos: 1, topicIdType: 'normal' },
        ],
        will: { topic: 'mqttsn/old/\u0085', payload: '', qos: 0, retain: false },
        asleep: false,
        sleepMs: 0,
        keepAliveMs: 60_000,
      });
      await save({
        clientId: 'ta\tb',
        subscriptions: [{ filter: 'mqttsn/ta\tb/cmd', qos: 1, topicIdType: 'normal' }],
        asleep: false,
        sleepMs: 0,
        keepAliveMs: 60_000,
      });
    },
  });
  assert.deepEqual(gw.brokerCalls, ['+mqttsn/old/good/#'], 'only the valid filter is re-subscribed');
  const old = gw.gateway.sessions.byClientId('old');
  assert.ok(old, 'the valid part of the session is kept');
  assert.equal(old.will, undefined, 'the invalid will is dropped');
  assert.equal(gw.gateway.sessions.byClientId('ta\tb'), undefined);
  assert.equal(gw.gateway.stats.restoreDropped, 3);
  // The cleaned snapshot is what is on disk now: a second restart drops nothing more.
  await gw.restart();
  assert.equal(gw.gateway.stats.restoreDropped, 0);
  assert.deepEqual(gw.brokerCalls.slice(1), ['+mqttsn/old/good/#']);
});

test('1,000 REGISTER a/+ and 1,000 CONNECTs write a handful of log lines', async (t) => {
  const { log, lines } = countingLogger('info');
  const gw = await startGateway(t, { log });
  const c = await gw.client();
  assert.equal((await c.connect({ clientId: 'flood' })).returnCode, ReturnCode.ACCEPTED);
  const before = lines().length;
  for (let i = 0; i < 1000; i++)
    await c.send({ type: 'REGISTER', topicId: 0, msgId: i + 1, topicName: 'a/+' });
  await waitUntil(() => gw.gateway.stats.rejectedNotSupported >= 1000 || undefined);
  for (let i = 0; i < 1000; i++) {
    await c.send({
      type: 'CONNECT',
      will: false,
      cleanSession: true,
      protocolId: 1,
      duration: 60,
      clientId: `d${i % 50}`,
    });
  }
  await waitUntil(() => gw.gateway.stats.connects >= 1001 || undefined);
  const written = lines().slice(before);
  assert.ok(written.length <= 5, `${written.length} lines:\n${written.slice(0, 10).join('\n')}`);
});

test('a cloud message that cannot be represented for the device is acknowledged and dropped; others flow', async (t) => {
  const gw = await startGateway(t, {
    broker: true,
    config: {
      limits: { maxClients: 100, maxTopicsPerClient: 16, maxPacketSize: 1024, maxClientIdLength: 23 },
      downlink: {
        retryMs: 10_000,
        maxRetries: 3,
        maxQueuedPerClient: 100,
        policy: 'drop-oldest',
        bufferQos0ForSleepers: true,
        maxPacketSize: 2000,
      },
    },
  });
  const small = await gw.client();
  assert.equal((await small.connect({ clientId: 'small' })).returnCode, ReturnCode.ACCEPTED);
  const subId = small.nextMsgId();
  await small.send({
    type: 'SUBSCRIBE',
    dup: false,
    qos: 1,
    msgId: subId,
    topicIdType: 'normal',
    topicName: '#',
  });
  await small.next('SUBACK');
  await waitUntil(() => gw.brokerCalls.includes('+mqttsn/small/#') || undefined);
  const cloud = await mqtt.connectAsync(gw.broker!.url, { clientId: 'cloud', reconnectPeriod: 0 });
  t.after(() => cloud.endAsync(true));
  await sleep(100);
  // Over the configured 2,000 bytes: dropped before storing; a topic needing a 2,000-byte REGISTER too.
  await cloud.publishAsync('mqttsn/small/big', Buffer.alloc(3000), { qos: 1 });
  await cloud.publishAsync(`mqttsn/small/${'t'.repeat(2100)}`, Buffer.from('x'), { qos: 1 });
  await cloud.publishAsync('mqttsn/small/ok', Buffer.from('fine'), { qos: 1 });
  const register = await small.next('REGISTER');
  assert.equal(register.topicName, 'ok');
  await small.send({ type: 'REGACK', topicId: register.topicId, msgId: register.msgId, returnCode: 0 });
  const publish = await small.next('PUBLISH');
  assert.equal(Buffer.from(publish.data).toString(), 'fine');
  await small.send({ type: 'PUBACK', topicId: publish.topicId, msgId: publish.msgId, returnCode: 0 });
  assert.equal(gw.gateway.stats.downlinkUnrepresentable, 2);
  await waitUntil(() => gw.gateway.sessions.byClientId('small')?.outgoing.length === 0 || undefined);
});

test('a queued downlink message from an older version that cannot be sent is skipped, not thrown on restart', async (t) => {
  let seeded = false;
  const gw = await startGateway(t, {
    async seed(store, writer) {
      if (seeded) return;
      seeded = true;
      const sessions = new SessionStore(store, writer);
      await new Promise<void>((resolve, reject) =>
        sessions.save(
          {
            clientId: 'sleepy',
            subscriptions: [{ filter: 'mqttsn/sleepy/cmd', qos: 1, topicIdType: 'normal' }],
            asleep: false,
            sleepMs: 0,
            keepAliveMs: 60_000,
          },
          (err) => (err ? reject(err) : resolve()),
        ),
      );
      const downlink = await DownlinkStore.open(store, writer);
      const message = (payload: Buffer) => ({
        seq: 0,
        topic: 'mqttsn/sleepy/cmd',
        payload,
        qos: 1 as const,
        retain: false,
        topicIdType: 'normal' as const,
        topicId: 0,
      });
      await new Promise<void>((resolve, reject) =>
        downlink.put(
          [
            { clientId: 'sleepy', message: message(Buffer.alloc(70_000)) },
            { clientId: 'sleepy', message: message(Buffer.from('after')) },
          ],
          (err) => (err ? reject(err) : resolve()),
        ),
      );
    },
  });
  const c = await gw.client();
  assert.equal(
    (await c.connect({ clientId: 'sleepy', cleanSession: false })).returnCode,
    ReturnCode.ACCEPTED,
  );
  const register = await c.next('REGISTER');
  await c.send({ type: 'REGACK', topicId: register.topicId, msgId: register.msgId, returnCode: 0 });
  const publish = await c.next('PUBLISH');
  assert.equal(Buffer.from(publish.data).toString(), 'after');
  assert.equal(gw.gateway.stats.downlinkUnrepresentable, 1);
});

test('an exception while routing a broker message is caught, counted and acknowledged; the next message flows', async (t) => {
  let failures = 1;
  const gw = await startGateway(t, {
    broker: true,
    // A downlink store that fails on purpose, once, by throwing where it should call back.
    downlinkStore: (real) =>
      ({
        loadAll: () => real.loadAll(),
        delete: (clientId: string, seq: number) => real.delete(clientId, seq),
        deleteAll: (clientId: string, messages: Parameters<DownlinkStore['deleteAll']>[1]) =>
          real.deleteAll(clientId, messages),
        put(entries: Parameters<DownlinkStore['put']>[0], done: Parameters<DownlinkStore['put']>[1]) {
          if (failures-- > 0) throw new Error('downlink store failed on purpose');
          real.put(entries, done);
        },
      }) as unknown as DownlinkStore,
  });
  const c = await gw.client();
  assert.equal((await c.connect({ clientId: 'dev' })).returnCode, ReturnCode.ACCEPTED);
  const msgId = c.nextMsgId();
  await c.send({ type: 'SUBSCRIBE', dup: false, qos: 1, msgId, topicIdType: 'normal', topicName: 'cmd' });
  const suback = await c.next('SUBACK');
  await waitUntil(() => gw.brokerCalls.includes('+mqttsn/dev/cmd') || undefined);
  const cloud = await mqtt.connectAsync(gw.broker!.url, { clientId: 'cloud-boundary', reconnectPeriod: 0 });
  t.after(() => cloud.endAsync(true));
  await sleep(100);
  // The broker gets its PUBACK for the message that made routing throw (it would throw again on redelivery).
  await cloud.publishAsync('mqttsn/dev/cmd', Buffer.from('first'), { qos: 1 });
  await cloud.publishAsync('mqttsn/dev/cmd', Buffer.from('second'), { qos: 1 });
  const publish = await c.next('PUBLISH');
  assert.equal(publish.topicId, suback.topicId);
  assert.equal(Buffer.from(publish.data).toString(), 'second');
  assert.equal(gw.gateway.stats.errorsByBoundary.get('broker-message'), 1);
});

/**
 * The real gateway process against Mosquitto: with one device subscribed by name, one by wildcard and
 * one at QoS 0, the cloud sends every shape a broker can (sizes 0..70,000 bytes, topics near the
 * limits, retained, QoS 0/1/2). The gateway stays up and every device gets the messages after them.
 */
async function gatewayWithMosquitto(
  t: TestContext,
): Promise<{ gw: GatewayProcess; mosquitto: MosquittoHandle }> {
  const mosquitto = await startMosquitto();
  t.after(() => mosquitto.stop());
  const gw = await spawnGateway([
    '--broker',
    mosquitto.url,
    '--data-dir',
    withTempDir(t, 'mqttsn-hostile-'),
    '--uplink-client-id',
    `gw-hostile-${process.pid}`,
    '--keepalive',
    '2',
    '--reconnect-initial',
    '100',
    '--reconnect-max',
    '400',
  ]);
  t.after(async () => {
    await gw.signal('SIGKILL');
  });
  return { gw, mosquitto };
}

async function deviceOf(t: TestContext, gw: GatewayProcess, clientId: string): Promise<MqttSnTestClient> {
  const client = await MqttSnTestClient.create({ gatewayPort: gw.udpPort });
  t.after(() => client.close());
  assert.equal((await client.connect({ clientId, duration: 60 })).returnCode, ReturnCode.ACCEPTED);
  return client;
}

/** Answers every gateway-initiated REGISTER and PUBLISH, collecting the payloads it receives. */
function autoAck(client: MqttSnTestClient, received: string[]): void {
  const loop = async (): Promise<void> => {
    for (;;) {
      let packet;
      try {
        packet = await client.next(
          (p) => p.type === 'REGISTER' || p.type === 'PUBLISH' || p.type === 'PUBREL',
          60_000,
        );
      } catch {
        return;
      }
      if (packet.type === 'REGISTER') {
        await client.send({ type: 'REGACK', topicId: packet.topicId, msgId: packet.msgId, returnCode: 0 });
      } else if (packet.type === 'PUBREL') {
        await client.send({ type: 'PUBCOMP', msgId: packet.msgId });
      } else if (packet.type === 'PUBLISH') {
        received.push(Buffer.from(packet.data.subarray(0, 40)).toString());
        if (packet.qos === 1)
          await client.send({ type: 'PUBACK', topicId: packet.topicId, msgId: packet.msgId, returnCode: 0 });
        if (packet.qos === 2) await client.send({ type: 'PUBREC', msgId: packet.msgId });
      }
    }
  };
  void loop();
}

test('live: every message shape the broker can send reaches the downlink; the gateway stays up and others still get theirs', async (t) => {
  if (!requireMosquitto(t)) return;
  const { gw, mosquitto } = await gatewayWithMosquitto(t);
  const named = await deviceOf(t, gw, 'named');
  const wild = await deviceOf(t, gw, 'wild');
  const other = await deviceOf(t, gw, 'other');
  const subscribe = async (c: MqttSnTestClient, topicName: string, qos: 0 | 1 | 2): Promise<void> => {
    const msgId = c.nextMsgId();
    await c.send({ type: 'SUBSCRIBE', dup: false, qos, msgId, topicIdType: 'normal', topicName });
    assert.equal((await c.next('SUBACK')).returnCode, ReturnCode.ACCEPTED);
  };
  await subscribe(named, 'cmd', 2);
  await subscribe(wild, '#', 2);
  await subscribe(other, 'cmd', 1);
  const got = { named: [] as string[], wild: [] as string[], other: [] as string[] };
  autoAck(named, got.named);
  autoAck(wild, got.wild);
  autoAck(other, got.other);
  await sleep(300);

  const cloud = await mqtt.connectAsync(mosquitto.url, { clientId: 'cloud-hostile', reconnectPeriod: 0 });
  t.after(() => cloud.endAsync(true));
  const sizes = [
    0, 1, 248, 249, 250, 255, 256, 1000, 65_000, 65_525, 65_526, 65_527, 65_528, 65_535, 65_536, 70_000,
  ];
  const topics = [
    'mqttsn/named/cmd',
    'mqttsn/wild/x',
    `mqttsn/wild/${'t'.repeat(240)}`,
    `mqttsn/wild/${'t'.repeat(65_520)}`,
    `mqttsn/wild/${'u'.repeat(65_000)}`,
  ];
  for (const qos of [0, 1, 2] as const) {
    for (const size of sizes) {
      for (const topic of topics) {
        await cloud.publishAsync(topic, Buffer.alloc(size, 0x7a), {
          qos,
          retain: size === 70_000 && qos === 1,
        });
      }
    }
  }
  // After all of it, each device gets a normal command: the gateway is alive and no queue is wedged.
  await cloud.publishAsync('mqttsn/named/cmd', Buffer.from('last-named'), { qos: 1 });
  await cloud.publishAsync('mqttsn/wild/end', Buffer.from('last-wild'), { qos: 1 });
  await cloud.publishAsync('mqttsn/other/cmd', Buffer.from('last-other'), { qos: 1 });
  await waitUntil(
    () =>
      (got.named.includes('last-named') &&
        got.wild.includes('last-wild') &&
        got.other.includes('last-other')) ||
      undefined,
    { timeoutMs: 60_000 },
  );
  assert.equal(gw.pid !== undefined && isAlive(gw.pid), true, `gateway alive:\n${gw.output().slice(-2000)}`);
  assert.doesNotMatch(gw.output(), /uncaught|MqttSnCodecError/i);

  // Device traffic still reaches the broker.
  const collector = await collect(mosquitto.url, 'mqttsn/other/up');
  t.after(() => collector.close());
  const ack = await other.publish({
    topicIdType: 'short',
    topicId: shortTopicId('up'),
    qos: 1,
    data: 'alive',
  });
  assert.equal((ack as { returnCode: number }).returnCode, ReturnCode.ACCEPTED);
  await collector.waitFor(1, 10_000);
});

test('live: hostile strings from devices never reach Mosquitto; a good device keeps delivering', async (t) => {
  if (!requireMosquitto(t)) return;
  const { gw, mosquitto } = await gatewayWithMosquitto(t);
  const collector = await collect(mosquitto.url, ['mqttsn/#'], { protocolVersion: 5 });
  t.after(() => collector.close());
  const attacker = await MqttSnTestClient.create({ gatewayPort: gw.udpPort });
  t.after(() => attacker.close());
  // The datagram of issue 8, then the same class through every route that composes a broker topic.
  await attacker.sendRaw(Uint8Array.from([0x08, 0x0c, 0x62, 0x41, 0x7f, 0x00, 0x00, 0x78]));
  await attacker.connect({ clientId: 'a\u007fb' });
  const bad = await deviceOf(t, gw, 'bad');
  for (const s of Object.values(REFUSED)) {
    if (s.includes('\ud800')) continue;
    await bad.send({ type: 'REGISTER', topicId: 0, msgId: bad.nextMsgId(), topicName: s });
    await bad.send({
      type: 'SUBSCRIBE',
      dup: false,
      qos: 1,
      msgId: bad.nextMsgId(),
      topicIdType: 'normal',
      topicName: s,
    });
    await bad.send({ type: 'WILLTOPICUPD', qos: 1, retain: false, willTopic: s });
  }
  const good = await deviceOf(t, gw, 'good');
  const topicId = await good.register('seq');
  for (let i = 0; i < 20; i++) {
    const ack = await good.publish({ topicId, qos: 1, data: `m${i}` });
    assert.equal((ack as { returnCode: number }).returnCode, ReturnCode.ACCEPTED);
  }
  const fromGood = (): string[] =>
    collector.messages.filter((m) => m.topic === 'mqttsn/good/seq').map((m) => m.payload.toString());
  await waitUntil(() => fromGood().length >= 20 || undefined, { timeoutMs: 20_000 });
  assert.deepEqual(
    fromGood(),
    Array.from({ length: 20 }, (_, i) => `m${i}`),
  );
  assert.doesNotMatch(mosquitto.logs(), /malformed|protocol error/i, 'Mosquitto never saw a bad string');
});

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('live fuzz: 20,000 hostile datagrams from many ports; the good devices lose nothing, 0 crashes, few log lines', async (t) => {
  if (!requireMosquitto(t)) return;
  const { runFuzz, describeResult } = await import('../bench/fuzz-live.js');
  const { cleanup } = await import('../bench/support.js');
  t.after(cleanup);
  const result = await runFuzz({ datagrams: 20_000, seed: 8 });
  assert.ok(result.ok, describeResult(result));
  assert.equal(result.datagramsSent, 20_000);
  assert.ok(result.acked > 0 && result.arrived === result.acked, describeResult(result));
});

test('live: an outbox entry the broker would refuse (left by an older version) is dropped, not replayed forever', async (t) => {
  if (!requireMosquitto(t)) return;
  const mosquitto = await startMosquitto();
  t.after(() => mosquitto.stop());
  const { outbox } = await openOutboxStore(t, withTempDir(t, 'hostile-outbox-'));
  // The outbox stores what it is given: this is what older versions let through (issue 8, item 1).
  outbox.append({
    clientId: 'old',
    topic: 'mqttsn/$anonymous/A\u007f',
    payload: Buffer.from('x'),
    retain: false,
    qos: -1,
  });
  outbox.append({
    clientId: 'a\u0085b',
    topic: 'mqttsn/ok/topic',
    payload: Buffer.from('x'),
    retain: false,
    qos: 1,
  });
  outbox.append({
    clientId: 'good',
    topic: 'mqttsn/good/after',
    payload: Buffer.from('delivered'),
    retain: false,
    qos: 1,
  });
  await outbox.flush();
  const collector = await collect(mosquitto.url, 'mqttsn/#', { protocolVersion: 5 });
  t.after(() => collector.close());
  const uplink = startUplink(t, outbox, { brokers: [mosquitto.url] });
  const [message] = await collector.waitFor(1, 10_000);
  assert.equal(message!.topic, 'mqttsn/good/after');
  assert.equal(uplink.stats.invalidDropped, 2);
  await waitUntil(() => outbox.stats.messages === 0 || undefined);
  assert.equal(uplink.stats.reconnects, 0, 'the link was never dropped');
});
