/**
 * A small MQTT-SN v1.2 client over UDP, built on the project's codec: connect (with the will flow),
 * register, publish at QoS -1/0/1/2, subscribe/unsubscribe, receive, keep-alive, sleep/wake, disconnect.
 * Every request is retransmitted after T_retry (DUP set where the spec has the flag) and fails after
 * N_retry resends; a refusal fails with the gateway's return code.
 *
 * ```ts
 * const client = await MqttSnClient.open({ host: '127.0.0.1', port: 1883, clientId: 'sensor1' });
 * await client.connect({ keepAliveSeconds: 60 });
 * await client.publish({ type: 'normal', name: 'temp' }, new TextEncoder().encode('21.5'), { qos: 1 });
 * await client.disconnect();
 * await client.close();
 * ```
 */
import { EventEmitter } from 'node:events';
import { PROTOCOL_ID, ReturnCode, type QoS, type TopicIdTypeName } from '../codec/constants.js';
import { shortTopicId } from '../codec/index.js';
import type {
  Packet,
  PacketOf,
  PublishPacket,
  SubscribePacket,
  SubscriptionTopic,
  UnsubscribePacket,
} from '../codec/types.js';
import { Inbound, type ReceivedMessage } from './inbound.js';
import { ClientDisconnectedError, GatewayRefusedError, GatewayTimeoutError } from './errors.js';
import { Exchange, type RequestOptions, type RetryPolicy } from './exchange.js';
import { describeTopicRef, hasWildcard, TopicTable, type TopicRef } from './topics.js';
import { UdpTransport, type TraceEvent } from './transport.js';

export type { ReceivedMessage } from './inbound.js';

export interface MqttSnClientOptions {
  /** Gateway host name or address; udp6 is used when it resolves to IPv6 (default 127.0.0.1). */
  host?: string;
  /** Gateway UDP port (default 1883). */
  port?: number;
  clientId: string;
  /** T_retry / N_retry (default 10 s / 3, the spec's recommendation). */
  retry?: Partial<RetryPolicy>;
  /** Called for every datagram in and out. */
  onTrace?: (event: TraceEvent) => void;
}

export interface WillOptions {
  topic: string;
  message: Uint8Array;
  qos?: 0 | 1 | 2;
  retain?: boolean;
}

export interface ConnectOptions {
  /** Keep-alive in seconds; 0 turns it off (default 60). */
  keepAliveSeconds?: number;
  /** Default true. */
  cleanSession?: boolean;
  will?: WillOptions;
}

export interface PublishOptions {
  /** Default 0. -1 needs no connection, but a predefined or short topic. */
  qos?: QoS;
  retain?: boolean;
}

export interface Subscription {
  grantedQos: 0 | 1 | 2;
  /** The id the gateway will publish with; 0 for wildcard filters and short names. */
  topicId: number;
}

export type ClientState = 'disconnected' | 'active' | 'asleep' | 'closed';

export type ClientEvents = {
  message: [message: ReceivedMessage];
  /** A refusal no request was waiting for: a PUBACK with a return code after a QoS 0 PUBLISH. */
  refused: [error: GatewayRefusedError];
  /** The session ended without disconnect(): unanswered keep-alive, DISCONNECT from the gateway, ICMP. */
  lost: [error: Error];
};

const DEFAULT_RETRY: RetryPolicy = { intervalMs: 10_000, retries: 3 };

export class MqttSnClient extends EventEmitter<ClientEvents> {
  readonly clientId: string;
  private readonly exchange: Exchange;
  private readonly topics = new TopicTable();
  private readonly inbound: Inbound;
  private lastMsgId = 0;
  private currentState: ClientState = 'disconnected';
  private keepAliveTimer: NodeJS.Timeout | undefined;
  /** Operations run one after another (one outstanding request, §6.4); this is the end of the line. */
  private queueTail: Promise<unknown> = Promise.resolve();
  private ending = false;

  private constructor(
    private readonly transport: UdpTransport,
    options: MqttSnClientOptions,
    private readonly peer: string,
  ) {
    super();
    this.clientId = options.clientId;
    this.exchange = new Exchange((packet) => this.send(packet), { ...DEFAULT_RETRY, ...options.retry }, peer);
    this.inbound = new Inbound(
      this.topics,
      (packet) => this.send(packet),
      (message) => this.emit('message', message),
    );
    transport.listen({
      onPacket: (packet) => this.onPacket(packet),
      onError: (err) => this.onSocketError(err),
      onTrace: options.onTrace,
    });
  }

