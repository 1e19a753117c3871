import { ReturnCode } from '../../codec/constants.js';
import type { WillMsgPacket } from '../../codec/types.js';
import type { GatewayContext } from '../context.js';
import type { Peer } from '../peer.js';
import type { Session } from '../session.js';
import { completeConnect } from './connect.js';

/** WILLMSG completes the will flow and the CONNECT (§6.3). */
export function handleWillMsg(
  ctx: GatewayContext,
  peer: Peer,
  session: Session | undefined,
  packet: WillMsgPacket,
): void {
  if (session && session.state === 'active' && session.will && session.willFlow === 'none') {
    // Our CONNACK was lost and the client repeats WILLMSG: answer again, change nothing.
    ctx.send(peer, { type: 'CONNACK', returnCode: ReturnCode.ACCEPTED });
    return;
  }
  if (!session || session.willFlow !== 'message' || !session.pendingWillTopic) {
    ctx.stats.unexpected++;
    return;
  }
  // Copy: the datagram buffer is not ours to keep for the lifetime of a session.
  session.will = { ...session.pendingWillTopic, payload: packet.willMsg.slice() };
  completeConnect(ctx, session);
}
