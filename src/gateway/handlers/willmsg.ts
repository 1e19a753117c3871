import { ReturnCode } from '../../codec/constants.js';
import type { WillMsgPacket } from '../../codec/types.js';
import type { Peer } from '../peer.js';
import type { Session } from '../session.js';
import type { HandlerEnv } from './env.js';

/** WILLMSG completes the will flow and the CONNECT (§6.3). */
export function handleWillMsg(
  env: Pick<HandlerEnv, 'send' | 'stats' | 'lifecycle'>,
  peer: Peer,
  session: Session,
  packet: WillMsgPacket,
): void {
  if (session.state === 'active' && session.will && session.willFlow === 'none') {
    // Our CONNACK was lost and the client repeats WILLMSG: answer again, change nothing.
    env.send(peer, { type: 'CONNACK', returnCode: ReturnCode.ACCEPTED });
    return;
  }
  if (session.willFlow !== 'message' || !session.pendingWillTopic) {
    env.stats.unexpected++;
    return;
  }
  // Copy: the datagram buffer is not ours to keep for the lifetime of a session.
  env.lifecycle.connected(session, { ...session.pendingWillTopic, payload: packet.willMsg.slice() });
}
