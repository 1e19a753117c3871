/**
 * The client against a scripted gateway (a UDP socket and the codec), for what the real gateway does
 * not do (yet): subscriptions, deliveries to the device, sleep cycles; and for what it never does:
 * lose packets (retransmission with DUP), stop answering PINGREQ, refuse a SUBSCRIBE.
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { Readable } from 'node:stream';
import { test, type TestContext } from 'node:test';
import { runPub, runSub, type CliIo } from '../src/client/cli.js';
import { MqttSnClient } from '../src/client/client.js';
import { decode, encode, shortTopicId } from '../src/codec/index.js';
import type { Packet, PacketOf, PublishPacket } from '../src/codec/types.js';
import { sleep } from './helpers/index.js';

type PacketType = Packet['type'];

/** A gateway played by the test: it hears the client's packets in order and answers as told. */
class FakeGateway {
  private readonly unread: Packet[] = [];
  private readonly waiting: Array<{ type: PacketType; resolve: (packet: Packet) => void }> = [];
  private client: { address: string; port: number } | undefined;

  private constructor(private readonly socket: dgram.Socket) {
    socket.on('message', (datagram, from) => {
      this.client = { address: from.address, port: from.port };
      const packet = decode(datagram);
      const waiter = this.waiting.findIndex((w) => w.type === packet.type);
      if (waiter >= 0) this.waiting.splice(waiter, 1)[0]!.resolve(packet);
      else this.unread.push(packet);
    });
  }

  static async start(t: TestContext): Promise<FakeGateway> {
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    t.after(() => new Promise<void>((resolve) => socket.close(() => resolve())));
    return new FakeGateway(socket);
  }

  get port(): number {
    return this.socket.address().port;
  }

  /** The next packet of `type` from the client (others stay unread). */
  next<T extends PacketType>(type: T, timeoutMs = 3_000): Promise<PacketOf<T>> {
    const index = this.unread.findIndex((packet) => packet.type === type);
    if (index >= 0) return Promise.resolve(this.unread.splice(index, 1)[0] as PacketOf<T>);
    return new Promise((resolve, reject) => {
      const waiter = {
        type,
        resolve: (packet: Packet) => {
          clearTimeout(timer);
          resolve(packet as PacketOf<T>);
        },
      };
      const timer = setTimeout(() => {
        this.waiting.splice(this.waiting.indexOf(waiter), 1);
        reject(
          new Error(`no ${type} from the client within ${timeoutMs} ms (unread: ${this.unreadTypes()})`),
        );
      }, timeoutMs);
      this.waiting.push(waiter);
    });
  }

  send(packet: Packet): void {
    assert.ok(this.client, 'the client has not spoken yet');
    this.socket.send(encode(packet), this.client.port, this.client.address);
  }

  unreadTypes(): string {
    return this.unread.map((packet) => packet.type).join(', ') || 'nothing';
  }

  /** CONNECT → CONNACK; returns the CONNECT. */
  async acceptConnect(): Promise<PacketOf<'CONNECT'>> {
    const connect = await this.next('CONNECT');
    this.send({ type: 'CONNACK', returnCode: 0 });
    return connect;
  }

  /** SUBSCRIBE → SUBACK granting its QoS with `topicId`; returns the SUBSCRIBE. */
  async acceptSubscribe(topicId: number): Promise<PacketOf<'SUBSCRIBE'>> {
    const subscribe = await this.next('SUBSCRIBE');
    this.send({ type: 'SUBACK', qos: subscribe.qos, topicId, msgId: subscribe.msgId, returnCode: 0 });
    return subscribe;
  }

  /** Answers the client's DISCONNECT; returns it. */
  async acceptDisconnect(): Promise<PacketOf<'DISCONNECT'>> {
    const disconnect = await this.next('DISCONNECT');
    this.send({ type: 'DISCONNECT' });
    return disconnect;
  }
}

const publish = (
  fields: Partial<Omit<PublishPacket, 'data'>> & { topicId: number; data: string },
): PublishPacket => ({
  type: 'PUBLISH',
  dup: false,
  qos: 0,
  retain: false,
  topicIdType: 'normal',
  msgId: 0,
  ...fields,
  data: Buffer.from(fields.data),
});

interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a CLI command in-process; `signal` plays Ctrl-C. */
async function run(
  command: typeof runSub | typeof runPub,
  args: string[],
  signal?: AbortSignal,
): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const io: CliIo = {
    stdin: Readable.from([]),
    stdout: { write: (chunk) => (stdout += chunk.toString()) },
    stderr: { write: (chunk) => (stderr += chunk.toString()) },
    signal,
  };
  const code = await command(args, io);
  return { code, stdout, stderr };
}

/** The fake's port and a client id; answers are prompt, so a retransmission only happens on purpose. */
const at = (gw: FakeGateway, timeoutSeconds = '2'): string[] => [
  '-p',
  String(gw.port),
  '-i',
  'dev',
  '--timeout',
  timeoutSeconds,
  '--retries',
  '2',
];

test('sub: names, a filter, short and predefined topics; QoS 0/1/2 acknowledged, each printed once', async (t) => {
  const gw = await FakeGateway.start(t);
  const sub = run(runSub, [
    ...at(gw),
    '-v',
    '-q',
    '2',
    '-t',
    'a/b',
    '-t',
    'a/#',
    '-t',
    'ab',
    '-T',
    '5',
    '-C',
    '6',
  ]);

  const connect = await gw.acceptConnect();
  assert.deepEqual(
    [connect.clientId, connect.cleanSession, connect.duration, connect.will],
    ['dev', true, 60, false],
  );
  const subscriptions = [
    await gw.acceptSubscribe(1),
    await gw.acceptSubscribe(0),
    await gw.acceptSubscribe(0),
    await gw.acceptSubscribe(0),
  ];
  assert.deepEqual(
    subscriptions.map(({ type: _type, msgId: _msgId, ...topic }) => topic),
    [
      { dup: false, qos: 2, topicIdType: 'normal', topicName: 'a/b' },
      { dup: false, qos: 2, topicIdType: 'normal', topicName: 'a/#' },
      { dup: false, qos: 2, topicIdType: 'short', topicId: shortTopicId('ab') },
      { dup: false, qos: 2, topicIdType: 'predefined', topicId: 5 },
    ],
  );

  gw.send(publish({ topicId: 1, data: 'zero' }));
  gw.send(publish({ qos: 1, topicId: 1, msgId: 10, data: 'one' }));
  assert.deepEqual(await gw.next('PUBACK'), { type: 'PUBACK', topicId: 1, msgId: 10, returnCode: 0 });
  // Our PUBACK was "lost": the repeat is acknowledged again but not printed again.
  gw.send(publish({ qos: 1, dup: true, topicId: 1, msgId: 10, data: 'one' }));
  assert.equal((await gw.next('PUBACK')).msgId, 10);

  gw.send(publish({ qos: 2, topicId: 1, msgId: 11, data: 'two' }));
  assert.deepEqual(await gw.next('PUBREC'), { type: 'PUBREC', msgId: 11 });
  gw.send(publish({ qos: 2, dup: true, topicId: 1, msgId: 11, data: 'two' }));
  assert.deepEqual(await gw.next('PUBREC'), { type: 'PUBREC', msgId: 11 });
  gw.send({ type: 'PUBREL', msgId: 11 });
  assert.deepEqual(await gw.next('PUBCOMP'), { type: 'PUBCOMP', msgId: 11 });

  // A topic matching the filter is REGISTERed by the gateway before its first PUBLISH.
  gw.send({ type: 'REGISTER', topicId: 2, msgId: 12, topicName: 'a/c' });
  assert.deepEqual(await gw.next('REGACK'), { type: 'REGACK', topicId: 2, msgId: 12, returnCode: 0 });
  gw.send(publish({ qos: 1, topicId: 2, msgId: 13, data: 'three' }));
  assert.equal((await gw.next('PUBACK')).returnCode, 0);

  // An id the client never learned is refused so the gateway can REGISTER it (§6.3).
  gw.send(publish({ qos: 1, topicId: 99, msgId: 14, data: 'unknown' }));
  assert.deepEqual(await gw.next('PUBACK'), { type: 'PUBACK', topicId: 99, msgId: 14, returnCode: 2 });

  gw.send(publish({ topicIdType: 'short', topicId: shortTopicId('ab'), data: 'four' }));
  gw.send(publish({ topicIdType: 'predefined', topicId: 5, data: 'five' }));
  assert.equal((await gw.acceptDisconnect()).duration, undefined, 'a plain DISCONNECT after -C 6');

  const result = await sub;
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout, 'a/b zero\na/b one\na/b two\na/c three\nab four\n5 five\n');
});

