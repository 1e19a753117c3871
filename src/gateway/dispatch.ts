import type { Logger } from 'pino';
import { MsgType, ReturnCode } from '../codec/constants.js';
import { MqttSnCodecError } from '../codec/index.js';
import type { Packet, PacketOf } from '../codec/types.js';
import type { Boundaries } from './boundary.js';
import type { HandlerEnv } from './handlers/env.js';
import { answerUndecodable } from './handlers/invalid.js';
import { describePeer, type Peer } from './peer.js';
import { sendNotConnected, sendPuback } from './replies.js';
import type { Session } from './session.js';
import type { Inbound } from './transport.js';

/** What a packet needs of its sender before its handler runs. */
export type Need =
  /** Anyone (CONNECT, SEARCHGW, QoS −1 PUBLISH …). */
  | 'none'
  /** A session bound at the sender's address, in any state (PUBREL, the answers to our messages). */
  | 'session'
  /** A connected session (active or awake): what §6 calls "a connected client". */
  | 'connected';

type Handler<T extends Packet['type'], S> = (
  env: HandlerEnv,
  peer: Peer,
  session: S,
  packet: PacketOf<T>,
  length: number,
) => void;

export interface Route<T extends Packet['type']> {
  needs: Need | ((packet: PacketOf<T>) => Need);
  /** Without what it needs: 'disconnect' answers DISCONNECT (the client connects again), 'ignore' counts. */
  otherwise: 'disconnect' | 'ignore';
  handle: Handler<T, Session | undefined>;
  /** Counts the packet on arrival, before any check (device messages received, by QoS). */
  received?(env: HandlerEnv, packet: PacketOf<T>): void;
  /** Over the size limit: its refusal, when the type has one (else it is only dropped and counted). */
  oversized?(env: HandlerEnv, peer: Peer, session: Session | undefined, packet: PacketOf<T>): void;
}

export type RouteTable = { readonly [T in Packet['type']]?: Route<T> };

/** A route for a packet that needs a connected session: its handler is given one. */
export function connected<T extends Packet['type']>(
  handle: Handler<T, Session>,
  extra: Partial<Pick<Route<T>, 'received' | 'oversized'>> = {},
): Route<T> {
  return {
    needs: 'connected',
    otherwise: 'disconnect',
    handle: handle as Handler<T, Session | undefined>,
    ...extra,
  };
}

/** A route for a packet that needs a session at the sender's address, in any state. */
export function withSession<T extends Packet['type']>(
  otherwise: Route<T>['otherwise'],
  handle: Handler<T, Session>,
): Route<T> {
  return { needs: 'session', otherwise, handle: handle as Handler<T, Session | undefined> };
}

/** A route for a packet anyone may send (its handler copes without a session). */
export function anyone<T extends Packet['type']>(handle: Handler<T, Session | undefined>): Route<T> {
  return { needs: 'none', otherwise: 'ignore', handle };
}

/** Packets that show a client doing more than connecting (see Session.idle). */
const USES_A_SESSION = new Set<Packet['type']>(['PUBLISH', 'SUBSCRIBE', 'REGISTER']);

/**
 * Message type → handler, and the one place that checks what the handler needs (seven handlers
 * each checked "not connected" before) and keeps a session alive: any packet from a connected client
 * moves its keep-alive deadline. A handler is then only its packet's work. A handler that throws
 * costs its packet, never the gateway.
 */
export class Dispatcher implements Inbound {
  constructor(
    private readonly env: HandlerEnv,
    private readonly routes: RouteTable,
    private readonly boundaries: Boundaries,
    private readonly log: Logger,
  ) {}

  sessionAt(key: string): Session | undefined {
    return this.env.sessions.byPeer(key);
  }

  sessionFrom(address: string, port: number): Session | undefined {
    return this.env.sessions.atAddress(address, port);
  }

