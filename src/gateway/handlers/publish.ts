import { ReturnCode, type ReturnCodeValue } from '../../codec/constants.js';
import { admitWithoutSession } from '../allow-list.js';
import { shortTopicName } from '../../codec/index.js';
import type { PublishPacket } from '../../codec/types.js';
import { lookupPredefined } from '../../topics/predefined.js';
import { brokerTopicProblem, topicNameProblem } from '../../topics/names.js';
import type { DeviceMessage, GatewayContext } from '../context.js';
import { describePeer, type Peer } from '../peer.js';
import { sendNotConnected, sendPuback } from '../replies.js';
import type { Session } from '../session.js';

/**
 * PUBLISH from a device (§6.6, §6.8). Every message goes to the outbox; QoS 1 is acknowledged
 * (PUBACK) and QoS 2 received (PUBREC) only once the outbox has synced it to disk.
 */
export function handlePublish(
  ctx: GatewayContext,
  peer: Peer,
  session: Session | undefined,
  packet: PublishPacket,
  datagramLength: number,
): void {
  ctx.stats.publishIn[packet.qos + 1]!++;
  if (packet.qos === -1) {
    // With an allow-list, a sender without a session needs an address rule (issue 8 §5).
    if (!session?.isConnected && !admitWithoutSession(ctx, peer)) return;
    publishWithoutSession(ctx, peer, session, packet);
    return;
  }
  if (!session?.isConnected) {
    sendNotConnected(ctx, peer, 'PUBLISH');
    return;
  }
  session.messagesIn++;
  if (datagramLength > ctx.options.limits.maxPacketSize) {
    ctx.stats.oversized++;
    ctx.warn.warn(
      'oversized',
      { clientId: session.clientId, size: datagramLength },
      'PUBLISH larger than the packet size limit refused',
    );
    if (packet.qos > 0) sendPuback(ctx, peer, packet.topicId, packet.msgId, ReturnCode.NOT_SUPPORTED);
    return;
  }
  if (isRetransmission(ctx, session, packet)) return;

  const topic = resolveTopic(ctx, session, session.clientId, session.prefix, packet);
  if (typeof topic !== 'string') {
    session.log.debug(
      { topicId: packet.topicId, topicIdType: packet.topicIdType, returnCode: topic },
      'PUBLISH refused',
    );
    // The error reply to any PUBLISH, QoS 0 included (§6.3: the client re-REGISTERs).
    sendPuback(ctx, peer, packet.topicId, packet.msgId, topic);
    return;
  }
  const message: DeviceMessage = {
    clientId: session.clientId,
    topic,
    payload: packet.data,
    retain: packet.retain,
    qos: packet.qos,
  };
  if (packet.qos === 0) {
    countQos0Outcome(ctx, ctx.sink.append(message));
    return;
  }
  storeAndAcknowledge(ctx, session, packet, message);
}

