import type { MsgIdPacket, TopicAckPacket } from '../../codec/types.js';
import type { GatewayContext } from '../context.js';
import type { Peer } from '../peer.js';
import type { Session } from '../session.js';

/**
 * The device's answers to what the gateway sent: REGACK to our REGISTER, PUBACK / PUBREC / PUBCOMP to
 * our PUBLISH and PUBREL. Each moves the session's one exchange in flight along; a stale or unknown
 * answer (a retransmission crossing ours) is counted and ignored.
 */
export function handleRegack(
  ctx: GatewayContext,
  _peer: Peer,
  session: Session | undefined,
  packet: TopicAckPacket,
): void {
  if (!session || !ctx.delivery.onRegack(session, packet)) ctx.stats.unexpected++;
}

export function handlePuback(
  ctx: GatewayContext,
  _peer: Peer,
  session: Session | undefined,
  packet: TopicAckPacket,
): void {
  if (!session || !ctx.delivery.onPuback(session, packet)) ctx.stats.unexpected++;
}

export function handlePubrec(
  ctx: GatewayContext,
  peer: Peer,
  session: Session | undefined,
  packet: MsgIdPacket,
): void {
  if (session && ctx.delivery.onPubrec(session, packet)) return;
  ctx.stats.unexpected++;
  // Our PUBCOMP-awaited exchange is over but the device repeats PUBREC: PUBREL again keeps it moving.
  if (session) ctx.send(peer, { type: 'PUBREL', msgId: packet.msgId });
}

export function handlePubcomp(
  ctx: GatewayContext,
  _peer: Peer,
  session: Session | undefined,
  packet: MsgIdPacket,
): void {
  if (!session || !ctx.delivery.onPubcomp(session, packet)) ctx.stats.unexpected++;
}
