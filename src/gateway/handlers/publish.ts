import { ReturnCode, type ReturnCodeValue } from '../../codec/constants.js';
import type { PublishPacket } from '../../codec/types.js';
import { admitWithoutSession } from '../allow-list.js';
import type { PendingCommit } from '../commits.js';
import type { DeviceMessage } from '../options.js';
import { describePeer, type Peer } from '../peer.js';
import { sendPuback } from '../replies.js';
import type { Session } from '../session.js';
import { resolveTopic } from '../topic-names.js';
import type { HandlerEnv } from './env.js';

type Env = Pick<HandlerEnv, 'send' | 'stats' | 'warn' | 'settings' | 'sink' | 'commits' | 'clock'>;

/** What the dispatcher asks of a PUBLISH's sender: QoS −1 needs no session (§6.8), the rest a connected one. */
export function publishNeeds(packet: PublishPacket): 'none' | 'connected' {
  return packet.qos === -1 ? 'none' : 'connected';
}

/** Counted on arrival, whatever becomes of it. */
export function countPublish(env: Pick<HandlerEnv, 'stats'>, packet: PublishPacket): void {
  env.stats.publishIn[packet.qos + 1]!++;
}

/**
 * PUBLISH from a device (§6.6, §6.8). Every message goes to the outbox; QoS 1 is acknowledged
 * (PUBACK) and QoS 2 received (PUBREC) only once the outbox has synced it to disk.
 */
export function handlePublish(
  env: Env,
  peer: Peer,
  session: Session | undefined,
  packet: PublishPacket,
): void {
  if (packet.qos === -1) {
    // With an allow-list, a sender without a session needs an address rule (issue 8 §5).
    if (!session?.isConnected && !admitWithoutSession(env, peer)) return;
    publishWithoutSession(env, peer, session, packet);
    return;
  }
  // The dispatcher let it through: connected.
  const client = session!;
  client.messagesIn++;
  if (isRetransmission(env, client, packet)) return;
  const topic = sessionTopic(env, client, packet);
  if (typeof topic !== 'string') {
    client.log.debug(
      { topicId: packet.topicId, topicIdType: packet.topicIdType, returnCode: topic },
      'PUBLISH refused',
    );
    // The error reply to any PUBLISH, QoS 0 included (§6.3: the client re-REGISTERs).
    sendPuback(env, peer, packet.topicId, packet.msgId, topic);
    return;
  }
  const message: DeviceMessage = {
    clientId: client.clientId,
    topic,
    payload: packet.data,
    retain: packet.retain,
    qos: packet.qos,
  };
  if (packet.qos === 0) {
    countQos0Outcome(env, env.sink.append(message));
    return;
  }
  storeAndAcknowledge(env, client, packet as PublishPacket & { qos: 1 | 2 }, message);
}

function storeAndAcknowledge(
  env: Env,
  session: Session,
  packet: PublishPacket & { qos: 1 | 2 },
  message: DeviceMessage,
): void {
  const { msgId, topicId, qos } = packet;
  if (qos === 1) session.lastQos1 = { msgId, topicId, committed: false };
  else session.qos2Received.set(msgId, false);
  // A pooled slot, not a closure: its callback acknowledges once the outbox has synced (committed()).
  const commit = env.commits.take(session, qos, msgId, topicId, env.clock.now());
  const outcome = env.sink.append(message, commit.callback);
  if (outcome === 'queued') return;
  env.commits.release(commit);
  forget(session, qos, msgId);
  if (outcome === 'too-large') {
    env.warn.warn(
      'publish-too-large',
      { clientId: session.clientId },
      'PUBLISH larger than the broker takes: answered with PUBACK "not supported"',
    );
    // Permanent: "congestion" would have the device send the same message again and again.
    sendPuback(env, session.peer, topicId, msgId, ReturnCode.NOT_SUPPORTED);
    return;
  }
  env.warn.warn(
    'outbox-full-reject',
    { clientId: session.clientId },
    'outbox full: PUBLISH answered with PUBACK "congestion"',
  );
  // No negative PUBREC exists: PUBACK carries the refusal for QoS 2 as well.
  sendPuback(env, session.peer, topicId, msgId, ReturnCode.CONGESTION);
}

/** The outbox has synced a QoS 1/2 message (or failed to): only now does the device hear PUBACK / PUBREC. */
export function committed(
  env: Pick<HandlerEnv, 'send' | 'stats' | 'warn' | 'clock'>,
  session: Session,
  commit: Readonly<PendingCommit>,
  err: Error | undefined,
): void {
  const { qos, msgId, topicId } = commit;
  if (err) {
    // Not on disk: the device must not believe it is. It will retry after T_WAIT.
    session.log.error({ err, msgId }, 'storing a message failed');
    forget(session, qos, msgId);
    sendPuback(env, session.peer, topicId, msgId, ReturnCode.CONGESTION);
    return;
  }
  env.stats.recordPubackLatency(env.clock.now() - commit.started);
  if (qos === 1) {
    if (session.lastQos1?.msgId === msgId) session.lastQos1.committed = true;
    env.send(session.peer, { type: 'PUBACK', topicId, msgId, returnCode: ReturnCode.ACCEPTED });
  } else {
    if (session.qos2Received.has(msgId)) session.qos2Received.set(msgId, true);
    env.send(session.peer, { type: 'PUBREC', msgId });
  }
}

