/**
 * A scriptable MQTT-SN client over UDP for gateway tests, built on the project's codec.
 *
 * Every datagram from the gateway is decoded and queued; `next()` takes the first queued packet that
 * matches (waiting for one if needed) and leaves the others queued, so a test can await packets in
 * whatever order it cares about. The conveniences (`connect`, `register`, `publish`, ...) perform the
 * usual flows and return the gateway's answer without judging it, except `register`, which throws on
 * a rejected REGACK (it has no useful value to return then).
 */
import dgram from 'node:dgram';
import { decode, encode, shortTopicId } from '../../src/codec/index.js';
import { ReturnCode, type QoS, type TopicIdTypeName } from '../../src/codec/constants.js';
import type {
  CodecOptions,
  ConnackPacket,
  DisconnectPacket,
  MsgIdPacket,
  Packet,
  PacketOf,
  PingRespPacket,
  TopicAckPacket,
} from '../../src/codec/types.js';

type PacketTypeName = Packet['type'];

/** What `next()` waits for: a packet type name, or a predicate (its function name appears in errors). */
export type PacketMatcher = PacketTypeName | ((packet: Packet) => boolean);

export interface MqttSnTestClientOptions {
  /** Gateway UDP port. */
  gatewayPort: number;
  /** Gateway address; default '127.0.0.1' ('::1' with family 'udp6'). */
  gatewayHost?: string;
  /** 'udp4' (default, binds 127.0.0.1:0) or 'udp6' (binds ::1:0). */
  family?: 'udp4' | 'udp6';
  /** Local address to bind (default the loopback of the family); e.g. 127.0.0.2 for another host. */
  bindHost?: string;
  /** Local port to bind (default: an ephemeral one). */
  bindPort?: number;
  /** Passed to encode/decode, e.g. { maxClientIdLength: 64 } to test long client ids. */
  codec?: CodecOptions;
}

export interface WillOptions {
  topic: string;
  message: string | Uint8Array;
  qos?: 0 | 1 | 2;
  retain?: boolean;
}

export interface ConnectOptions {
  clientId: string;
  /** Keep-alive in seconds (default 60). */
  duration?: number;
  cleanSession?: boolean;
  will?: WillOptions;
}

export interface PublishOptions {
  /** A registered / predefined id, or for 'short' the two-byte value (or give `topicName`). */
  topicId?: number;
  /**
   * With topicIdType 'normal' the name is REGISTERed first (once per client, cached);
   * with 'short' it is encoded as the 2-byte short topic id.
   */
  topicName?: string;
  topicIdType?: TopicIdTypeName;
  /** Default 0. -1 is "publish without connection". */
  qos?: QoS;
  retain?: boolean;
  dup?: boolean;
  data: string | Uint8Array;
  /** Default: the next auto-incremented id for QoS 1/2, 0 for QoS 0/-1. */
  msgId?: number;
}

interface Waiter {
  matches: (packet: Packet) => boolean;
  resolve: (packet: Packet) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

function matcherFor(match: PacketMatcher | undefined): (packet: Packet) => boolean {
  if (match === undefined) return () => true;
  if (typeof match === 'string') return (packet) => packet.type === match;
  return match;
}

function describeMatcher(match: PacketMatcher | undefined): string {
  if (match === undefined) return 'any packet';
  if (typeof match === 'string') return match;
  return match.name ? `a packet matching ${match.name}` : 'a packet matching the predicate';
}

function describePacket(packet: Packet): string {
  return 'msgId' in packet ? `${packet.type}(msgId ${packet.msgId})` : packet.type;
}

const toBytes = (data: string | Uint8Array): Uint8Array =>
  typeof data === 'string' ? new TextEncoder().encode(data) : data;

export class MqttSnTestClient {
  /** Datagrams the codec could not decode (kept for assertions; never queued). */
  readonly undecodable: Uint8Array[] = [];

  private readonly queue: Packet[] = [];
  private readonly waiters: Waiter[] = [];
  private readonly topicIds = new Map<string, number>();
  private lastMsgId = 0;
  private closed = false;

  private constructor(
    private readonly socket: dgram.Socket,
    private readonly gatewayHost: string,
    private readonly gatewayPort: number,
    private readonly codec: CodecOptions | undefined,
  ) {
    socket.on('message', (msg) => this.onDatagram(msg));
  }

