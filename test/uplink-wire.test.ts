/**
 * The uplink sends the PUBLISH bytes stored at append (drain.ts, wire.ts), not MQTT.js publish(): what
 * brokers deliver must be what publish() delivered (Mosquitto with MQTT 5 and 3.1.1, aedes with 3.1.1),
 * and on the wire (a small test broker made of mqtt-packet over a real socket) re-sends carry DUP, packet
 * ids never collide with MQTT.js's own SUBSCRIBEs, and a socket that takes nothing stops the sending.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, test, type TestContext } from 'node:test';
import mqtt from 'mqtt';
import mqttPacket, { type IPublishPacket, type Packet } from 'mqtt-packet';
import { entryOf } from '../src/store/entry.js';
import type { Outbox } from '../src/store/outbox.js';
import { encodeRecord } from '../src/store/record.js';
import { wireSize, writePublish, type WireForm } from '../src/uplink/wire.js';
import { requireMosquitto, startAedes, startMosquitto } from './helpers/broker.js';
import { collect, type CollectedMessage } from './helpers/mqtt.js';
import { LOOPBACK } from './helpers/ports.js';
import { prng } from './helpers/prng.js';
import { withTempDir } from './helpers/tmp.js';
import { sleep, waitUntil } from './helpers/wait.js';
import { openOutboxStore, startUplink } from './support/uplink-rig.js';

interface Shape {
  clientId: string;
  topic: string;
  payload: Buffer;
  retain: boolean;
}

/** Messages of every shape the wire code cuts differently: sizes around the varint steps, UTF-8, retain. */
const SHAPES: Shape[] = [
  { clientId: 'dev-a', topic: 'mqttsn/dev-a/t', payload: Buffer.from('hello'), retain: false },
  { clientId: 'dev-b', topic: 'mqttsn/dev-b/t', payload: Buffer.alloc(0), retain: true },
  { clientId: 'dev-c', topic: 'mqttsn/dev-c/ünïcødé/€', payload: Buffer.from([0, 1, 2, 255]), retain: false },
  { clientId: 'dev-d', topic: 'mqttsn/dev-d/t', payload: Buffer.alloc(100, 7), retain: false },
  { clientId: 'dev-e', topic: 'mqttsn/dev-e/t', payload: Buffer.alloc(20_000, 9), retain: true },
  { clientId: 'dev-f', topic: 'mqttsn/dev-f/t', payload: Buffer.alloc(3_000_000, 3), retain: false },
];

function append(outbox: Outbox, shape: Shape): void {
  assert.equal(outbox.append({ ...shape, qos: 1 }), 'queued');
}

/** What a subscriber gets, without what differs between any two sends (dup, the id, the time). */
function seen(message: CollectedMessage): unknown {
  const props = message.properties?.userProperties as Record<string, string> | undefined;
  return {
    topic: message.topic,
    payload: message.payload.toString('hex'),
    qos: message.qos,
    retain: message.retain,
    userProperties: props === undefined ? undefined : Object.keys(props).sort(),
    client: props?.['mqttsn-client'],
  };
}

/**
 * The uplink's delivery of SHAPES beside MQTT.js publish() of the same messages (with the same user
 * properties on MQTT 5), through `url`, as subscribers at `protocolVersion` see them.
 */
async function compareWithPublish(
  t: TestContext,
  url: string,
  uplinkVersion: 4 | 5,
  subscriberVersion: 4 | 5,
): Promise<void> {
  const { outbox } = await openOutboxStore(t, withTempDir(t, 'uplink-wire-'));
  const viaUplink = await collect(url, 'mqttsn/#', { protocolVersion: subscriberVersion });
  t.after(() => viaUplink.close());
  const viaPublish = await collect(url, 'raw/mqttsn/#', { protocolVersion: subscriberVersion });
  t.after(() => viaPublish.close());
  for (const shape of SHAPES) append(outbox, shape);
  await outbox.flush();
  const entries = await outbox.read(0, 100);
  assert.equal(entries.length, SHAPES.length);
  startUplink(t, outbox, { brokers: [url], protocolVersion: uplinkVersion });
  const got = await viaUplink.waitFor(SHAPES.length, 15_000);

  const publisher = await mqtt.connectAsync(url, { protocolVersion: uplinkVersion, reconnectPeriod: 0 });
  t.after(() => publisher.endAsync(true));
  for (const entry of entries) {
    await publisher.publishAsync(`raw/${entry.topic}`, entry.payload, {
      qos: 1,
      retain: entry.retain,
      ...(uplinkVersion === 5 ? { properties: { userProperties: entry.userProperties } } : {}),
    });
  }
  const expected = await viaPublish.waitFor(SHAPES.length, 15_000);
  assert.deepEqual(
    got.map(seen),
    expected.map((m) => seen({ ...m, topic: m.topic.slice('raw/'.length) })),
  );
  // And what was stored, exactly.
  assert.deepEqual(
    got.map((m) => [m.topic, m.payload.length, m.qos]),
    SHAPES.map((s) => [s.topic, s.payload.length, 1]),
  );
  if (subscriberVersion === 5 && uplinkVersion === 5) {
    const props = got.map((m) => m.properties?.userProperties as Record<string, string>);
    assert.deepEqual(
      props.map((p) => p['mqttsn-id']),
      entries.map((e) => `test-gw:${e.seq}`),
    );
  }
  if (subscriberVersion === 5 && uplinkVersion === 4) {
    // A 3.1.1 PUBLISH has no properties: the broker got none (nor bytes of them in the payload).
    assert.ok(got.every((m) => m.properties?.userProperties === undefined));
  }
}

