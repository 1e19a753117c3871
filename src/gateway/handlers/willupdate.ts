import { ReturnCode } from '../../codec/constants.js';
import type { WillMsgPacket, WillTopicPacket } from '../../codec/types.js';
import { brokerTopicProblem, topicNameProblem } from '../../topics/names.js';
import type { GatewayContext } from '../context.js';
import { describePeer, type Peer } from '../peer.js';
import { sendNotConnected } from '../replies.js';
import type { Session } from '../session.js';

/**
 * WILLTOPICUPD (§6.4): replaces the will topic (and its QoS / retain), keeping the message; an empty
 * one deletes the will. The gateway holds wills itself (an aggregating gateway), so no broker
 * reconnect is needed, unlike a transparent gateway.
 */
export function handleWillTopicUpd(
  ctx: GatewayContext,
  peer: Peer,
  session: Session | undefined,
  packet: WillTopicPacket,
): void {
  if (!session?.isConnected) {
    sendNotConnected(ctx, peer, 'WILLTOPICUPD');
    return;
  }
  if (packet.willTopic === undefined) {
    session.will = undefined;
  } else {
    const problem =
      topicNameProblem(packet.willTopic) ?? brokerTopicProblem(session.prefix + packet.willTopic);
    if (problem) {
      ctx.warn.warn(
        'will-topic-update',
        { clientId: session.clientId, address: describePeer(peer), willTopic: packet.willTopic, problem },
        'WILLTOPICUPD refused: invalid will topic',
      );
      ctx.send(peer, { type: 'WILLTOPICRESP', returnCode: ReturnCode.NOT_SUPPORTED });
      return;
    }
    session.will = {
      topic: session.prefix + packet.willTopic,
      qos: packet.qos,
      retain: packet.retain,
      payload: session.will?.payload ?? new Uint8Array(),
    };
  }
  ctx.persist(session);
  ctx.send(peer, { type: 'WILLTOPICRESP', returnCode: ReturnCode.ACCEPTED });
}

/** WILLMSGUPD (§6.4): replaces the will message. Without a will topic there is nothing to update. */
export function handleWillMsgUpd(
  ctx: GatewayContext,
  peer: Peer,
  session: Session | undefined,
  packet: WillMsgPacket,
): void {
  if (!session?.isConnected) {
    sendNotConnected(ctx, peer, 'WILLMSGUPD');
    return;
  }
  if (!session.will) {
    ctx.send(peer, { type: 'WILLMSGRESP', returnCode: ReturnCode.NOT_SUPPORTED });
    return;
  }
  session.will = { ...session.will, payload: packet.willMsg.slice() };
  ctx.persist(session);
  ctx.send(peer, { type: 'WILLMSGRESP', returnCode: ReturnCode.ACCEPTED });
}