  /** Bind a UDP socket on the loopback address (ephemeral port) aimed at the gateway. */
  static async create(opts: MqttSnTestClientOptions): Promise<MqttSnTestClient> {
    const family = opts.family ?? 'udp4';
    const loopback = family === 'udp6' ? '::1' : '127.0.0.1';
    const socket = dgram.createSocket(family);
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(opts.bindPort ?? 0, opts.bindHost ?? loopback, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    return new MqttSnTestClient(socket, opts.gatewayHost ?? loopback, opts.gatewayPort, opts.codec);
  }

  /** The client's own UDP port (how the gateway identifies it). */
  get port(): number {
    return this.socket.address().port;
  }

  /** Next message id: 1..0xFFFF, wrapping and skipping 0. */
  nextMsgId(): number {
    this.lastMsgId = (this.lastMsgId % 0xffff) + 1;
    return this.lastMsgId;
  }

  /** Encode and send one packet. */
  send(packet: Packet): Promise<void> {
    return this.sendRaw(encode(packet, this.codec));
  }

  /** Send bytes as one datagram, unchanged (for malformed-input tests). */
  sendRaw(bytes: Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => {
      this.socket.send(bytes, this.gatewayPort, this.gatewayHost, (err) => (err ? reject(err) : resolve()));
    });
  }