function forget(session: Session, qos: number, msgId: number): void {
  if (qos === 1) {
    if (session.lastQos1?.msgId === msgId) session.lastQos1 = undefined;
  } else {
    session.qos2Received.delete(msgId);
  }
}

/**
 * A retransmission of a message already stored (or being stored) is acknowledged again, never stored
 * twice. While its commit is still under way the commit's own acknowledgement answers it.
 */
function isRetransmission(ctx: Env, session: Session, packet: PublishPacket): boolean {
  if (packet.qos === 2) {
    const committed = session.qos2Received.get(packet.msgId);
    if (committed === undefined) return false;
    ctx.stats.duplicates++;
    if (committed) ctx.send(session.peer, { type: 'PUBREC', msgId: packet.msgId });
    return true;
  }
  const last = session.lastQos1;
  if (packet.qos !== 1 || !packet.dup || last?.msgId !== packet.msgId) return false;
  ctx.stats.duplicates++;
  if (last.committed) {
    ctx.send(session.peer, {
      type: 'PUBACK',
      topicId: packet.topicId,
      msgId: packet.msgId,
      returnCode: ReturnCode.ACCEPTED,
    });
  }
  return true;
}

/**
 * QoS −1 (§6.8): no session needed, no answer ever. Predefined ids map to their absolute topics;
 * short names go under the sender's namespace when it has a session, else under the anonymous
 * client id. Topic type "normal" is Paho's legacy form (2.0 draft annex C.6): the topic id holds the
 * length of a topic name that prefixes the payload.
 */
function publishWithoutSession(
  env: Env,
  peer: Peer,
  session: Session | undefined,
  packet: PublishPacket,
): void {
  const { settings } = env;
  const clientId = session?.clientId ?? settings.current.anonymousClientId;
  const prefix = session?.prefix ?? settings.current.namespace.prefixFor(clientId);
  let payload = packet.data;
  let topic: string | ReturnCodeValue;
  if (packet.topicIdType === 'normal') {
    const nameLength = packet.topicId;
    const name =
      nameLength > 0 && nameLength <= packet.data.length
        ? utf8(packet.data.subarray(0, nameLength))
        : undefined;
    const ref = { topicIdType: 'normal' as const, name, topicId: 0 };
    const resolved = resolveTopic('topic', ref, { clientId, prefix }, settings.current.predefined);
    topic = 'topic' in resolved ? resolved.topic : ReturnCode.INVALID_TOPIC_ID;
    payload = packet.data.subarray(nameLength);
  } else {
    topic = topicOf(env, session, clientId, prefix, packet);
  }
  if (typeof topic !== 'string') {
    env.stats.rejectedInvalidTopic++;
    env.warn.warn(
      'qos-1-topic',
      { address: describePeer(peer), topicId: packet.topicId, topicIdType: packet.topicIdType },
      'QoS -1 PUBLISH with an unknown or invalid topic dropped',
    );
    return;
  }
  countQos0Outcome(env, env.sink.append({ clientId, topic, payload, retain: packet.retain, qos: -1 }));
}

/** topicOf() for a connected session, remembered per topic id (see resolved-topics.ts). */
function sessionTopic(env: Env, session: Session, packet: PublishPacket): string | ReturnCodeValue {
  const { topicIdType, topicId } = packet;
  const table = env.settings.current.predefined;
  const name = topicIdType === 'normal' ? session.topics.nameOf(topicId) : undefined;
  const known = session.resolvedTopics.get(topicIdType, topicId, name, table);
  if (known !== undefined) return known;
  const topic = topicOf(env, session, session.clientId, session.prefix, packet);
  if (typeof topic === 'string') session.resolvedTopics.set(topicIdType, topicId, name, table, topic);
  return topic;
}

/** The broker topic of a PUBLISH's topic id (see topic-names.ts), or the return code refusing it. */
function topicOf(
  env: Env,
  session: Session | undefined,
  clientId: string,
  prefix: string,
  packet: PublishPacket,
): string | ReturnCodeValue {
  const { topicId, topicIdType } = packet;
  if (topicId === 0x0000 || topicId === 0xffff) return ReturnCode.INVALID_TOPIC_ID;
  const resolved = resolveTopic(
    'topic',
    topicIdType === 'normal'
      ? { topicIdType, name: session?.topics.nameOf(topicId), registered: true, topicId }
      : { topicIdType, topicId },
    { clientId, prefix },
    env.settings.current.predefined,
  );
  return 'topic' in resolved ? resolved.topic : resolved.returnCode;
}

/** 'too-large' is counted by the uplink (mqttsn_uplink_too_large_refused_total). */
function countQos0Outcome(
  env: Pick<HandlerEnv, 'stats'>,
  outcome: 'queued' | 'rejected' | 'dropped' | 'too-large',
): void {
  if (outcome === 'dropped') env.stats.droppedWhileDown++;
  else if (outcome === 'rejected') env.stats.droppedFull++;
}

const decoder = new TextDecoder('utf-8', { fatal: true });
function utf8(bytes: Uint8Array): string | undefined {
  try {
    return decoder.decode(bytes);
  } catch {
    return undefined;
  }
}
