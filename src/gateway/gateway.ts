import dgram, { type RemoteInfo, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import type { Logger } from 'pino';
import { MsgType, ReturnCode } from '../codec/constants.js';
import { decode, encode, MqttSnCodecError } from '../codec/index.js';
import type { CodecOptions, Packet } from '../codec/types.js';
import { RateLimitedWarn } from '../observe/rate-limit.js';
import type { Namespace } from '../topics/namespace.js';
import type { PredefinedTopics } from '../topics/predefined.js';
import { systemClock, type Clock } from './clock.js';
import type { GatewayContext, GatewayOptions, MessageSink } from './context.js';
import { handleConnect } from './handlers/connect.js';
import { handleDisconnect } from './handlers/disconnect.js';
import { handlePingreq } from './handlers/pingreq.js';
import { handlePublish } from './handlers/publish.js';
import { handlePubrel } from './handlers/pubrel.js';
import { handleRegister } from './handlers/register.js';
import { handleSearchGw } from './handlers/searchgw.js';
import { handleWillMsg } from './handlers/willmsg.js';
import { handleWillTopic } from './handlers/willtopic.js';
import { describePeer, peerKey, type Peer } from './peer.js';
import { Sessions } from './registry.js';
import { Session, type SessionState } from './session.js';
import { GatewayStats } from './stats.js';
import { TimerWheel } from './wheel.js';

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

/** How long a client may take over the CONNECT will flow before it is dropped. */
const WILL_FLOW_TIMEOUT_MS = 60_000;

/**
 * The MQTT-SN side: UDP sockets, decoding, sessions, supervision and dispatch to one handler per
 * message type. Knows nothing of the broker: device messages go to the MessageSink.
 */
export class Gateway {
  readonly stats = new GatewayStats();
  readonly sessions: Sessions;
  private readonly sockets: Socket[] = [];
  private readonly wheel: TimerWheel;
  private readonly ctx: GatewayContext;
  private readonly decodeOptions: CodecOptions;
  private readonly warn: RateLimitedWarn;
  private tickTimer: NodeJS.Timeout | undefined;
  private advertiseTimer: NodeJS.Timeout | undefined;
  private accepting = false;
  private socketsOpen = false;

  constructor(
    private readonly config: GatewayConfig,
    sink: MessageSink,
    private readonly log: Logger,
    private readonly clock: Clock = systemClock,
  ) {
    this.wheel = new TimerWheel(clock.now());
    this.warn = new RateLimitedWarn(log, 10_000, () => clock.now());
    // Decode client ids with the widest bound so an over-long one gets CONNACK "not supported", not silence.
    this.decodeOptions = { maxClientIdLength: 0xffff };
    this.sessions = new Sessions(
      log,
      this.wheel,
      (clientId) => config.namespace.prefixFor(clientId),
      config.limits.maxTopicsPerClient,
      (session) => this.onSupervisionExpired(session),
    );
    this.ctx = {
      options: config,
      clock,
      log,
      warn: this.warn,
      namespace: config.namespace,
      predefined: config.predefined,
      sink,
      stats: this.stats,
      sessions: this.sessions,
      send: (peer, packet) => this.send(peer, packet),
      setState: (session, state) => this.setState(session, state),
      lose: (session, reason) => this.lose(session, reason),
    };
  }

  /** Binds every listen address; resolves once datagrams are accepted. */
  async start(): Promise<void> {
    for (const { host, port } of this.config.listen) {
      const socket = dgram.createSocket({ type: isIPv6(host) ? 'udp6' : 'udp4', ipv6Only: isIPv6(host) });
      socket.on('message', (buf, rinfo) => this.onDatagram(socket, buf, rinfo));
      socket.on('error', (err) => this.log.error({ err }, 'UDP socket error'));
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.bind(port, host, () => {
          socket.off('error', reject);
          resolve();
        });
      }).catch((err: NodeJS.ErrnoException) => {
        throw new Error(`cannot listen on UDP ${host}:${port}: ${err.code ?? err.message}`, { cause: err });
      });
      try {
        // Absorb bursts from many sensors at once; the kernel may cap it (net.core.rmem_max).
        socket.setRecvBufferSize(4 * 1024 * 1024);
      } catch {
        // keep the default
      }
      this.sockets.push(socket);
    }
    this.socketsOpen = true;
    this.accepting = true;
    this.tickTimer = setInterval(() => this.wheel.tick(this.clock.now()), 250).unref();
    this.startAdvertising();
    for (const address of this.addresses()) this.log.info(address, 'listening for MQTT-SN over UDP');
  }

  /** The bound UDP addresses (useful with port 0). */
  addresses(): Array<{ address: string; port: number; family: string }> {
    return this.sockets.map((socket) => socket.address());
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

  async close(): Promise<void> {
    this.stopAccepting();
    this.socketsOpen = false;
    await Promise.all(this.sockets.map((socket) => new Promise<void>((resolve) => socket.close(() => resolve()))));
    this.sockets.length = 0;
  }

  private onDatagram(socket: Socket, buf: Buffer, rinfo: RemoteInfo): void {
    if (!this.accepting) return;
    this.stats.datagramsIn++;
    let packet: Packet;
    try {
      packet = decode(buf, this.decodeOptions);
    } catch (err) {
      this.onUndecodable(socket, rinfo, err);
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
    if (buf.length > this.config.limits.maxPacketSize && packet.type !== 'PUBLISH') {
      this.stats.oversized++;
      this.warn.warn('oversized', { address: describePeer(peer), size: buf.length, type: packet.type }, 'datagram larger than the packet size limit dropped');
      return;
    }
    try {
      this.dispatch(peer, session, packet, buf.length);
    } catch (err) {
      // A bug in one handler must not take the gateway (and every other sensor) down.
      this.stats.handlerErrors++;
      this.log.error({ err, address: describePeer(peer), type: packet.type }, 'handler failed; packet dropped');
    }
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
      default:
        // Gateway-to-client messages, other gateways' ADVERTISE/GWINFO, and what a later version handles.
        this.stats.unexpected++;
        this.log.debug({ address: describePeer(peer), type: packet.type }, 'packet ignored');
    }
  }

  private onUndecodable(socket: Socket, rinfo: RemoteInfo, err: unknown): void {
    this.stats.malformed++;
    const reason = err instanceof MqttSnCodecError ? err.reason : String(err);
    this.warn.warn(`malformed|${reason}`, { address: rinfo.address, port: rinfo.port, reason }, 'malformed datagram dropped');
    // An undecodable CONNECT (empty client id, an MQTT-SN 2.0 layout) still deserves its refusal.
    if (err instanceof MqttSnCodecError && err.msgType === MsgType.CONNECT) {
      const key = peerKey(rinfo.address, rinfo.port);
      this.stats.rejectedNotSupported++;
      this.send({ socket, address: rinfo.address, port: rinfo.port, key }, { type: 'CONNACK', returnCode: ReturnCode.NOT_SUPPORTED });
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
    const bytes = peer.wirelessNodeId
      ? encode({ type: 'ENCAPSULATED', radius: 0, wirelessNodeId: peer.wirelessNodeId, packet: packet as Exclude<Packet, { type: 'ENCAPSULATED' }> })
      : encode(packet);
    this.stats.datagramsOut++;
    peer.socket.send(bytes, peer.port, peer.address, this.onSent);
  }

  private readonly onSent = (err: Error | null): void => {
    if (!err) return;
    this.stats.sendErrors++;
    this.warn.warn('send-error', { err }, 'sending a datagram failed');
  };

  private setState(session: Session, state: SessionState): void {
    session.state = state;
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
      default:
        entry.deadline = Infinity;
    }
    this.wheel.schedule(entry);
  }

  private onSupervisionExpired(session: Session): void {
    const reason = session.state === 'asleep' ? 'did not wake within its sleep duration' : 'keep-alive expired';
    this.lose(session, reason);
  }

  private lose(session: Session, reason: string): void {
    this.stats.sessionsLost++;
    session.log.warn({ reason, will: session.will !== undefined }, 'client lost');
    this.setState(session, 'lost');
    this.sessions.unbind(session);
    const will = session.will;
    if (will) {
      // Published once, like MQTT: the will is used up.
      session.will = undefined;
      this.stats.willsPublished++;
      const outcome = this.ctx.sink.append({ clientId: session.clientId, topic: will.topic, payload: will.payload, retain: will.retain, qos: will.qos });
      if (outcome !== 'queued') session.log.warn({ outcome }, 'will could not be queued');
    }
    if (session.cleanSession) this.sessions.remove(session);
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
      const bytes = encode({ type: 'ADVERTISE', gwId: this.config.gatewayId, duration: advertise.intervalSeconds });
      socket.send(bytes, advertise.port, advertise.host, this.onSent);
    };
    send();
    this.advertiseTimer = setInterval(send, advertise.intervalSeconds * 1000).unref();
  }
}
