import type { MsgIdPacket } from '../../codec/types.js';
import type { Peer } from '../peer.js';
import type { Session } from '../session.js';
import type { HandlerEnv } from './env.js';

/**
 * PUBREL ends the device's QoS 2 exchange: the message was stored before PUBREC, so all that is left
 * is to forget the id and answer PUBCOMP — also for an id already forgotten (our PUBCOMP was lost).
 */
export function handlePubrel(
  env: Pick<HandlerEnv, 'send'>,
  peer: Peer,
  session: Session,
  packet: MsgIdPacket,
): void {
  // PUBREL before our PUBREC was even sent: the message is not on disk yet; the client will repeat.
  if (session.qos2Received.get(packet.msgId) === false) return;
  session.qos2Received.delete(packet.msgId);
  env.send(peer, { type: 'PUBCOMP', msgId: packet.msgId });
}
