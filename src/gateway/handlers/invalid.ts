import { MsgType, ReturnCode } from '../../codec/constants.js';
import { describePeer, type Peer } from '../peer.js';
import { sendNotConnected, sendPuback, sendRegack } from '../replies.js';
import type { Session } from '../session.js';
import type { HandlerEnv } from './env.js';
import { refuseConnect } from './willtopic.js';

/**
 * Decode failures of a well-framed message whose content is invalid (a topic name that is not UTF-8,
 * an empty name, reserved flag bits): the client is waiting for an answer with a message id, and
 * silence would make it retry until it gives the gateway up. These reasons leave the header and the
 * message id readable; framing errors (length mismatch, truncation) are dropped without an answer.
 */
const ANSWERABLE_REASONS = new Set([
  'invalid utf-8',
  'empty topic name',
  'reserved flag bits set',
  'reserved topic id type',
  'invalid qos',
]);

/**
 * Answers an undecodable datagram (sent directly, not through a forwarder) with the refusal the spec
 * gives its message type, when the reason is one of ANSWERABLE_REASONS. Returns whether it answered.
 */
export function answerUndecodable(
  ctx: Pick<HandlerEnv, 'send' | 'stats' | 'warn' | 'lifecycle'>,
  peer: Peer,
  session: Session | undefined,
  datagram: Uint8Array,
  reason: string,
): boolean {
  if (!ANSWERABLE_REASONS.has(reason) || datagram.length < 2) return false;
  const long = datagram[0] === 0x01;
  const type = datagram[long ? 3 : 1];
  const body = datagram.subarray(long ? 4 : 2);
  const u16 = (i: number): number | undefined =>
    i + 1 < body.length ? (body[i]! << 8) | body[i + 1]! : undefined;
  const context = { clientId: session?.clientId, address: describePeer(peer), reason };
  switch (type) {
    case MsgType.REGISTER: {
      const msgId = u16(2);
      if (msgId === undefined) return false;
      if (!session?.isConnected) sendNotConnected(ctx, peer, 'REGISTER');
      else {
        ctx.warn.warn('register-topic', context, 'REGISTER refused: invalid topic name');
        sendRegack(ctx, peer, 0, msgId, ReturnCode.NOT_SUPPORTED);
      }
      return true;
    }
    case MsgType.SUBSCRIBE: {
      const msgId = u16(1);
      if (msgId === undefined) return false;
      if (!session?.isConnected) sendNotConnected(ctx, peer, 'SUBSCRIBE');
      else {
        ctx.warn.warn('subscribe-refused', context, 'SUBSCRIBE refused');
        ctx.stats.rejectedNotSupported++;
        ctx.send(peer, { type: 'SUBACK', qos: 0, topicId: 0, msgId, returnCode: ReturnCode.NOT_SUPPORTED });
      }
      return true;
    }
    case MsgType.UNSUBSCRIBE: {
      // Always answered (§6.10): the device held no such filter.
      const msgId = u16(1);
      if (msgId === undefined) return false;
      if (!session?.isConnected) sendNotConnected(ctx, peer, 'UNSUBSCRIBE');
      else ctx.send(peer, { type: 'UNSUBACK', msgId });
      return true;
    }
    case MsgType.PUBLISH: {
      // Only QoS 1 and 2 expect an answer; QoS 0 and −1 are dropped (counted as malformed).
      const qosBits = ((body[0] ?? 0) >> 5) & 3;
      const topicId = u16(1);
      const msgId = u16(3);
      if ((qosBits !== 1 && qosBits !== 2) || topicId === undefined || msgId === undefined) return false;
      if (!session?.isConnected) sendNotConnected(ctx, peer, 'PUBLISH');
      else sendPuback(ctx, peer, topicId, msgId, ReturnCode.NOT_SUPPORTED);
      return true;
    }
    case MsgType.WILLTOPIC: {
      if (!session || (session.willFlow !== 'topic' && session.willFlow !== 'message')) return false;
      ctx.warn.warn('will-topic', context, 'CONNECT refused: invalid will topic');
      refuseConnect(ctx, peer, session);
      return true;
    }
    case MsgType.WILLTOPICUPD: {
      if (!session?.isConnected) sendNotConnected(ctx, peer, 'WILLTOPICUPD');
      else {
        ctx.warn.warn('will-topic-update', context, 'WILLTOPICUPD refused: invalid will topic');
        ctx.stats.rejectedNotSupported++;
        ctx.send(peer, { type: 'WILLTOPICRESP', returnCode: ReturnCode.NOT_SUPPORTED });
      }
      return true;
    }
    default:
      return false;
  }
}
