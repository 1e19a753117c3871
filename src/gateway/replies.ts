import { ReturnCode, type ReturnCodeValue } from '../codec/constants.js';
import type { HandlerEnv } from './handlers/env.js';
import type { Peer } from './peer.js';

/** Small reply builders shared by handlers, so every refusal carries the spec's return code. */

export type ReplyEnv = Pick<HandlerEnv, 'send' | 'stats' | 'warn'>;

export function sendConnack(ctx: ReplyEnv, peer: Peer, returnCode: ReturnCodeValue): void {
  countRefusal(ctx, returnCode);
  ctx.send(peer, { type: 'CONNACK', returnCode });
}

export function sendPuback(
  ctx: ReplyEnv,
  peer: Peer,
  topicId: number,
  msgId: number,
  returnCode: ReturnCodeValue,
): void {
  countRefusal(ctx, returnCode);
  ctx.send(peer, { type: 'PUBACK', topicId, msgId, returnCode });
}

export function sendRegack(
  ctx: ReplyEnv,
  peer: Peer,
  topicId: number,
  msgId: number,
  returnCode: ReturnCodeValue,
): void {
  countRefusal(ctx, returnCode);
  ctx.send(peer, { type: 'REGACK', topicId, msgId, returnCode });
}

/**
 * A packet that needs a session came from an address without one (gateway restarted, session lost,
 * NAT rebinding): DISCONNECT tells the client to connect again. Never larger than the request.
 */
export function sendNotConnected(ctx: ReplyEnv, peer: Peer, what: string): void {
  ctx.stats.unexpected++;
  ctx.warn.warn(
    'not-connected',
    { address: peer.address, port: peer.port, type: what },
    `${what} from a client without a session: answered DISCONNECT`,
  );
  ctx.send(peer, { type: 'DISCONNECT' });
}

function countRefusal(ctx: ReplyEnv, returnCode: ReturnCodeValue): void {
  if (returnCode === ReturnCode.CONGESTION) ctx.stats.rejectedCongestion++;
  else if (returnCode === ReturnCode.INVALID_TOPIC_ID) ctx.stats.rejectedInvalidTopic++;
  else if (returnCode === ReturnCode.NOT_SUPPORTED) ctx.stats.rejectedNotSupported++;
}