  /**
   * Take the first packet (queued or yet to arrive) matching `match` (any packet when omitted).
   * Packets that do not match stay queued. Rejects after `timeoutMs` naming what it waited for.
   */
  next<T extends PacketTypeName>(match: T, timeoutMs?: number): Promise<PacketOf<T>>;
  next<P extends Packet>(match: (packet: Packet) => packet is P, timeoutMs?: number): Promise<P>;
  next(match?: (packet: Packet) => boolean, timeoutMs?: number): Promise<Packet>;
  next(match?: PacketMatcher, timeoutMs = 2000): Promise<Packet> {
    const matches = matcherFor(match);
    const index = this.queue.findIndex(matches);
    if (index >= 0) return Promise.resolve(this.queue.splice(index, 1)[0]!);
    if (this.closed) return Promise.reject(new Error('MqttSnTestClient.next: client is closed'));
    return new Promise<Packet>((resolve, reject) => {
      const waiter: Waiter = {
        matches,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.removeWaiter(waiter);
          const queued = this.queue.map(describePacket).join(', ') || 'nothing';
          reject(
            new Error(
              `MqttSnTestClient.next: timed out after ${timeoutMs} ms waiting for ${describeMatcher(match)} ` +
                `(queued: ${queued})`,
            ),
          );
        }, timeoutMs),
      };
      this.waiters.push(waiter);
    });
  }

  /** Wait `ms` and fail if any packet (matching `match`, if given) is queued by then. */
  async expectNothing(ms: number, match?: PacketMatcher): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, ms));
    const matches = matcherFor(match);
    const unexpected = this.queue.filter(matches);
    if (unexpected.length > 0) {
      throw new Error(
        `MqttSnTestClient.expectNothing: expected no ${match === undefined ? 'packet' : describeMatcher(match)} ` +
          `for ${ms} ms, got ${unexpected.map(describePacket).join(', ')}`,
      );
    }
  }

  /** CONNECT, answering WILLTOPICREQ / WILLMSGREQ when `will` is given; returns the CONNACK. */
  async connect({
    clientId,
    duration = 60,
    cleanSession = true,
    will,
  }: ConnectOptions): Promise<ConnackPacket> {
    await this.send({
      type: 'CONNECT',
      will: will !== undefined,
      cleanSession,
      protocolId: 0x01,
      duration,
      clientId,
    });
    if (will !== undefined) {
      const topicReq = await this.next(isOneOf('WILLTOPICREQ', 'CONNACK'));
      if (topicReq.type === 'CONNACK') return topicReq;
      await this.send({
        type: 'WILLTOPIC',
        qos: will.qos ?? 0,
        retain: will.retain ?? false,
        willTopic: will.topic,
      });
      const msgReq = await this.next(isOneOf('WILLMSGREQ', 'CONNACK'));
      if (msgReq.type === 'CONNACK') return msgReq;
      await this.send({ type: 'WILLMSG', willMsg: toBytes(will.message) });
    }
    return this.next('CONNACK');
  }

  /** REGISTER `topicName` and return the topic id; throws if the gateway rejects it. */
  async register(topicName: string): Promise<number> {
    const msgId = this.nextMsgId();
    await this.send({ type: 'REGISTER', topicId: 0, msgId, topicName });
    const regack = await this.next(isAckFor('REGACK', msgId));
    if (regack.returnCode !== ReturnCode.ACCEPTED) {
      throw new Error(
        `MqttSnTestClient.register(${JSON.stringify(topicName)}): rejected, return code ${regack.returnCode}`,
      );
    }
    this.topicIds.set(topicName, regack.topicId);
    return regack.topicId;
  }

  /**
   * PUBLISH and run the QoS flow: QoS 1 resolves with the PUBACK; QoS 2 with the PUBCOMP after
   * PUBREC/PUBREL (or with a PUBACK if the gateway rejects the publish); QoS 0 and -1 with undefined.
   */
  async publish(opts: PublishOptions): Promise<TopicAckPacket | MsgIdPacket | undefined> {
    const { topicIdType = 'normal', qos = 0, retain = false, dup = false } = opts;
    const topicId = await this.resolveTopicId(opts, topicIdType);
    const msgId = opts.msgId ?? (qos === 1 || qos === 2 ? this.nextMsgId() : 0);
    await this.send({
      type: 'PUBLISH',
      dup,
      qos,
      retain,
      topicIdType,
      topicId,
      msgId,
      data: toBytes(opts.data),
    });
    if (qos === 1) return this.next(isAckFor('PUBACK', msgId));
    if (qos !== 2) return undefined;
    const rec = await this.next(
      (p: Packet) => (p.type === 'PUBREC' || p.type === 'PUBACK') && p.msgId === msgId,
    );
    if (rec.type === 'PUBACK') return rec;
    await this.send({ type: 'PUBREL', msgId });
    return this.next(isAckFor('PUBCOMP', msgId));
  }

  /** DISCONNECT (with a sleep `duration` in seconds if given) and return the gateway's DISCONNECT. */
  async disconnect(duration?: number): Promise<DisconnectPacket> {
    await this.send(duration === undefined ? { type: 'DISCONNECT' } : { type: 'DISCONNECT', duration });
    return this.next('DISCONNECT');
  }

  /**
   * PINGREQ and return the PINGRESP. With `clientId` (a sleeping client waking up), buffered
   * PUBLISHes the gateway sends before the PINGRESP stay queued for `next('PUBLISH')`.
   */
  async pingreq(clientId?: string): Promise<PingRespPacket> {
    await this.send(clientId === undefined ? { type: 'PINGREQ' } : { type: 'PINGREQ', clientId });
    return this.next('PINGRESP');
  }

  /** Close the socket; pending `next()` calls reject. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const waiter of this.waiters.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.reject(new Error('MqttSnTestClient closed while waiting for a packet'));
    }
    await new Promise<void>((resolve) => this.socket.close(() => resolve()));
  }

  private async resolveTopicId(opts: PublishOptions, topicIdType: TopicIdTypeName): Promise<number> {
    if (opts.topicId !== undefined) return opts.topicId;
    if (opts.topicName === undefined) throw new Error('MqttSnTestClient.publish: give topicId or topicName');
    if (topicIdType === 'short') return shortTopicId(opts.topicName);
    if (topicIdType === 'predefined')
      throw new Error('MqttSnTestClient.publish: predefined topics need a topicId');
    return this.topicIds.get(opts.topicName) ?? (await this.register(opts.topicName));
  }

  private onDatagram(msg: Buffer): void {
    let packet: Packet;
    try {
      packet = decode(msg, this.codec);
    } catch {
      this.undecodable.push(Uint8Array.from(msg));
      return;
    }
    const waiter = this.waiters.find((w) => w.matches(packet));
    if (waiter === undefined) {
      this.queue.push(packet);
      return;
    }
    this.removeWaiter(waiter);
    clearTimeout(waiter.timer);
    waiter.resolve(packet);
  }

  private removeWaiter(waiter: Waiter): void {
    const index = this.waiters.indexOf(waiter);
    if (index >= 0) this.waiters.splice(index, 1);
  }
}

/** Predicate: a packet of one of `types` (narrowed). */
function isOneOf<T extends PacketTypeName>(...types: T[]): (packet: Packet) => packet is PacketOf<T> {
  const predicate = (packet: Packet): packet is PacketOf<T> =>
    (types as PacketTypeName[]).includes(packet.type);
  Object.defineProperty(predicate, 'name', { value: types.join(' or ') });
  return predicate;
}

/** Predicate: a packet of `type` carrying `msgId` (narrowed). */
function isAckFor<T extends 'REGACK' | 'PUBACK' | 'PUBCOMP' | 'PUBREC'>(
  type: T,
  msgId: number,
): (packet: Packet) => packet is PacketOf<T> {
  const predicate = (packet: Packet): packet is PacketOf<T> =>
    packet.type === type && 'msgId' in packet && packet.msgId === msgId;
  Object.defineProperty(predicate, 'name', { value: `${type}(msgId ${msgId})` });
  return predicate;
}