function storeAndAcknowledge(
  ctx: GatewayContext,
  session: Session,
  packet: PublishPacket,
  message: DeviceMessage,
): void {
  const { msgId, topicId, qos } = packet;
  const started = ctx.clock.now();
  if (qos === 1) session.lastQos1 = { msgId, topicId, committed: false };
  else session.qos2Received.set(msgId, false);

  const outcome = ctx.sink.append(message, (err) => {
    if (err) {
      // Not on disk: the device must not believe it is. It will retry after T_WAIT.
      session.log.error({ err, msgId }, 'storing a message failed');
      forget(session, qos, msgId);
      sendPuback(ctx, session.peer, topicId, msgId, ReturnCode.CONGESTION);
      return;
    }
    ctx.stats.recordPubackLatency(ctx.clock.now() - started);
    if (qos === 1) {
      if (session.lastQos1?.msgId === msgId) session.lastQos1.committed = true;
      ctx.send(session.peer, { type: 'PUBACK', topicId, msgId, returnCode: ReturnCode.ACCEPTED });
    } else {
      if (session.qos2Received.has(msgId)) session.qos2Received.set(msgId, true);
      ctx.send(session.peer, { type: 'PUBREC', msgId });
    }
  });
  if (outcome === 'too-large') {
    forget(session, qos, msgId);
    ctx.warn.warn(
      'publish-too-large',
      { clientId: session.clientId },
      'PUBLISH larger than the broker takes: answered with PUBACK "not supported"',
    );
    // Permanent: "congestion" would have the device send the same message again and again.
    sendPuback(ctx, session.peer, topicId, msgId, ReturnCode.NOT_SUPPORTED);
    return;
  }
  if (outcome !== 'queued') {
    forget(session, qos, msgId);
    ctx.warn.warn(
      'outbox-full-reject',
      { clientId: session.clientId },
      'outbox full: PUBLISH answered with PUBACK "congestion"',
    );
    // No negative PUBREC exists: PUBACK carries the refusal for QoS 2 as well.
    sendPuback(ctx, session.peer, topicId, msgId, ReturnCode.CONGESTION);
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
function isRetransmission(ctx: GatewayContext, session: Session, packet: PublishPacket): boolean {
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
  ctx: GatewayContext,
  peer: Peer,
  session: Session | undefined,
  packet: PublishPacket,
): void {
  const clientId = session?.clientId ?? ctx.options.anonymousClientId;
  const prefix = session?.prefix ?? ctx.namespace.prefixFor(clientId);
  let payload = packet.data;
  let topic: string | ReturnCodeValue;
  if (packet.topicIdType === 'normal') {
    const nameLength = packet.topicId;
    const name =
      nameLength > 0 && nameLength <= packet.data.length
        ? utf8(packet.data.subarray(0, nameLength))
        : undefined;
    topic =
      name === undefined || topicNameProblem(name) ? ReturnCode.INVALID_TOPIC_ID : checked(prefix + name);
    payload = packet.data.subarray(nameLength);
  } else {
    topic = resolveTopic(ctx, session, clientId, prefix, packet);
  }
  if (typeof topic !== 'string') {
    ctx.stats.rejectedInvalidTopic++;
    ctx.warn.warn(
      'qos-1-topic',
      { address: describePeer(peer), topicId: packet.topicId, topicIdType: packet.topicIdType },
      'QoS -1 PUBLISH with an unknown or invalid topic dropped',
    );
    return;
  }
  countQos0Outcome(ctx, ctx.sink.append({ clientId, topic, payload, retain: packet.retain, qos: -1 }));
}

/** The broker topic of a PUBLISH, or the return code refusing it; always a topic the broker accepts. */
function resolveTopic(
  ctx: GatewayContext,
  session: Session | undefined,
  clientId: string,
  prefix: string,
  packet: PublishPacket,
): string | ReturnCodeValue {
  const topic = composeTopic(ctx, session, clientId, prefix, packet);
  return typeof topic === 'string' ? checked(topic) : topic;
}

/**
 * The last check before a topic goes to the outbox: whatever composed it (prefix + registered or short
 * name, a predefined mapping), the broker must accept it, or it would drop the uplink on every replay.
 */
function checked(topic: string): string | ReturnCodeValue {
  return brokerTopicProblem(topic) === null ? topic : ReturnCode.INVALID_TOPIC_ID;
}

function composeTopic(
  ctx: GatewayContext,
  session: Session | undefined,
  clientId: string,
  prefix: string,
  packet: PublishPacket,
): string | ReturnCodeValue {
  const { topicId } = packet;
  if (topicId === 0x0000 || topicId === 0xffff) return ReturnCode.INVALID_TOPIC_ID;
  switch (packet.topicIdType) {
    case 'normal': {
      const name = session?.topics.nameOf(topicId);
      return name === undefined ? ReturnCode.INVALID_TOPIC_ID : prefix + name;
    }
    case 'predefined':
      return lookupPredefined(ctx.predefined, clientId, topicId) ?? ReturnCode.INVALID_TOPIC_ID;
    case 'short': {
      const name = shortName(topicId);
      return name === undefined || topicNameProblem(name) ? ReturnCode.INVALID_TOPIC_ID : prefix + name;
    }
  }
}

/** 'too-large' is counted by the uplink (mqttsn_uplink_too_large_refused_total). */
function countQos0Outcome(
  ctx: GatewayContext,
  outcome: 'queued' | 'rejected' | 'dropped' | 'too-large',
): void {
  if (outcome === 'dropped') ctx.stats.droppedWhileDown++;
  else if (outcome === 'rejected') ctx.stats.droppedFull++;
}

/** The two characters of a short topic id, or undefined when they are not UTF-8. */
function shortName(topicId: number): string | undefined {
  try {
    return shortTopicName(topicId);
  } catch {
    return undefined;
  }
}

const decoder = new TextDecoder('utf-8', { fatal: true });
function utf8(bytes: Uint8Array): string | undefined {
  try {
    return decoder.decode(bytes);
  } catch {
    return undefined;
  }
}