test('sub -e: sleep cycles of PINGREQ(clientId), buffered messages, PINGRESP; no keep-alive while asleep', async (t) => {
  const gw = await FakeGateway.start(t);
  const sub = run(runSub, [
    ...at(gw),
    '-k',
    '1',
    '-q',
    '1',
    '-t',
    'cmd',
    '-e',
    '5',
    '--wake-interval',
    '0.5',
    '-C',
    '3',
  ]);
  await gw.acceptConnect();
  await gw.acceptSubscribe(1);
  assert.equal((await gw.acceptDisconnect()).duration, 5);

  const wakeUp = async (): Promise<number> => {
    const pingreq = await gw.next('PINGREQ');
    assert.equal(pingreq.clientId, 'dev', 'a wake-up, not a keep-alive PINGREQ');
    return Date.now();
  };
  const first = await wakeUp();
  gw.send(publish({ qos: 1, topicId: 1, msgId: 1, data: 'm1' }));
  assert.equal((await gw.next('PUBACK')).msgId, 1);
  gw.send(publish({ topicId: 1, data: 'm2' }));
  gw.send({ type: 'PINGRESP' });

  const second = await wakeUp();
  assert.ok(second - first >= 400, `woke after ${second - first} ms, expected about 500`);
  gw.send({ type: 'PINGRESP' });

  await wakeUp();
  gw.send(publish({ qos: 1, topicId: 1, msgId: 2, data: 'm3' }));
  assert.equal((await gw.next('PUBACK')).msgId, 2);
  // The count is reached during the wake-up: the client leaves without waiting for PINGRESP.
  assert.equal((await gw.acceptDisconnect()).duration, undefined);

  const result = await sub;
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout, 'm1\nm2\nm3\n');
  assert.equal(gw.unreadTypes(), 'nothing');
});

