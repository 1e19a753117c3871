import { ReturnCode } from '../../codec/constants.js';
import type { RegisterPacket } from '../../codec/types.js';
import { describePeer, type Peer } from '../peer.js';
import { sendRegack } from '../replies.js';
import type { Session } from '../session.js';
import { deviceTopicProblem } from '../topic-names.js';
import type { HandlerEnv } from './env.js';

/** REGISTER (§6.5): a topic id for a name, in the client's own table. Registering again returns the same id. */
export function handleRegister(
  env: Pick<HandlerEnv, 'send' | 'stats' | 'warn' | 'settings'>,
  peer: Peer,
  session: Session,
  packet: RegisterPacket,
): void {
  // The name becomes prefix + name at the broker: that must be acceptable too (length, client id).
  const problem = deviceTopicProblem(session.prefix, packet.topicName);
  if (problem) {
    env.warn.warn(
      'register-topic',
      { clientId: session.clientId, address: describePeer(peer), topicName: packet.topicName, problem },
      'REGISTER refused: invalid topic name',
    );
    sendRegack(env, peer, 0, packet.msgId, ReturnCode.NOT_SUPPORTED);
    return;
  }
  const topicId = session.topics.register(packet.topicName);
  if (topicId === undefined) {
    env.warn.warn(
      'topics-full',
      { clientId: session.clientId, maxTopics: env.settings.current.limits.maxTopicsPerClient },
      'REGISTER refused: topic limit per client reached',
    );
    sendRegack(env, peer, 0, packet.msgId, ReturnCode.CONGESTION);
    return;
  }
  env.send(peer, { type: 'REGACK', topicId, msgId: packet.msgId, returnCode: ReturnCode.ACCEPTED });
}
