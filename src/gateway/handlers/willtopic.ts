import { ReturnCode } from '../../codec/constants.js';
import type { WillTopicPacket } from '../../codec/types.js';
import { describePeer, type Peer } from '../peer.js';
import { sendConnack } from '../replies.js';
import type { Session } from '../session.js';
import { deviceTopicProblem } from '../topic-names.js';
import type { HandlerEnv } from './env.js';

type Env = Pick<HandlerEnv, 'send' | 'stats' | 'warn' | 'lifecycle'>;

/** WILLTOPIC during the CONNECT will flow (§6.3). An empty WILLTOPIC means "no will". */
export function handleWillTopic(env: Env, peer: Peer, session: Session, packet: WillTopicPacket): void {
  // A repeated WILLTOPIC (our WILLMSGREQ was lost) is answered again.
  if (session.willFlow !== 'topic' && session.willFlow !== 'message') {
    env.stats.unexpected++;
    return;
  }
  if (packet.willTopic === undefined) {
    env.lifecycle.connected(session, null);
    return;
  }
  const problem = deviceTopicProblem(session.prefix, packet.willTopic);
  if (problem) {
    env.warn.warn(
      'will-topic',
      { clientId: session.clientId, address: describePeer(peer), willTopic: packet.willTopic, problem },
      'CONNECT refused: invalid will topic',
    );
    refuseConnect(env, peer, session);
    return;
  }
  session.pendingWillTopic = {
    topic: session.prefix + packet.willTopic,
    qos: packet.qos,
    retain: packet.retain,
  };
  session.willFlow = 'message';
  env.send(peer, { type: 'WILLMSGREQ' });
}

export function refuseConnect(env: Env, peer: Peer, session: Session): void {
  env.lifecycle.refuseConnect(session);
  sendConnack(env, peer, ReturnCode.NOT_SUPPORTED);
}