test('each wire form is what mqtt-packet encodes for that packet, id and DUP (seeded)', () => {
  const random = prng(Number(process.env.WIRE_SEED ?? 7));
  const forms: Array<[WireForm, 4 | 5, boolean]> = [
    ['v5', 5, true],
    ['v5-bare', 5, false],
    ['v4', 4, false],
  ];
  for (let run = 0; run < 500; run++) {
    const topic = `t/${'é'.repeat(Math.floor(random() * 5))}${'x'.repeat(Math.floor(random() * 200))}`;
    const sizes = [0, 3, 100, 16_000, 16_400, 70_000];
    const payload = Buffer.alloc(sizes[Math.floor(random() * sizes.length)]!, run & 0xff);
    const userProperties = {
      'mqttsn-id': `gw:${run}`,
      'mqttsn-client': 'c'.repeat(Math.floor(random() * 50)),
    };
    const retain = random() < 0.5;
    const entry = entryOf(run, encodeRecord({ topic, payload, retain, receivedAt: 0, userProperties }))!;
    for (const [form, protocolVersion, withProperties] of forms) {
      const id = 1 + Math.floor(random() * 65_535);
      const dup = random() < 0.5;
      const expected = mqttPacket.generate(
        {
          cmd: 'publish',
          topic,
          payload,
          qos: 1,
          dup,
          retain,
          messageId: id,
          ...(withProperties ? { properties: { userProperties } } : {}),
        },
        { protocolVersion },
      );
      const out = Buffer.alloc(wireSize(entry, form) + 2, 0xee);
      assert.equal(
        writePublish(entry, form, id, dup, out, 1),
        1 + expected.length,
        `run ${run} ${form}: size`,
      );
      assert.deepEqual(out.subarray(1, 1 + expected.length), expected, `run ${run} ${form}`);
      assert.equal(out[out.length - 1], 0xee, 'nothing written past the packet');
    }
    assert.equal(entry.packet.readUInt16BE(entry.propertiesAt - 2), 0, 'the stored record is not patched');
  }
});

describe('what brokers deliver is what MQTT.js publish() delivered', () => {
  test('Mosquitto, MQTT 5', async (t) => {
    if (!requireMosquitto(t)) return;
    const mosquitto = await startMosquitto();
    t.after(() => mosquitto.stop());
    await compareWithPublish(t, mosquitto.url, 5, 5);
  });

  test('Mosquitto, MQTT 3.1.1 (no properties on the wire)', async (t) => {
    if (!requireMosquitto(t)) return;
    const mosquitto = await startMosquitto();
    t.after(() => mosquitto.stop());
    await compareWithPublish(t, mosquitto.url, 4, 5);
  });

  test('aedes, MQTT 3.1.1', async (t) => {
    const aedes = await startAedes();
    t.after(() => aedes.close());
    await compareWithPublish(t, aedes.url, 4, 4);
  });
});

interface TestBroker {
  url: string;
  /** Every PUBLISH received, with the connection it came on (1, 2, ...). */
  publishes: Array<{ link: number; packet: IPublishPacket }>;
  /** Every packet from the client, in order, with its connection. */
  packets: Array<{ link: number; packet: Packet }>;
  /** While true, PUBLISHes are not answered (the window fills). */
  holdAcks: boolean;
  /** Answer every held PUBLISH now. */
  releaseAcks(): void;
  /** Close every connection (the link drops with PUBLISHes in flight). */
  cut(): void;
  /** Stop reading from the client (its socket's buffers fill up). */
  pauseReading(on: boolean): void;
  close(): Promise<void>;
}

