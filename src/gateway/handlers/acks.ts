import type { MsgIdPacket, TopicAckPacket } from '../../codec/types.js';
import type { Peer } from '../peer.js';
import type { Session } from '../session.js';
import type { HandlerEnv } from './env.js';

/**
 * The device's answers to what the gateway sent: REGACK to our REGISTER, PUBACK / PUBREC / PUBCOMP to
 * our PUBLISH and PUBREL. Each moves the session's one exchange in flight along; a stale or unknown
 * answer (a retransmission crossing ours) is counted and ignored. The dispatcher gives them a session.
 */
type Env = Pick<HandlerEnv, 'delivery' | 'stats' | 'send'>;

export function handleRegack(env: Env, _peer: Peer, session: Session, packet: TopicAckPacket): void {
  if (!env.delivery.onRegack(session, packet)) env.stats.unexpected++;
}

export function handlePuback(env: Env, _peer: Peer, session: Session, packet: TopicAckPacket): void {
  if (!env.delivery.onPuback(session, packet)) env.stats.unexpected++;
}

export function handlePubrec(env: Env, peer: Peer, session: Session, packet: MsgIdPacket): void {
  if (env.delivery.onPubrec(session, packet)) return;
  env.stats.unexpected++;
  // Our PUBCOMP-awaited exchange is over but the device repeats PUBREC: PUBREL again keeps it moving.
  env.send(peer, { type: 'PUBREL', msgId: packet.msgId });
}

export function handlePubcomp(env: Env, _peer: Peer, session: Session, packet: MsgIdPacket): void {
  if (!env.delivery.onPubcomp(session, packet)) env.stats.unexpected++;
}
