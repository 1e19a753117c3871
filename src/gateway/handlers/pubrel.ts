import type { MsgIdPacket } from '../../codec/types.js';
import type { GatewayContext } from '../context.js';
import type { Peer } from '../peer.js';
import { sendNotConnected } from '../replies.js';
import type { Session } from '../session.js';

/**
 * PUBREL ends the device's QoS 2 exchange: the message was stored before PUBREC, so all that is left
 * is to forget the id and answer PUBCOMP — also for an id already forgotten (our PUBCOMP was lost).
 */
export function handlePubrel(
  ctx: GatewayContext,
  peer: Peer,
  session: Session | undefined,
  packet: MsgIdPacket,
): void {
  if (!session) {
    sendNotConnected(ctx, peer, 'PUBREL');
    return;
  }
  // PUBREL before our PUBREC was even sent: the message is not on disk yet; the client will repeat.
  if (session.qos2Received.get(packet.msgId) === false) return;
  session.qos2Received.delete(packet.msgId);
  ctx.send(peer, { type: 'PUBCOMP', msgId: packet.msgId });
}