  packet(peer: Peer, session: Session | undefined, packet: Packet, length: number): void {
    const env = this.env;
    if (session) env.lifecycle.heardFrom(session);
    const route = this.routes[packet.type] as Route<Packet['type']> | undefined;
    if (!route) {
      // Gateway-to-client messages, other gateways' ADVERTISE/GWINFO, and what a later version handles.
      env.stats.unexpected++;
      this.log.debug({ address: describePeer(peer), type: packet.type }, 'packet ignored');
      return;
    }
    route.received?.(env, packet as PacketOf<Packet['type']>);
    if (!this.admits(route, session, packet)) {
      if (route.otherwise === 'ignore') env.stats.unexpected++;
      else sendNotConnected(env, peer, packet.type);
      return;
    }
    try {
      route.handle(env, peer, session, packet as PacketOf<Packet['type']>, length);
      if (session?.idle && USES_A_SESSION.has(packet.type) && session.isConnected)
        env.lifecycle.markUsed(session);
    } catch (err) {
      // A bug in one handler must not take the gateway (and every other sensor) down.
      env.stats.handlerErrors++;
      this.boundaries.count('datagram');
      env.warn.warn(
        `handler-failed|${packet.type}`,
        { err, address: describePeer(peer), type: packet.type },
        'handler failed; packet dropped',
      );
    }
  }

  oversized(peer: Peer, session: Session | undefined, packet: Packet): void {
    if (session) this.env.lifecycle.heardFrom(session);
    const route = this.routes[packet.type] as Route<Packet['type']> | undefined;
    route?.received?.(this.env, packet as PacketOf<Packet['type']>);
    if (!route?.oversized || !this.admits(route, session, packet)) return;
    const refuse = route.oversized;
    this.boundaries.guard('datagram', () =>
      refuse(this.env, peer, session, packet as PacketOf<Packet['type']>),
    );
  }

  undecodable(peer: Peer, datagram: Buffer, err: unknown): void {
    this.boundaries.guard('datagram', () => this.refuseUndecodable(peer, datagram, err));
  }

  private admits(route: Route<Packet['type']>, session: Session | undefined, packet: Packet): boolean {
    const needs =
      typeof route.needs === 'function' ? route.needs(packet as PacketOf<Packet['type']>) : route.needs;
    return needs === 'none' || (needs === 'session' ? session !== undefined : session?.isConnected === true);
  }

  private refuseUndecodable(peer: Peer, datagram: Buffer, err: unknown): void {
    const env = this.env;
    env.stats.malformed++;
    const reason = err instanceof MqttSnCodecError ? err.reason : String(err);
    // A well-framed message with invalid content (a name that is not UTF-8) is answered with its refusal.
    if (err instanceof MqttSnCodecError && !err.forwarder && err.msgType !== MsgType.CONNECT) {
      if (answerUndecodable(env, peer, env.sessions.byPeer(peer.key), datagram, reason)) return;
    }
    env.warn.warn(
      // One key per kind: 256 "unknown message type 0xNN" variants are one kind.
      `malformed|${reason.replace(/ 0x[0-9a-f]+$/, '')}`,
      { address: peer.address, port: peer.port, reason },
      'malformed datagram dropped',
    );
    // An undecodable CONNECT (empty client id, an MQTT-SN 2.0 layout) still deserves its refusal.
    if (err instanceof MqttSnCodecError && err.msgType === MsgType.CONNECT) {
      env.stats.rejectedNotSupported++;
      env.send(peer, { type: 'CONNACK', returnCode: ReturnCode.NOT_SUPPORTED });
    }
  }
}

/** The refusal of a PUBLISH over the size limit (QoS 0 and −1 expect no answer). */
export function refuseOversizedPublish(
  env: HandlerEnv,
  peer: Peer,
  _session: Session | undefined,
  packet: PacketOf<'PUBLISH'>,
): void {
  if (packet.qos > 0) sendPuback(env, peer, packet.topicId, packet.msgId, ReturnCode.NOT_SUPPORTED);
}