test('sub: keep-alive PINGREQ after a silent period; exit 2 when it goes unanswered', async (t) => {
  const gw = await FakeGateway.start(t);
  const sub = run(runSub, [
    '-p',
    String(gw.port),
    '-k',
    '1',
    '--timeout',
    '0.2',
    '--retries',
    '1',
    '-t',
    'a/b',
  ]);
  await gw.acceptConnect();
  await gw.acceptSubscribe(1);
  const keepAlive = await gw.next('PINGREQ');
  assert.equal(keepAlive.clientId, undefined);
  gw.send({ type: 'PINGRESP' });
  await gw.next('PINGREQ'); // unanswered, as is its retransmission
  const result = await sub;
  assert.equal(result.code, 2);
  assert.match(result.stderr, /no answer from the gateway at 127\.0\.0\.1:\d+ to PINGREQ \(2 attempts/);
});

test('sub: exit 3 when the SUBSCRIBE is refused; exit 1 when the gateway ends the session', async (t) => {
  const gw = await FakeGateway.start(t);
  const refused = run(runSub, [...at(gw), '-t', 'a/b']);
  await gw.acceptConnect();
  const subscribe = await gw.next('SUBSCRIBE');
  gw.send({ type: 'SUBACK', qos: 0, topicId: 0, msgId: subscribe.msgId, returnCode: 2 });
  const refusal = await refused;
  assert.equal(refusal.code, 3);
  assert.match(refusal.stderr, /the gateway refused SUBSCRIBE to "a\/b": invalid topic id \(return code 2\)/);

  const other = await FakeGateway.start(t);
  const ended = run(runSub, [...at(other), '-t', 'a/b']);
  await other.acceptConnect();
  await other.acceptSubscribe(1);
  other.send({ type: 'DISCONNECT' });
  const end = await ended;
  assert.equal(end.code, 1);
  assert.match(end.stderr, /the gateway ended the session \(DISCONNECT\)/);
});

test('sub: Ctrl-C (the abort signal) ends with a clean DISCONNECT and exit 0', async (t) => {
  const gw = await FakeGateway.start(t);
  const interrupt = new AbortController();
  const sub = run(runSub, [...at(gw), '-t', 'a/b'], interrupt.signal);
  await gw.acceptConnect();
  await gw.acceptSubscribe(1);
  interrupt.abort();
  await gw.acceptDisconnect();
  assert.deepEqual(await sub, { code: 0, stdout: '', stderr: '' });
});

test('pub: unanswered requests are sent again, PUBLISH with DUP set and the same message id', async (t) => {
  const gw = await FakeGateway.start(t);
  const pub = run(runPub, [...at(gw, '0.3'), '-q', '2', '-t', 'a/b', '-m', 'hello']);

  const connect = await gw.next('CONNECT');
  assert.deepEqual(await gw.next('CONNECT'), connect, 'CONNECT repeated unchanged');
  gw.send({ type: 'CONNACK', returnCode: 0 });
  const register = await gw.next('REGISTER');
  gw.send({ type: 'REGACK', topicId: 7, msgId: register.msgId, returnCode: 0 });

  const first = await gw.next('PUBLISH');
  const again = await gw.next('PUBLISH');
  assert.deepEqual(
    [first.dup, again.dup, again.msgId, again.topicId, Buffer.from(again.data).toString()],
    [false, true, first.msgId, 7, 'hello'],
  );
  gw.send({ type: 'PUBREC', msgId: first.msgId });
  const pubrel = await gw.next('PUBREL');
  assert.deepEqual(await gw.next('PUBREL'), pubrel, 'PUBREL repeated');
  gw.send({ type: 'PUBCOMP', msgId: first.msgId });
  await gw.acceptDisconnect();
  assert.deepEqual(await pub, { code: 0, stdout: '', stderr: '' });
});

test('pub: the will flow sends WILLTOPIC and WILLMSG as asked', async (t) => {
  const gw = await FakeGateway.start(t);
  const pub = run(runPub, [
    ...at(gw),
    '-t',
    'ab',
    '-m',
    'x',
    '--will-topic',
    'status',
    '--will-message',
    'gone',
    '--will-qos',
    '2',
    '--will-retain',
  ]);
  assert.equal((await gw.next('CONNECT')).will, true);
  gw.send({ type: 'WILLTOPICREQ' });
  assert.deepEqual(await gw.next('WILLTOPIC'), {
    type: 'WILLTOPIC',
    qos: 2,
    retain: true,
    willTopic: 'status',
  });
  gw.send({ type: 'WILLMSGREQ' });
  assert.equal(Buffer.from((await gw.next('WILLMSG')).willMsg).toString(), 'gone');
  gw.send({ type: 'CONNACK', returnCode: 0 });
  const published = await gw.next('PUBLISH');
  assert.deepEqual([published.topicIdType, published.topicId], ['short', shortTopicId('ab')]);
  await gw.acceptDisconnect();
  assert.equal((await pub).code, 0);
});

test('the client API: a wake-up lasts as long as deliveries keep coming; unsubscribe, ping', async (t) => {
  const gw = await FakeGateway.start(t);
  const client = await MqttSnClient.open({
    port: gw.port,
    clientId: 'api',
    retry: { intervalMs: 300, retries: 0 },
  });
  t.after(() => client.close());
  const received: string[] = [];
  client.on('message', (message) => received.push(Buffer.from(message.payload).toString()));

  const connected = client.connect({ keepAliveSeconds: 0 });
  await gw.acceptConnect();
  await connected;
  const subscribed = client.subscribe({ type: 'normal', name: 'cmd' }, 1);
  await gw.acceptSubscribe(3);
  assert.deepEqual(await subscribed, { grantedQos: 1, topicId: 3 });

  const asleep = client.sleep(60);
  await gw.acceptDisconnect();
  await asleep;
  assert.equal(client.state, 'asleep');

  // Four deliveries 200 ms apart: longer than T_retry in all, but never 300 ms without one.
  const awake = client.wake();
  await gw.next('PINGREQ');
  for (const data of ['a', 'b', 'c', 'd']) {
    await sleep(200);
    gw.send(publish({ topicId: 3, data }));
  }
  await sleep(200);
  gw.send({ type: 'PINGRESP' });
  await awake;
  assert.deepEqual(received, ['a', 'b', 'c', 'd']);

  const reconnected = client.connect({ keepAliveSeconds: 0, cleanSession: false });
  await gw.acceptConnect();
  await reconnected;
  const unsubscribed = client.unsubscribe({ type: 'normal', name: 'cmd' });
  const unsubscribe = await gw.next('UNSUBSCRIBE');
  assert.deepEqual(unsubscribe, {
    type: 'UNSUBSCRIBE',
    msgId: unsubscribe.msgId,
    topicIdType: 'normal',
    topicName: 'cmd',
  });
  gw.send({ type: 'UNSUBACK', msgId: unsubscribe.msgId });
  await unsubscribed;
  const pinged = client.ping();
  assert.equal((await gw.next('PINGREQ')).clientId, undefined);
  gw.send({ type: 'PINGRESP' });
  await pinged;
});