/** A minimal MQTT broker (mqtt-packet on a real socket): CONNACK, PUBACK, SUBACK, PINGRESP. */
async function startTestBroker(protocolVersion: 4 | 5): Promise<TestBroker> {
  const sockets = new Set<net.Socket>();
  const held: Array<{ socket: net.Socket; id: number }> = [];
  let links = 0;
  const puback = (socket: net.Socket, id: number): void => {
    if (!socket.destroyed)
      socket.write(mqttPacket.generate({ cmd: 'puback', messageId: id }, { protocolVersion }));
  };
  const broker: TestBroker = {
    url: '',
    publishes: [],
    packets: [],
    holdAcks: false,
    releaseAcks: () => {
      for (const { socket, id } of held.splice(0)) puback(socket, id);
    },
    cut: () => {
      for (const socket of sockets) socket.destroy();
    },
    pauseReading: (on) => {
      for (const socket of sockets) {
        if (on) socket.pause();
        else socket.resume();
      }
    },
    close: () => {
      broker.cut();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
  const server = net.createServer((socket) => {
    const link = ++links;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    const parser = mqttPacket.parser({ protocolVersion });
    parser.on('error', () => socket.destroy());
    parser.on('packet', (packet: Packet) => {
      broker.packets.push({ link, packet });
      const send = (reply: Packet): void =>
        void socket.write(mqttPacket.generate(reply, { protocolVersion }));
      switch (packet.cmd) {
        case 'connect':
          send({ cmd: 'connack', returnCode: 0, reasonCode: 0, sessionPresent: false });
          break;
        case 'publish':
          broker.publishes.push({ link, packet });
          if (broker.holdAcks) held.push({ socket, id: packet.messageId! });
          else puback(socket, packet.messageId!);
          break;
        case 'subscribe':
          send({ cmd: 'suback', messageId: packet.messageId, granted: packet.subscriptions.map(() => 1) });
          break;
        case 'pingreq':
          send({ cmd: 'pingresp' });
          break;
        default:
      }
    });
    socket.on('data', (chunk: Buffer) => parser.parse(chunk));
  });
  await new Promise<void>((resolve) => server.listen(0, LOOPBACK, resolve));
  broker.url = `mqtt://${LOOPBACK}:${(server.address() as net.AddressInfo).port}`;
  return broker;
}

function fillNumbered(outbox: Outbox, count: number, payloadBytes = 8): void {
  for (let n = 1; n <= count; n++) {
    const payload = Buffer.alloc(payloadBytes, 0x2e);
    payload.write(String(n));
    append(outbox, { clientId: `dev-${n % 3}`, topic: `mqttsn/dev-${n % 3}/n`, payload, retain: false });
  }
}

const number = (p: IPublishPacket): number => Number.parseInt(Buffer.from(p.payload).toString(), 10);

describe('on the wire', () => {
  for (const version of [5, 4] as const) {
    test(`MQTT ${version === 5 ? '5' : '3.1.1'}: a link lost with PUBLISHes in flight sends them again, in order, with DUP`, async (t) => {
      const broker = await startTestBroker(version);
      t.after(() => broker.close());
      const { outbox } = await openOutboxStore(t, withTempDir(t, 'uplink-wire-'));
      fillNumbered(outbox, 20);
      broker.holdAcks = true;
      const uplink = startUplink(t, outbox, { brokers: [broker.url], protocolVersion: version, window: 8 });
      await waitUntil(() => broker.publishes.length === 8);
      broker.cut();
      broker.holdAcks = false;
      await waitUntil(() => outbox.stats.messages === 0, { timeoutMs: 10_000 });
      const first = broker.publishes.filter((p) => p.link === 1).map((p) => p.packet);
      const second = broker.publishes.filter((p) => p.link === 2).map((p) => p.packet);
      assert.deepEqual(first.map(number), [1, 2, 3, 4, 5, 6, 7, 8]);
      assert.ok(first.every((p) => !p.dup && p.qos === 1));
      assert.deepEqual(
        second.map(number),
        Array.from({ length: 20 }, (_, i) => i + 1),
        'all again, in order',
      );
      assert.deepEqual(
        second.map((p) => p.dup),
        second.map((p) => number(p) <= 8),
        'DUP exactly on the ones sent before',
      );
      assert.equal(uplink.stats.resent, 8);
      // Ids unique among those in flight together (all 8 held on link 1 were in flight at once).
      assert.equal(new Set(first.map((p) => p.messageId)).size, 8);
      if (version === 5) {
        assert.deepEqual(
          second.map((p) => (p.properties?.userProperties as Record<string, string>)['mqttsn-id']),
          Array.from({ length: 20 }, (_, i) => `test-gw:${i + 1}`),
        );
      } else {
        assert.ok(second.every((p) => p.properties === undefined));
        assert.ok(
          second.every((p) => Buffer.from(p.payload).length === 8),
          'no property bytes in the payload',
        );
      }
    });
  }

  test('after a restart, what an earlier process stored goes out with DUP (it may have sent it), what this one stores without', async (t) => {
    const broker = await startTestBroker(5);
    t.after(() => broker.close());
    const dir = withTempDir(t, 'uplink-wire-');
    const earlier = await openOutboxStore(t, dir);
    fillNumbered(earlier.outbox, 5);
    await earlier.close();
    const { outbox } = await openOutboxStore(t, dir);
    for (let n = 6; n <= 8; n++) {
      const payload = Buffer.alloc(8, 0x2e);
      payload.write(String(n));
      append(outbox, { clientId: 'dev-0', topic: 'mqttsn/dev-0/n', payload, retain: false });
    }
    const uplink = startUplink(t, outbox, { brokers: [broker.url] });
    await waitUntil(() => outbox.stats.messages === 0, { timeoutMs: 10_000 });
    const sent = broker.publishes.map((p) => p.packet);
    assert.deepEqual(sent.map(number), [1, 2, 3, 4, 5, 6, 7, 8]);
    assert.deepEqual(
      sent.map((p) => p.dup),
      [true, true, true, true, true, false, false, false],
    );
    assert.equal(uplink.stats.resent, 0, 'not re-sent by this process');
  });

  test('SUBSCRIBEs made while the window is full get ids no PUBLISH in flight has', async (t) => {
    const broker = await startTestBroker(5);
    t.after(() => broker.close());
    const { outbox } = await openOutboxStore(t, withTempDir(t, 'uplink-wire-'));
    fillNumbered(outbox, 300);
    broker.holdAcks = true;
    const uplink = startUplink(t, outbox, { brokers: [broker.url], window: 200 });
    await uplink.subscribe('cmd/before/#');
    await waitUntil(() => broker.publishes.length === 200);
    // Renewed / new subscriptions while all 200 PUBLISHes wait for PUBACK.
    await Promise.all(Array.from({ length: 20 }, (_, i) => uplink.subscribe(`cmd/${i}/#`)));
    const inflightIds = new Set(broker.publishes.map((p) => p.packet.messageId));
    const subscribeIds = broker.packets
      .filter((p) => p.packet.cmd === 'subscribe')
      .map((p) => (p.packet as { messageId: number }).messageId);
    assert.equal(subscribeIds.length, 21);
    assert.deepEqual(
      subscribeIds.filter((id) => inflightIds.has(id)),
      [],
      'no SUBSCRIBE id is one of a PUBLISH in flight',
    );
    broker.holdAcks = false;
    broker.releaseAcks();
    await waitUntil(() => outbox.stats.messages === 0, { timeoutMs: 10_000 });
    assert.equal(uplink.stats.acked, 300);
    assert.equal(uplink.stats.reconnects, 0, 'the PUBACKs MQTT.js did not send PUBLISHes for closed nothing');
  });

  test('a broker that stops reading stops the sending (backpressure); all arrives once it reads again', async (t) => {
    const broker = await startTestBroker(5);
    t.after(() => broker.close());
    const { outbox } = await openOutboxStore(t, withTempDir(t, 'uplink-wire-'));
    const count = 40;
    fillNumbered(outbox, count, 1_000_000);
    const uplink = startUplink(t, outbox, { brokers: [broker.url], window: 64, keepaliveSeconds: 30 });
    await waitUntil(() => uplink.state === 'connected');
    broker.pauseReading(true);
    await waitUntil(() => uplink.stats.inflight > 0);
    // What the kernel and the socket buffer take is a few MB: far from all 40 MB (MQTT.js would queue all).
    await sleep(300);
    const whilePaused = uplink.stats.inflight;
    assert.ok(whilePaused < count, `${whilePaused} PUBLISHes taken while the broker read nothing`);
    broker.pauseReading(false);
    await waitUntil(() => outbox.stats.messages === 0, { timeoutMs: 20_000 });
    const got = broker.publishes.map((p) => p.packet);
    assert.deepEqual(
      got.map(number),
      Array.from({ length: count }, (_, i) => i + 1),
    );
    assert.ok(got.every((p) => Buffer.from(p.payload).length === 1_000_000));
  });
});
