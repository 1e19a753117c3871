import { ReturnCode } from '../../codec/constants.js';
import type { RegisterPacket } from '../../codec/types.js';
import { brokerTopicProblem, topicNameProblem } from '../../topics/names.js';
import type { GatewayContext } from '../context.js';
import { describePeer, type Peer } from '../peer.js';
import { sendNotConnected, sendRegack } from '../replies.js';
import type { Session } from '../session.js';

/** REGISTER (§6.5): a topic id for a name, in the client's own table. Registering again returns the same id. */
export function handleRegister(
  ctx: GatewayContext,
  peer: Peer,
  session: Session | undefined,
  packet: RegisterPacket,
): void {
  if (!session?.isConnected) {
    sendNotConnected(ctx, peer, 'REGISTER');
    return;
  }
  // The name becomes prefix + name at the broker: that must be acceptable too (length, client id).
  const problem = topicNameProblem(packet.topicName) ?? brokerTopicProblem(session.prefix + packet.topicName);
  if (problem) {
    ctx.warn.warn(
      'register-topic',
      { clientId: session.clientId, address: describePeer(peer), topicName: packet.topicName, problem },
      'REGISTER refused: invalid topic name',
    );
    sendRegack(ctx, peer, 0, packet.msgId, ReturnCode.NOT_SUPPORTED);
    return;
  }
  const topicId = session.topics.register(packet.topicName);
  if (topicId === undefined) {
    ctx.warn.warn(
      'topics-full',
      { clientId: session.clientId, maxTopics: ctx.options.limits.maxTopicsPerClient },
      'REGISTER refused: topic limit per client reached',
    );
    sendRegack(ctx, peer, 0, packet.msgId, ReturnCode.CONGESTION);
    return;
  }
  ctx.send(peer, { type: 'REGACK', topicId, msgId: packet.msgId, returnCode: ReturnCode.ACCEPTED });
}
