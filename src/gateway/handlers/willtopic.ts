import { ReturnCode } from '../../codec/constants.js';
import type { WillTopicPacket } from '../../codec/types.js';
import { brokerTopicProblem, topicNameProblem } from '../../topics/names.js';
import type { GatewayContext } from '../context.js';
import { describePeer, type Peer } from '../peer.js';
import { sendConnack } from '../replies.js';
import type { Session } from '../session.js';
import { completeConnect } from './connect.js';

/** WILLTOPIC during the CONNECT will flow (§6.3). An empty WILLTOPIC means "no will". */
export function handleWillTopic(
  ctx: GatewayContext,
  peer: Peer,
  session: Session | undefined,
  packet: WillTopicPacket,
): void {
  // A repeated WILLTOPIC (our WILLMSGREQ was lost) is answered again.
  if (!session || (session.willFlow !== 'topic' && session.willFlow !== 'message')) {
    ctx.stats.unexpected++;
    return;
  }
  if (packet.willTopic === undefined) {
    session.will = undefined;
    completeConnect(ctx, session);
    return;
  }
  const problem = topicNameProblem(packet.willTopic) ?? brokerTopicProblem(session.prefix + packet.willTopic);
  if (problem) {
    ctx.warn.warn(
      'will-topic',
      { clientId: session.clientId, address: describePeer(peer), willTopic: packet.willTopic, problem },
      'CONNECT refused: invalid will topic',
    );
    refuseConnect(ctx, peer, session);
    return;
  }
  session.pendingWillTopic = {
    topic: session.prefix + packet.willTopic,
    qos: packet.qos,
    retain: packet.retain,
  };
  session.willFlow = 'message';
  ctx.send(peer, { type: 'WILLMSGREQ' });
}

export function refuseConnect(ctx: GatewayContext, peer: Peer, session: Session): void {
  session.willFlow = 'none';
  session.pendingWillTopic = undefined;
  ctx.setState(session, 'disconnected');
  ctx.sessions.unbind(session);
  if (session.cleanSession) ctx.sessions.remove(session);
  sendConnack(ctx, peer, ReturnCode.NOT_SUPPORTED);
}
