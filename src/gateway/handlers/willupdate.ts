import { ReturnCode } from '../../codec/constants.js';
import type { WillMsgPacket, WillTopicPacket } from '../../codec/types.js';
import { describePeer, type Peer } from '../peer.js';
import type { Session } from '../session.js';
import { deviceTopicProblem } from '../topic-names.js';
import type { HandlerEnv } from './env.js';

type Env = Pick<HandlerEnv, 'send' | 'warn' | 'persistence'>;

/**
 * WILLTOPICUPD (§6.4): replaces the will topic (and its QoS / retain), keeping the message; an empty
 * one deletes the will. The gateway holds wills itself (an aggregating gateway), so no broker
 * reconnect is needed, unlike a transparent gateway.
 */
export function handleWillTopicUpd(env: Env, peer: Peer, session: Session, packet: WillTopicPacket): void {
  if (packet.willTopic === undefined) {
    session.will = undefined;
  } else {
    const problem = deviceTopicProblem(session.prefix, packet.willTopic);
    if (problem) {
      env.warn.warn(
        'will-topic-update',
        { clientId: session.clientId, address: describePeer(peer), willTopic: packet.willTopic, problem },
        'WILLTOPICUPD refused: invalid will topic',
      );
      env.send(peer, { type: 'WILLTOPICRESP', returnCode: ReturnCode.NOT_SUPPORTED });
      return;
    }
    session.will = {
      topic: session.prefix + packet.willTopic,
      qos: packet.qos,
      retain: packet.retain,
      payload: session.will?.payload ?? new Uint8Array(),
    };
  }
  env.persistence.persist(session);
  env.send(peer, { type: 'WILLTOPICRESP', returnCode: ReturnCode.ACCEPTED });
}

/** WILLMSGUPD (§6.4): replaces the will message. Without a will topic there is nothing to update. */
export function handleWillMsgUpd(env: Env, peer: Peer, session: Session, packet: WillMsgPacket): void {
  if (!session.will) {
    env.send(peer, { type: 'WILLMSGRESP', returnCode: ReturnCode.NOT_SUPPORTED });
    return;
  }
  session.will = { ...session.will, payload: packet.willMsg.slice() };
  env.persistence.persist(session);
  env.send(peer, { type: 'WILLMSGRESP', returnCode: ReturnCode.ACCEPTED });
}