  /** Resolves the host and opens a UDP socket towards the gateway (nothing is sent yet). */
  static async open(options: MqttSnClientOptions): Promise<MqttSnClient> {
    const host = options.host ?? '127.0.0.1';
    const port = options.port ?? 1883;
    const transport = await UdpTransport.open(host, port);
    return new MqttSnClient(transport, options, host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`);
  }

  get state(): ClientState {
    return this.currentState;
  }

  /** CONNECT, with the will flow when `will` is given; throws GatewayRefusedError on a refusing CONNACK. */
  connect({ keepAliveSeconds = 60, cleanSession = true, will }: ConnectOptions = {}): Promise<void> {
    return this.serial(async () => {
      let answer: PacketOf<'CONNACK' | 'WILLTOPICREQ' | 'WILLMSGREQ'> = await this.request(
        {
          type: 'CONNECT',
          will: will !== undefined,
          cleanSession,
          protocolId: PROTOCOL_ID,
          duration: keepAliveSeconds,
          clientId: this.clientId,
        },
        { what: 'CONNECT', isAnswer: isOneOf('CONNACK', 'WILLTOPICREQ') },
      );
      if (answer.type === 'WILLTOPICREQ') {
        // Without a will of ours, the empty WILLTOPIC says "no will".
        const willTopic = will
          ? {
              type: 'WILLTOPIC' as const,
              qos: will.qos ?? 0,
              retain: will.retain ?? false,
              willTopic: will.topic,
            }
          : { type: 'WILLTOPIC' as const, qos: 0 as const, retain: false };
        answer = await this.request(willTopic, {
          what: 'WILLTOPIC',
          isAnswer: isOneOf('CONNACK', 'WILLMSGREQ'),
        });
      }
      if (answer.type === 'WILLMSGREQ') {
        answer = await this.request(
          { type: 'WILLMSG', willMsg: will?.message ?? new Uint8Array(0) },
          { what: 'WILLMSG', isAnswer: isOneOf('CONNACK') },
        );
      }
      if (answer.returnCode !== ReturnCode.ACCEPTED) {
        throw new GatewayRefusedError('CONNECT', answer.returnCode);
      }
      if (cleanSession) {
        this.topics.clear();
        this.inbound.reset();
      }
      this.currentState = 'active';
      this.startKeepAlive(keepAliveSeconds);
    });
  }

  /** REGISTER a topic name; resolves with its topic id. Publishing to a name does this by itself. */
  register(name: string): Promise<number> {
    return this.serial(() => this.registerNow(name));
  }

  /**
   * PUBLISH and run the QoS flow: resolves once QoS 1 is PUBACKed / QoS 2 is PUBCOMPed (at once for
   * QoS 0 and -1). Normal topic names are REGISTERed first, once per session.
   */
  publish(
    topic: TopicRef,
    payload: Uint8Array,
    { qos = 0, retain = false }: PublishOptions = {},
  ): Promise<void> {
    if (qos === -1 && topic.type === 'normal') {
      return Promise.reject(new Error('QoS -1 needs a predefined topic id or a short (two-character) topic'));
    }
    return this.serial(async () => {
      const what = `PUBLISH to ${describeTopicRef(topic)}`;
      const wire = await this.wireTopic(topic);
      const msgId = qos > 0 ? this.nextMsgId() : 0;
      const packet: PublishPacket = {
        type: 'PUBLISH',
        dup: false,
        qos,
        retain,
        ...wire,
        msgId,
        data: payload,
      };
      if (qos !== 1 && qos !== 2) {
        this.send(packet);
        return;
      }
      const answer = await this.request(packet, {
        what,
        resend: { ...packet, dup: true },
        isAnswer: (p): p is PacketOf<'PUBACK' | 'PUBREC'> =>
          (p.type === 'PUBACK' || (qos === 2 && p.type === 'PUBREC')) && p.msgId === msgId,
      });
      if (answer.type === 'PUBACK') {
        // Also the refusal of a QoS 2 PUBLISH: there is no negative PUBREC.
        if (answer.returnCode !== ReturnCode.ACCEPTED) throw new GatewayRefusedError(what, answer.returnCode);
        return;
      }
      await this.request(
        { type: 'PUBREL', msgId },
        {
          what: `PUBREL of ${what}`,
          isAnswer: (p): p is PacketOf<'PUBCOMP'> => p.type === 'PUBCOMP' && p.msgId === msgId,
        },
      );
    });
  }

  /** SUBSCRIBE to a name, a filter (+, #), a predefined id or a short name. */
  subscribe(topic: TopicRef, qos: 0 | 1 | 2 = 0): Promise<Subscription> {
    return this.serial(async () => {
      const what = `SUBSCRIBE to ${describeTopicRef(topic)}`;
      const msgId = this.nextMsgId();
      const packet: SubscribePacket = {
        type: 'SUBSCRIBE',
        dup: false,
        qos,
        msgId,
        ...subscriptionTopic(topic),
      };
      const suback = await this.request(packet, {
        what,
        resend: { ...packet, dup: true },
        isAnswer: (p): p is PacketOf<'SUBACK'> => p.type === 'SUBACK' && p.msgId === msgId,
      });
      if (suback.returnCode !== ReturnCode.ACCEPTED) throw new GatewayRefusedError(what, suback.returnCode);
      if (topic.type === 'normal' && !hasWildcard(topic.name) && suback.topicId !== 0) {
        this.topics.learn(suback.topicId, topic.name);
      }
      return { grantedQos: suback.qos, topicId: suback.topicId };
    });
  }

  unsubscribe(topic: TopicRef): Promise<void> {
    return this.serial(async () => {
      const msgId = this.nextMsgId();
      const packet: UnsubscribePacket = { type: 'UNSUBSCRIBE', msgId, ...subscriptionTopic(topic) };
      await this.request(packet, {
        what: `UNSUBSCRIBE from ${describeTopicRef(topic)}`,
        isAnswer: (p): p is PacketOf<'UNSUBACK'> => p.type === 'UNSUBACK' && p.msgId === msgId,
      });
    });
  }

  /** PINGREQ → PINGRESP. The keep-alive does this by itself after a silent keep-alive period. */
  ping(): Promise<void> {
    return this.serial(async () => {
      await this.request({ type: 'PINGREQ' }, { what: 'PINGREQ', isAnswer: isOneOf('PINGRESP') });
    });
  }

  /** DISCONNECT with a duration (§6.14): the gateway buffers messages until wake() or connect(). */
  sleep(durationSeconds: number): Promise<void> {
    return this.serial(async () => {
      this.stopKeepAlive();
      await this.request(
        { type: 'DISCONNECT', duration: durationSeconds },
        { what: `DISCONNECT (sleep ${durationSeconds} s)`, isAnswer: isOneOf('DISCONNECT') },
      );
      this.currentState = 'asleep';
    });
  }

  /**
   * PINGREQ(clientId) from a sleeping client: the gateway sends what it buffered ('message' events),
   * then PINGRESP, which resolves this; the client is asleep again. Deliveries restart the wait.
   */
  wake(): Promise<void> {
    return this.serial(async () => {
      await this.request(
        { type: 'PINGREQ', clientId: this.clientId },
        {
          what: 'PINGREQ (wake-up)',
          isAnswer: isOneOf('PINGRESP'),
          isProgress: (p) => p.type === 'PUBLISH' || p.type === 'PUBREL' || p.type === 'REGISTER',
        },
      );
    });
  }

  /**
   * From now on PUBLISHes are neither delivered nor acknowledged, so the gateway keeps them for the
   * next session (PUBRELs are still answered). For a receiver that has had enough.
   */
  stopReceiving(): void {
    this.inbound.stopReceiving();
  }

  /** DISCONNECT and wait for the gateway's DISCONNECT. Abandons operations still queued or waiting. */
  async disconnect(): Promise<void> {
    this.ending = true;
    this.exchange.abort(new ClientDisconnectedError('abandoned: the client is disconnecting'));
    await this.queueTail;
    this.ending = false;
    return this.serial(async () => {
      this.stopKeepAlive();
      await this.request({ type: 'DISCONNECT' }, { what: 'DISCONNECT', isAnswer: isOneOf('DISCONNECT') });
      this.currentState = 'disconnected';
    });
  }

  /** Closes the socket; pending operations fail with ClientDisconnectedError. Idempotent. */
  async close(): Promise<void> {
    if (this.currentState === 'closed') return;
    this.currentState = 'closed';
    this.stopKeepAlive();
    this.exchange.abort(new ClientDisconnectedError('the client was closed'));
    await this.transport.close();
  }

  private serial<T>(operation: () => Promise<T>): Promise<T> {
    const run = this.queueTail.then(() => {
      if (this.currentState === 'closed') throw new ClientDisconnectedError('the client is closed');
      if (this.ending) throw new ClientDisconnectedError('abandoned: the client is disconnecting');
      return operation();
    });
    this.queueTail = run.catch(() => undefined);
    return run;
  }

  /** One request-answer exchange, unless disconnect() or close() has abandoned the operation meanwhile. */
  private request<T extends Packet>(packet: Packet, options: RequestOptions<T>): Promise<T> {
    if (this.currentState === 'closed') {
      return Promise.reject(new ClientDisconnectedError('the client is closed'));
    }
    if (this.ending) {
      return Promise.reject(new ClientDisconnectedError('abandoned: the client is disconnecting'));
    }
    return this.exchange.request(packet, options);
  }

  private async registerNow(name: string): Promise<number> {
    const what = `REGISTER ${JSON.stringify(name)}`;
    const msgId = this.nextMsgId();
    const regack = await this.request(
      { type: 'REGISTER', topicId: 0, msgId, topicName: name },
      { what, isAnswer: (p): p is PacketOf<'REGACK'> => p.type === 'REGACK' && p.msgId === msgId },
    );
    if (regack.returnCode !== ReturnCode.ACCEPTED) throw new GatewayRefusedError(what, regack.returnCode);
    this.topics.learn(regack.topicId, name);
    return regack.topicId;
  }

  /** The TopicIdType and TopicId a PUBLISH carries for `topic`. */
  private async wireTopic(topic: TopicRef): Promise<{ topicIdType: TopicIdTypeName; topicId: number }> {
    switch (topic.type) {
      case 'predefined':
        return { topicIdType: 'predefined', topicId: topic.id };
      case 'short':
        return { topicIdType: 'short', topicId: shortTopicId(topic.name) };
      case 'normal':
        if (hasWildcard(topic.name)) {
          throw new Error(`cannot publish to the filter ${JSON.stringify(topic.name)}`);
        }
        return {
          topicIdType: 'normal',
          topicId: this.topics.idOf(topic.name) ?? (await this.registerNow(topic.name)),
        };
    }
  }

  private nextMsgId(): number {
    this.lastMsgId = (this.lastMsgId % 0xffff) + 1;
    return this.lastMsgId;
  }

  private send(packet: Packet): void {
    this.transport.send(packet);
    // Any packet to the gateway proves us alive: the keep-alive counts from the last one.
    this.keepAliveTimer?.refresh();
  }

  private onPacket(packet: Packet): void {
    if (this.currentState === 'closed' || this.exchange.offer(packet)) return;
    switch (packet.type) {
      case 'PUBLISH':
        return this.inbound.onPublish(packet);
      case 'PUBREL':
        return this.inbound.onPubrel(packet);
      case 'REGISTER':
        return this.inbound.onRegister(packet);
      case 'PINGREQ':
        return this.send({ type: 'PINGRESP' });
      case 'PUBACK':
        if (packet.returnCode !== ReturnCode.ACCEPTED) {
          this.emit(
            'refused',
            new GatewayRefusedError(`PUBLISH to topic id ${packet.topicId}`, packet.returnCode),
          );
        }
        return;
      case 'DISCONNECT':
        return this.onGatewayDisconnect();
      default:
      // Late duplicates of answers, ADVERTISE, GWINFO: nothing to do (visible in traces).
    }
  }

  private onGatewayDisconnect(): void {
    const err = new ClientDisconnectedError('the gateway ended the session (DISCONNECT)');
    // A DISCONNECT answering anything else means the gateway has no session for us (any more).
    this.exchange.abort(err);
    if (this.currentState === 'active') this.lose(err);
  }

  private onSocketError(err: NodeJS.ErrnoException): void {
    const error =
      err.code === 'ECONNREFUSED'
        ? new GatewayTimeoutError(`nothing listens at ${this.peer} (ICMP port unreachable)`)
        : new Error(`UDP socket: ${err.message}`, { cause: err });
    this.exchange.abort(error);
    if (this.currentState === 'active') this.lose(error);
  }

  private lose(err: Error): void {
    this.currentState = 'disconnected';
    this.stopKeepAlive();
    this.emit('lost', err);
  }

  private startKeepAlive(seconds: number): void {
    this.stopKeepAlive();
    if (seconds <= 0) return;
    this.keepAliveTimer = setTimeout(() => this.onKeepAliveDue(), seconds * 1000);
  }

  private stopKeepAlive(): void {
    clearTimeout(this.keepAliveTimer);
    this.keepAliveTimer = undefined;
  }

  /** A keep-alive period passed without sending anything: PINGREQ, whose failure loses the session. */
  private onKeepAliveDue(): void {
    if (this.exchange.busy) {
      // A request is being retransmitted (each resend re-arms this timer); its outcome decides.
      this.keepAliveTimer?.refresh();
      return;
    }
    this.ping().catch((err: unknown) => {
      if (err instanceof GatewayTimeoutError && this.currentState === 'active') this.lose(err);
    });
  }
}

/** SUBSCRIBE / UNSUBSCRIBE carry a name for 'normal' and a 2-byte id otherwise. */
function subscriptionTopic(topic: TopicRef): SubscriptionTopic {
  switch (topic.type) {
    case 'normal':
      return { topicIdType: 'normal', topicName: topic.name };
    case 'predefined':
      return { topicIdType: 'predefined', topicId: topic.id };
    case 'short':
      return { topicIdType: 'short', topicId: shortTopicId(topic.name) };
  }
}

/** Predicate: a packet of one of `types` (narrowed). */
function isOneOf<T extends Packet['type']>(...types: T[]): (packet: Packet) => packet is PacketOf<T> {
  return (packet: Packet): packet is PacketOf<T> => (types as Packet['type'][]).includes(packet.type);
}
