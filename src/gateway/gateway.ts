import dgram, { type RemoteInfo, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import type { Logger } from 'pino';
import { whenBound } from '../listen.js';
import { MsgType, ReturnCode } from '../codec/constants.js';
import { decode, encode, MqttSnCodecError } from '../codec/index.js';
import type { CodecOptions, Packet } from '../codec/types.js';
import { RateLimitedWarn } from '../log/rate-limit.js';
import type { Namespace } from '../topics/namespace.js';
import type { PredefinedTopics } from '../topics/predefined.js';
import { systemClock, type Clock } from './clock.js';
import type { DownlinkMessage } from '../store/downlink.js';
import type { DownlinkQueueStore, SessionRecordStore } from '../store/ports.js';
import type { SessionSnapshot } from '../store/sessions.js';
import {
  DEFAULT_IDLE_SESSION_EXPIRY_MS,
  DEFAULT_MAX_TAKEOVER_PROBES,
  DEFAULT_TAKEOVER_PROBE_MS,
  type BrokerSubscriptions,
  type GatewayContext,
  type GatewayOptions,
  type MessageSink,
} from './context.js';
import { Delivery } from './delivery.js';
import { handlePuback, handlePubcomp, handlePubrec, handleRegack } from './handlers/acks.js';
import { handleConnect } from './handlers/connect.js';
import { handleDisconnect } from './handlers/disconnect.js';
import { handlePingreq } from './handlers/pingreq.js';
import { handlePublish } from './handlers/publish.js';
import { handlePubrel } from './handlers/pubrel.js';
import { handleRegister } from './handlers/register.js';
import { handleSearchGw } from './handlers/searchgw.js';
import { handleSubscribe, handleUnsubscribe } from './handlers/subscribe.js';
import { handleWillMsgUpd, handleWillTopicUpd } from './handlers/willupdate.js';
import { handleWillMsg } from './handlers/willmsg.js';
import { handleWillTopic } from './handlers/willtopic.js';
import { answerUndecodable } from './handlers/invalid.js';
import { brokerFilterProblem, brokerTopicProblem, clientIdProblem } from '../topics/names.js';
import { describePeer, peerKey, type Peer } from './peer.js';
import { TakeoverProbes } from './probes.js';
import { Sessions } from './registry.js';
import { Session, type SessionState } from './session.js';
import { GatewayStats, type DiscardReason } from './stats.js';
import { SubscriptionIndex } from './subscriptions.js';
import { TimerWheel } from './wheel.js';
import type { ControlParts } from './control.js';
import type { PacketTap } from './trace.js';

export interface ListenAddress {
  host: string;
  port: number;
}

export interface AdvertiseOptions {
  host: string;
  port: number;
  intervalSeconds: number;
}

export interface GatewayConfig extends GatewayOptions {
  listen: ListenAddress[];
  namespace: Namespace;
  predefined: PredefinedTopics;
  /** Periodic ADVERTISE (§6.1); off when undefined. */
  advertise?: AdvertiseOptions;
}

/** The settings a SIGHUP changes while running (see reconfigure). */
export type LiveGatewaySettings = Pick<
  GatewayConfig,
  | 'predefined'
  | 'allowClients'
  | 'limits'
  | 'downlink'
  | 'sessionExpiryMs'
  | 'idleSessionExpiryMs'
  | 'allowQosMinusOne'
  | 'takeoverProbeMs'
>;

/** What the gateway works with; the bridge passes the real ones, tests too. */
export interface GatewayDeps {
  /** Device messages on their way to the broker (the outbox). */
  sink: MessageSink;
  downlinkStore: DownlinkQueueStore;
  sessionStore: SessionRecordStore;
  /** Broker subscriptions (the uplink). */
  broker: BrokerSubscriptions;
  log: Logger;
  clock?: Clock;
  /** Told when a device's state changes (device presence, published by the bridge when configured). */
  onStateChange?: (session: Session, previous: SessionState) => void;
  /** Sees every datagram decoded or encoded (the packet trace, trace.ts). */
  tap?: PacketTap;
}

/** Packets that show a client doing more than connecting (see Session.idle). */
const USES_A_SESSION = new Set<Packet['type']>(['PUBLISH', 'SUBSCRIBE', 'REGISTER']);

/** How long a disconnected session is kept: shorter while its client never did anything. */
function sessionExpiryFor(session: Session, config: GatewayOptions): number {
  if (!session.idle) return config.sessionExpiryMs;
  const idle = config.idleSessionExpiryMs ?? DEFAULT_IDLE_SESSION_EXPIRY_MS;
  if (idle === 0) return config.sessionExpiryMs;
  return config.sessionExpiryMs > 0 ? Math.min(idle, config.sessionExpiryMs) : idle;
}

/** How long a client may take over the CONNECT will flow before it is dropped. */
const WILL_FLOW_TIMEOUT_MS = 60_000;

/**
 * The MQTT-SN side: UDP sockets, decoding, sessions, supervision and dispatch to one handler per
 * message type. Knows nothing of the broker: device messages go to the MessageSink.
 */
export class Gateway {
  readonly stats = new GatewayStats();
  readonly sessions: Sessions;
  readonly subscriptions: SubscriptionIndex;
  private readonly delivery: Delivery;
  private readonly probes: TakeoverProbes;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly sockets: Socket[] = [];
  private readonly wheel: TimerWheel;
  private readonly ctx: GatewayContext;
  private readonly decodeOptions: CodecOptions;
  private readonly warn: RateLimitedWarn;
  private tickTimer: NodeJS.Timeout | undefined;
  private advertiseTimer: NodeJS.Timeout | undefined;
  private accepting = false;
  private socketsOpen = false;
  /** Replies handed to the sockets whose send callback has not run yet (see close()). */
  private sendsInFlight = 0;
  private onSendsSettled: (() => void) | undefined;

  constructor(
    private config: GatewayConfig,
    private readonly deps: GatewayDeps,
  ) {
    const log = (this.log = deps.log);
    const clock = (this.clock = deps.clock ?? systemClock);
    this.wheel = new TimerWheel(clock.now());
    this.warn = new RateLimitedWarn(log, 10_000, () => clock.now());
    // Decode client ids with the widest bound so an over-long one gets CONNACK "not supported", not silence.
    this.decodeOptions = { maxClientIdLength: 0xffff };
    this.sessions = new Sessions(
      log,
      this.wheel,
      (clientId) => config.namespace.prefixFor(clientId),
      config.limits.maxTopicsPerClient,
      (session) => this.guard('timer', () => this.onSupervisionExpired(session)),
      (session) => this.guard('timer', () => this.delivery.onRetryDue(session)),
      (session, reason) => this.onSessionRemoved(session, reason),
    );
    this.subscriptions = new SubscriptionIndex((filter) => deps.broker.unsubscribe(filter), {
      // A persisted session's subscriptions are stored one key each, as they change.
      added: (session, { filter, qos, topicIdType, topicId }) => {
        if (session.persisted)
          deps.sessionStore.saveSubscription(session.clientId, { filter, qos, topicIdType, topicId });
      },
      removed: (session, filter) => {
        if (session.persisted) deps.sessionStore.deleteSubscription(session.clientId, filter);
      },
    });
    // The context and the delivery engine refer to each other: the getter below resolves that.
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const gateway = this;
    this.ctx = {
      get options() {
        return gateway.config;
      },
      clock,
      log,
      warn: this.warn,
      namespace: config.namespace,
      get predefined() {
        return gateway.config.predefined;
      },
      sink: this.guardedSink(deps.sink),
      stats: this.stats,
      sessions: this.sessions,
      subscriptions: this.subscriptions,
      get delivery() {
        return gateway.delivery;
      },
      get probes() {
        return gateway.probes;
      },
      broker: deps.broker,
      send: (peer, packet) => this.send(peer, packet),
      persist: (session) => this.persist(session),
      setState: (session, state) => this.setState(session, state),
      lose: (session, reason) => this.lose(session, reason),
    };
    this.delivery = new Delivery(this.ctx, deps.downlinkStore, this.wheel, config.downlink);
    this.probes = new TakeoverProbes(
      this.wheel,
      clock,
      (peer, packet) => this.send(peer, packet),
      () => ({
        timeoutMs: this.config.takeoverProbeMs ?? DEFAULT_TAKEOVER_PROBE_MS,
        maxInFlight: this.config.limits.maxTakeoverProbes ?? DEFAULT_MAX_TAKEOVER_PROBES,
      }),
    );
  }

  /** Binds every listen address; resolves once datagrams are accepted. */
  async start(): Promise<void> {
    for (const { host, port } of this.config.listen) {
      const socket = dgram.createSocket({ type: isIPv6(host) ? 'udp6' : 'udp4', ipv6Only: isIPv6(host) });
      socket.on('message', (buf, rinfo) => this.onDatagram(socket, buf, rinfo));
      socket.on('error', (err) => this.log.error({ err }, 'UDP socket error'));
      await whenBound(socket, (bound) => socket.bind(port, host, bound)).catch(
        (err: NodeJS.ErrnoException) => {
          socket.close(); // nothing may keep a gateway that cannot listen alive
          throw new Error(`cannot listen on UDP ${host}:${port}: ${err.code ?? err.message}`, { cause: err });
        },
      );
      try {
        // Absorb bursts from many sensors at once; the kernel may cap it (net.core.rmem_max).
        socket.setRecvBufferSize(4 * 1024 * 1024);
      } catch {
        // keep the default
      }
      this.sockets.push(socket);
    }
    this.socketsOpen = true;
    await this.restore();
    this.accepting = true;
    this.tickTimer = setInterval(() => this.wheel.tick(this.clock.now()), 250).unref();
    this.startAdvertising();
    for (const address of this.addresses()) this.log.info(address, 'listening for MQTT-SN over UDP');
  }

  /** The bound UDP addresses (useful with port 0). */
  addresses(): Array<{ address: string; port: number; family: string }> {
    return this.sockets.map((socket) => socket.address());
  }

  /**
   * Applies what can change while running (SIGHUP): predefined topics, the allow-list, limits and
   * downlink timings. New limits apply to new sessions; existing topic tables keep their size.
   */
  reconfigure(changes: LiveGatewaySettings): void {
    Object.assign(this.config.downlink, changes.downlink); // the delivery engine holds this object
    this.config = { ...this.config, ...changes, downlink: this.config.downlink };
    this.sessions.setMaxTopics(changes.limits.maxTopicsPerClient);
  }

  /** What the admin API acts on devices through (control.ts). */
  controlParts(): ControlParts {
    return this.ctx;
  }

  /** Whether datagrams are taken now (false before start() and once stopping). */
  get isAccepting(): boolean {
    return this.accepting;
  }

  /** Runs due supervision now (tests with a manual clock call this). */
  tick(): void {
    this.wheel.tick(this.clock.now());
  }

  /** Stops accepting datagrams; replies to work already under way (commits) can still be sent. */
  stopAccepting(): void {
    this.accepting = false;
    clearInterval(this.tickTimer);
    clearInterval(this.advertiseTimer);
  }

  /**
   * Closes the sockets once the replies already sent are out (the PUBACKs of the last commit): Node
   * drops datagrams still queued in a socket that is closed, so closing right away would lose them.
   * Bounded by `drainTimeoutMs`, then closed anyway.
   */
  async close(drainTimeoutMs = 2000): Promise<void> {
    this.stopAccepting();
    this.socketsOpen = false;
    if (this.sendsInFlight > 0) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.onSendsSettled = resolve;
        timer = setTimeout(resolve, drainTimeoutMs);
      });
      clearTimeout(timer);
      this.onSendsSettled = undefined;
    }
    await Promise.all(
      this.sockets.map((socket) => new Promise<void>((resolve) => socket.close(() => resolve()))),
    );
    this.sockets.length = 0;
  }

  private onDatagram(socket: Socket, buf: Buffer, rinfo: RemoteInfo): void {
    if (!this.accepting) return;
    this.stats.datagramsIn++;
    let packet: Packet;
    try {
      packet = decode(buf, this.decodeOptions);
    } catch (err) {
      this.guard('datagram', () => this.onUndecodable(socket, buf, rinfo, err));
      return;
    }
    let wirelessNodeId: Uint8Array | undefined;
    if (packet.type === 'ENCAPSULATED') {
      wirelessNodeId = packet.wirelessNodeId.slice();
      packet = packet.packet;
    }
    const key = peerKey(rinfo.address, rinfo.port, wirelessNodeId);
    const session = this.sessions.byPeer(key);
    const peer: Peer =
      session && session.peer.socket === socket
        ? session.peer
        : { socket, address: rinfo.address, port: rinfo.port, wirelessNodeId, key };
    if (session) this.heardFrom(session);
    if (this.deps.tap?.active) this.deps.tap.packet('in', peer, buf, packet, session?.clientId);
    if (buf.length > this.config.limits.maxPacketSize && packet.type !== 'PUBLISH') {
      this.stats.oversized++;
      this.warn.warn(
        'oversized',
        { address: describePeer(peer), size: buf.length, type: packet.type },
        'datagram larger than the packet size limit dropped',
      );
      return;
    }
    try {
      this.dispatch(peer, session, packet, buf.length);
      if (session?.idle && USES_A_SESSION.has(packet.type) && session.isConnected) this.markUsed(session);
    } catch (err) {
      // A bug in one handler must not take the gateway (and every other sensor) down.
      this.stats.handlerErrors++;
      this.countError('datagram');
      this.warn.warn(
        `handler-failed|${packet.type}`,
        { err, address: describePeer(peer), type: packet.type },
        'handler failed; packet dropped',
      );
    }
  }

  /**
   * A dispatch boundary (undecodable datagram, broker message, commit callback, timer): an exception
   * is counted and logged (rate-limited) and the gateway goes on; no single input ends the process.
   * Returns whether `fn` completed.
   */
  private guard(boundary: string, fn: () => void): boolean {
    try {
      fn();
      return true;
    } catch (err) {
      this.countError(boundary);
      this.warn.warn(
        `boundary-error|${boundary}`,
        { err, boundary },
        `exception at the ${boundary} boundary caught`,
      );
      return false;
    }
  }

  private countError(boundary: string): void {
    this.stats.errorsByBoundary.set(boundary, (this.stats.errorsByBoundary.get(boundary) ?? 0) + 1);
  }

  /**
   * The sink as handlers see it: a commit callback that throws is caught here (it runs inside the
   * outbox's group commit), and a topic the broker would refuse never reaches the outbox, whichever
   * path composed it (belt and braces behind the handlers' own checks).
   */
  private guardedSink(sink: MessageSink): MessageSink {
    return {
      append: (message, onCommitted) => {
        const problem = brokerTopicProblem(message.topic);
        if (problem) {
          this.stats.rejectedInvalidTopic++;
          this.warn.warn(
            'invalid-broker-topic',
            { clientId: message.clientId, problem },
            'message with a topic the broker would refuse dropped',
          );
          return 'rejected';
        }
        return sink.append(
          message,
          onCommitted && ((err) => void this.guard('commit', () => onCommitted(err))),
        );
      },
    };
  }

  /** The client did something real: its session gets the normal expiry and is not evicted for room. */
  private markUsed(session: Session): void {
    session.idle = false;
    this.sessions.noteState(session);
    if (!session.cleanSession) this.persist(session);
  }

  private dispatch(peer: Peer, session: Session | undefined, packet: Packet, length: number): void {
    const ctx = this.ctx;
    switch (packet.type) {
      case 'PUBLISH':
        return handlePublish(ctx, peer, session, packet, length);
      case 'CONNECT':
        return handleConnect(ctx, peer, session, packet);
      case 'WILLTOPIC':
        return handleWillTopic(ctx, peer, session, packet);
      case 'WILLMSG':
        return handleWillMsg(ctx, peer, session, packet);
      case 'REGISTER':
        return handleRegister(ctx, peer, session, packet);
      case 'PUBREL':
        return handlePubrel(ctx, peer, session, packet);
      case 'PINGREQ':
        return handlePingreq(ctx, peer, session, packet);
      case 'DISCONNECT':
        return handleDisconnect(ctx, peer, session, packet);
      case 'SEARCHGW':
        return handleSearchGw(ctx, peer, packet);
      case 'SUBSCRIBE':
        return handleSubscribe(ctx, peer, session, packet);
      case 'UNSUBSCRIBE':
        return handleUnsubscribe(ctx, peer, session, packet);
      case 'REGACK':
        return handleRegack(ctx, peer, session, packet);
      case 'PUBACK':
        return handlePuback(ctx, peer, session, packet);
      case 'PUBREC':
        return handlePubrec(ctx, peer, session, packet);
      case 'PUBCOMP':
        return handlePubcomp(ctx, peer, session, packet);
      case 'PINGRESP':
        // The answer to a takeover probe (see TakeoverProbes); otherwise unexpected.
        if (!this.probes.onPingresp(peer)) this.stats.unexpected++;
        return;
      case 'WILLTOPICUPD':
        return handleWillTopicUpd(ctx, peer, session, packet);
      case 'WILLMSGUPD':
        return handleWillMsgUpd(ctx, peer, session, packet);
      default:
        // Gateway-to-client messages, other gateways' ADVERTISE/GWINFO, and what a later version handles.
        this.stats.unexpected++;
        this.log.debug({ address: describePeer(peer), type: packet.type }, 'packet ignored');
    }
  }

  private onUndecodable(socket: Socket, buf: Buffer, rinfo: RemoteInfo, err: unknown): void {
    this.stats.malformed++;
    const reason = err instanceof MqttSnCodecError ? err.reason : String(err);
    // A well-framed message with invalid content (a name that is not UTF-8) is answered with its refusal.
    if (err instanceof MqttSnCodecError && !err.forwarder && err.msgType !== MsgType.CONNECT) {
      const key = peerKey(rinfo.address, rinfo.port);
      const session = this.sessions.byPeer(key);
      const peer: Peer =
        session && session.peer.socket === socket
          ? session.peer
          : { socket, address: rinfo.address, port: rinfo.port, key };
      if (answerUndecodable(this.ctx, peer, session, buf, reason)) return;
    }
    this.warn.warn(
      // One key per kind: 256 "unknown message type 0xNN" variants are one kind.
      `malformed|${reason.replace(/ 0x[0-9a-f]+$/, '')}`,
      { address: rinfo.address, port: rinfo.port, reason },
      'malformed datagram dropped',
    );
    // An undecodable CONNECT (empty client id, an MQTT-SN 2.0 layout) still deserves its refusal.
    if (err instanceof MqttSnCodecError && err.msgType === MsgType.CONNECT) {
      const key = peerKey(rinfo.address, rinfo.port);
      this.stats.rejectedNotSupported++;
      this.send(
        { socket, address: rinfo.address, port: rinfo.port, key },
        { type: 'CONNACK', returnCode: ReturnCode.NOT_SUPPORTED },
      );
    }
  }

  /** Any packet from a connected client proves it alive: move its deadline (no timer work). */
  private heardFrom(session: Session): void {
    session.lastSeenWall = this.clock.wallNow();
    if ((session.state === 'active' || session.state === 'awake') && session.keepAliveMs > 0) {
      session.supervision.deadline = this.clock.now() + Session.graceMs(session.keepAliveMs);
    }
  }

  private send(peer: Peer, packet: Packet): void {
    if (!this.socketsOpen) return;
    let bytes: Uint8Array;
    try {
      bytes = peer.wirelessNodeId
        ? encode({
            type: 'ENCAPSULATED',
            radius: 0,
            wirelessNodeId: peer.wirelessNodeId,
            packet: packet as Exclude<Packet, { type: 'ENCAPSULATED' }>,
          })
        : encode(packet);
    } catch (err) {
      // Callers check what they send (delivery measures downlink messages first); if one slips through,
      // it is counted, not thrown into a handler, a timer or a commit callback.
      this.stats.sendErrors++;
      this.countError('encode');
      this.warn.warn('encode-error', { err, type: packet.type }, 'a datagram could not be encoded: not sent');
      return;
    }
    if (this.deps.tap?.active)
      this.deps.tap.packet('out', peer, bytes, packet, this.sessions.byPeer(peer.key)?.clientId);
    this.stats.datagramsOut++;
    this.sendsInFlight++;
    peer.socket.send(bytes, peer.port, peer.address, this.onReplySent);
  }

  private readonly onReplySent = (err: Error | null): void => {
    if (--this.sendsInFlight === 0) this.onSendsSettled?.();
    this.onSent(err);
  };

  private readonly onSent = (err: Error | null): void => {
    if (!err) return;
    this.stats.sendErrors++;
    this.warn.warn('send-error', { err }, 'sending a datagram failed');
  };

  private setState(session: Session, state: SessionState): void {
    const previous = session.state;
    session.state = state;
    if (previous !== state) this.deps.onStateChange?.(session, previous);
    const entry = session.supervision;
    const now = this.clock.now();
    switch (state) {
      case 'active':
      case 'awake':
        entry.deadline = session.keepAliveMs > 0 ? now + Session.graceMs(session.keepAliveMs) : Infinity;
        break;
      case 'connecting':
        entry.deadline = now + Math.max(Session.graceMs(session.keepAliveMs), WILL_FLOW_TIMEOUT_MS);
        break;
      case 'asleep':
        entry.deadline = now + Session.graceMs(session.sleepMs);
        break;
      default: {
        // Disconnected or lost: a kept (CleanSession=0) session is forgotten after the expiry; one
        // whose client never did anything after the short idle expiry (CONNECT floods).
        const expiry = sessionExpiryFor(session, this.config);
        entry.deadline = !session.cleanSession && expiry > 0 ? now + expiry : Infinity;
      }
    }
    this.wheel.schedule(entry);
    this.sessions.noteState(session);
    if (state === 'asleep' || state === 'disconnected' || state === 'lost') this.delivery.suspend(session);
  }

  private onSupervisionExpired(session: Session): void {
    if (session.state === 'disconnected' || session.state === 'lost') {
      session.log.info({ queued: session.outgoing.length }, 'persistent session expired: forgotten');
      this.stats.sessionsExpired++;
      this.sessions.remove(session, 'expired');
      return;
    }
    const reason =
      session.state === 'asleep' ? 'did not wake within its sleep duration' : 'keep-alive expired';
    this.lose(session, reason);
  }

  private lose(session: Session, reason: string): void {
    this.stats.sessionsLost++;
    this.warn.warn(
      'client-lost',
      {
        clientId: session.clientId,
        address: describePeer(session.peer),
        reason,
        will: session.will !== undefined,
      },
      'client lost',
    );
    this.setState(session, 'lost');
    this.sessions.unbind(session);
    const will = session.will;
    if (will) {
      // Published once, like MQTT: the will is used up.
      session.will = undefined;
      this.stats.willsPublished++;
      const outcome = this.ctx.sink.append({
        clientId: session.clientId,
        topic: will.topic,
        payload: will.payload,
        retain: will.retain,
        qos: will.qos,
      });
      if (outcome !== 'queued')
        this.warn.warn(
          'will-not-queued',
          { clientId: session.clientId, outcome },
          'will could not be queued',
        );
    }
    if (session.cleanSession) this.sessions.remove(session, 'lost');
    else this.persist(session);
  }

  /**
   * A message from the broker, to every device subscribed to it. QoS 1/2 copies (and QoS 0 ones for
   * sleepers, when configured) are stored durably first; `done` runs after that sync, so the uplink
   * acknowledges the broker only once nothing can be lost.
   */
  routeFromBroker(
    topic: string,
    payload: Uint8Array,
    qos: 0 | 1 | 2,
    retain: boolean,
    done: (err?: Error) => void,
  ): void {
    let answered = false;
    const once = (err?: Error): void => {
      if (answered) return;
      answered = true;
      done(err);
    };
    // A message that makes routing throw would throw again on every redelivery: acknowledge and drop it.
    if (!this.guard('broker-message', () => this.route(topic, payload, qos, retain, once))) {
      this.stats.downlinkDropped++;
      once();
    }
  }

  private route(
    topic: string,
    payload: Uint8Array,
    qos: 0 | 1 | 2,
    retain: boolean,
    done: (err?: Error) => void,
  ): void {
    const durable: Array<{ session: Session; message: DownlinkMessage }> = [];
    const markedRetained: Array<Set<string>> = [];
    for (const [session, subscription] of this.subscriptions.match(topic)) {
      if (retain) {
        // Retained copies come on every (re)subscription of the filter, also for other devices.
        if (!subscription.retainedSeen || subscription.retainedSeen.has(topic)) continue;
        subscription.retainedSeen.add(topic);
        markedRetained.push(subscription.retainedSeen);
      }
      const message: DownlinkMessage = {
        seq: 0,
        topic,
        payload,
        qos: Math.min(subscription.qos, qos) as 0 | 1 | 2,
        retain,
        topicIdType: subscription.topicIdType,
        topicId: subscription.topicId ?? 0,
      };
      // Refused before storing: a stored copy that cannot be sent would wedge the device's queue.
      const problem = this.delivery.unrepresentable(session, message);
      if (problem) {
        this.delivery.dropUnrepresentable(session, topic, problem);
        continue;
      }
      const listening =
        session.state === 'active' || session.state === 'awake' || session.state === 'connecting';
      if (message.qos > 0 || (session.state === 'asleep' && this.config.downlink.bufferQos0ForSleepers)) {
        durable.push({ session, message });
      } else if (listening) {
        this.delivery.enqueue(session, message);
      } else {
        this.stats.downlinkDropped++;
      }
    }
    if (durable.length === 0) {
      done();
      return;
    }
    this.deps.downlinkStore.put(
      durable.map(({ session, message }) => ({ clientId: session.clientId, message })),
      (err) => {
        if (err) {
          // Not durable, so not acknowledged: the broker sends it again (the uplink does not ack and
          // reconnects). Delivering it from memory too would only duplicate it.
          this.stats.downlinkStoreFailures++;
          this.warn.warn(
            'downlink-store',
            { err, topic },
            'storing a broker message failed: not acknowledged',
          );
          // The redelivered retained copy must not be taken for one already seen.
          for (const seen of markedRetained) seen.delete(topic);
          done(err);
          return;
        }
        for (const { session, message } of durable) {
          // One device's delivery failing must not keep the others (or the broker's ack) waiting.
          this.guard('commit', () => {
            // The session may have been removed meanwhile (CleanSession=1 reconnect).
            if (this.sessions.byClientId(session.clientId) === session)
              this.delivery.enqueue(session, message);
            else this.deps.downlinkStore.delete(session.clientId, message.seq);
          });
        }
        done();
      },
    );
  }

  /** Saves (CleanSession=0) or forgets (CleanSession=1) the session's durable snapshot. */
  private persist(session: Session): void {
    if (session.cleanSession) {
      if (session.persisted) this.deps.sessionStore.delete(session.clientId);
      session.persisted = false;
      return;
    }
    const will = session.will;
    this.deps.sessionStore.save({
      clientId: session.clientId,
      // Written in full only when the session is first persisted; then key by key as they change.
      subscriptions: session.persisted
        ? undefined
        : [...session.subscriptions.values()].map(({ filter, qos, topicIdType, topicId }) => ({
            filter,
            qos,
            topicIdType,
            topicId,
          })),
      will: will && {
        topic: will.topic,
        payload: Buffer.from(will.payload).toString('base64'),
        qos: will.qos,
        retain: will.retain,
      },
      asleep: session.state === 'asleep' || session.state === 'awake',
      sleepMs: session.sleepMs,
      keepAliveMs: session.keepAliveMs,
      address: session.peer.address || undefined,
      idle: session.idle || undefined,
    });
    session.persisted = true;
  }

  private onSessionRemoved(session: Session, reason: DiscardReason): void {
    this.probes.forget(session);
    this.subscriptions.removeAll(session);
    this.delivery.discard(session, reason);
    if (session.persisted) this.deps.sessionStore.delete(session.clientId);
    session.persisted = false;
  }

  /**
   * After a restart: CleanSession=0 sessions come back with their subscriptions (re-subscribed at
   * the broker), will and queued downlink messages; sleepers keep their sleep supervision.
   */
  private async restore(): Promise<void> {
    const [snapshots, queued] = await Promise.all([
      this.deps.sessionStore.loadAll(),
      this.deps.downlinkStore.loadAll(),
    ]);
    let messages = 0;
    for (const snapshot of snapshots) {
      // Written by an older version that let a client id the broker refuses through: forget it.
      const problem = clientIdProblem(snapshot.clientId, 0xffff);
      if (problem) {
        this.dropRestored({ clientId: snapshot.clientId, problem }, 'persisted session');
        this.deps.sessionStore.delete(snapshot.clientId);
        continue;
      }
      const session = this.restoreSession(snapshot);
      this.delivery.restoreQueue(session, queued.get(snapshot.clientId) ?? []);
      messages += session.outgoing.length;
      queued.delete(snapshot.clientId);
    }
    for (const [clientId, orphaned] of queued) this.deps.downlinkStore.deleteAll(clientId, orphaned);
    for (const filter of this.subscriptions.filters()) this.deps.broker.subscribe(filter);
    if (snapshots.length > 0)
      this.log.info({ sessions: snapshots.length, queuedMessages: messages }, 'persistent sessions restored');
  }

  private restoreSession(snapshot: SessionSnapshot): Session {
    // No address until the device speaks again; the placeholder is never sent to.
    const peer: Peer = {
      socket: this.sockets[0]!,
      // Where it last spoke from: only for the per-address bound, never sent to while unbound.
      address: snapshot.address ?? '',
      port: 0,
      key: `restored|${snapshot.clientId}`,
    };
    const session = this.sessions.create(snapshot.clientId, peer);
    this.sessions.unbind(session);
    session.cleanSession = false;
    session.idle = snapshot.idle === true;
    session.keepAliveMs = snapshot.keepAliveMs;
    session.sleepMs = snapshot.sleepMs;
    let dropped = false;
    // What an older version stored without the broker's string rules must not go back to the broker:
    // a refused filter would drop the uplink on every re-subscribe, a refused will topic on publish.
    if (snapshot.will) {
      const problem = brokerTopicProblem(snapshot.will.topic);
      if (problem) {
        this.dropRestored({ clientId: snapshot.clientId, problem }, 'persisted will');
        dropped = true;
      } else session.will = { ...snapshot.will, payload: Buffer.from(snapshot.will.payload, 'base64') };
    }
    for (const sub of snapshot.subscriptions ?? []) {
      const problem = brokerFilterProblem(sub.filter);
      if (problem) {
        this.dropRestored({ clientId: snapshot.clientId, problem }, 'persisted subscription');
        // Stored one key each: forget this one (the rest of the session is saved again below).
        this.deps.sessionStore.deleteSubscription(snapshot.clientId, sub.filter);
        dropped = true;
        continue;
      }
      // Retained messages re-sent on re-subscribe were delivered before the restart.
      this.subscriptions.add(session, { ...sub, retainedSeen: null });
    }
    // After the adds: they are on disk already and need no second write.
    session.persisted = true;
    this.setState(session, snapshot.asleep ? 'asleep' : 'disconnected');
    if (dropped) this.persist(session);
    return session;
  }

  private dropRestored(context: Record<string, unknown>, what: string): void {
    this.stats.restoreDropped++;
    this.warn.warn(`restore-invalid|${what}`, context, `${what} invalid for the broker: dropped at restore`);
  }

  private startAdvertising(): void {
    const advertise = this.config.advertise;
    if (!advertise) return;
    const socket = this.sockets.find((s) => (s.address().family === 'IPv6') === isIPv6(advertise.host));
    if (!socket) {
      this.log.warn(advertise, 'no UDP socket of the advertise address family: ADVERTISE disabled');
      return;
    }
    socket.setBroadcast(true);
    const send = (): void => {
      const bytes = encode({
        type: 'ADVERTISE',
        gwId: this.config.gatewayId,
        duration: advertise.intervalSeconds,
      });
      socket.send(bytes, advertise.port, advertise.host, this.onSent);
    };
    send();
    this.advertiseTimer = setInterval(send, advertise.intervalSeconds * 1000).unref();
  }
}
