import { ReturnCode, type ReturnCodeValue } from '../../codec/constants.js';
import { shortTopicName } from '../../codec/index.js';
import type { SubscribePacket, UnsubscribePacket } from '../../codec/types.js';
import { lookupPredefined } from '../../topics/predefined.js';
import { brokerFilterProblem, topicFilterProblem } from '../../topics/names.js';
import {
  DEFAULT_MAX_BROKER_SUBSCRIPTIONS,
  DEFAULT_MAX_SUBSCRIPTIONS_PER_CLIENT,
  type GatewayContext,
} from '../context.js';
import { describePeer, type Peer } from '../peer.js';
import { sendNotConnected } from '../replies.js';
import type { Session } from '../session.js';

/**
 * SUBSCRIBE (§6.9). The device's filter maps through its namespace (device C subscribing to cmd/#
 * gets what the cloud publishes under mqttsn/C/cmd/…); predefined ids map to their absolute topics.
 * SUBACK carries the topic id for a plain name (so the device knows it before the first PUBLISH),
 * 0x0000 for wildcards and short names, and the predefined id for predefined topics.
 */
export function handleSubscribe(
  ctx: GatewayContext,
  peer: Peer,
  session: Session | undefined,
  packet: SubscribePacket,
): void {
  if (!session?.isConnected) {
    sendNotConnected(ctx, peer, 'SUBSCRIBE');
    return;
  }
  const refuse = (returnCode: ReturnCodeValue, why: string): void => {
    ctx.warn.warn(
      'subscribe-refused',
      { clientId: session.clientId, address: describePeer(peer), packet: describe(packet), returnCode, why },
      'SUBSCRIBE refused',
    );
    ctx.send(peer, { type: 'SUBACK', qos: 0, topicId: 0, msgId: packet.msgId, returnCode });
  };
  const target = resolveFilter(ctx, session, packet);
  if (typeof target === 'string') {
    refuse(
      target === 'unknown predefined id' ? ReturnCode.INVALID_TOPIC_ID : ReturnCode.NOT_SUPPORTED,
      target,
    );
    return;
  }
  const bound = subscriptionBound(ctx, session, target.filter);
  if (bound) {
    refuseOverBound(ctx, session, packet, bound);
    return;
  }
  let subackTopicId = 0;
  if (packet.topicIdType === 'predefined') {
    subackTopicId = packet.topicId;
  } else if (packet.topicIdType === 'normal' && !/[+#]/.test(packet.topicName)) {
    const id = session.topics.register(packet.topicName);
    if (id === undefined) {
      refuse(ReturnCode.CONGESTION, 'topic limit per client reached');
      return;
    }
    // SUBACK tells the device this id: no REGISTER needed before the first PUBLISH on it.
    session.knownTopicIds.add(id);
    subackTopicId = id;
  }
  ctx.subscriptions.add(session, {
    filter: target.filter,
    qos: packet.qos,
    topicIdType: packet.topicIdType,
    topicId: packet.topicIdType === 'normal' ? undefined : packet.topicId,
    retainedSeen: new Set(),
  });
  // A persistent session's subscription is stored by the index (one key), not by a snapshot rewrite.
  const accept = (): void =>
    ctx.send(peer, {
      type: 'SUBACK',
      qos: packet.qos,
      topicId: subackTopicId,
      msgId: packet.msgId,
      returnCode: ReturnCode.ACCEPTED,
    });
  // Always (re)subscribe upstream: the broker then re-sends retained messages (MQTT 3.1.1 §3.8.4),
  // also when another device already holds the same filter.
  const verdict = ctx.broker.subscribe(target.filter);
  if (verdict === undefined) {
    accept();
    return;
  }
  // The device hears the broker's answer: a filter the broker refused is not kept.
  void verdict.then((accepted) => {
    if (accepted) return accept();
    if (ctx.subscriptions.remove(session, target.filter)) ctx.persist(session);
    refuse(ReturnCode.NOT_SUPPORTED, 'the broker refused the subscription');
  });
}

/** UNSUBSCRIBE (§6.10): always answered, also for a filter the device did not hold. */
export function handleUnsubscribe(
  ctx: GatewayContext,
  peer: Peer,
  session: Session | undefined,
  packet: UnsubscribePacket,
): void {
  if (!session?.isConnected) {
    sendNotConnected(ctx, peer, 'UNSUBSCRIBE');
    return;
  }
  const target = resolveFilter(ctx, session, packet);
  if (typeof target !== 'string') ctx.subscriptions.remove(session, target.filter);
  ctx.send(peer, { type: 'UNSUBACK', msgId: packet.msgId });
}

/**
 * Whether one more subscription would pass a bound: the device's own (`--max-subscriptions`) or the
 * gateway's distinct broker filters (`--max-broker-subscriptions`). Replacing a subscription the
 * device holds, or sharing a filter another device holds, costs nothing.
 */
function subscriptionBound(
  ctx: GatewayContext,
  session: Session,
  filter: string,
): 'client' | 'gateway' | undefined {
  if (session.subscriptions.has(filter)) return undefined;
  const limits = ctx.options.limits;
  const perClient = limits.maxSubscriptions ?? DEFAULT_MAX_SUBSCRIPTIONS_PER_CLIENT;
  if (session.subscriptions.size >= perClient) return 'client';
  const total = limits.maxBrokerSubscriptions ?? DEFAULT_MAX_BROKER_SUBSCRIPTIONS;
  if (!ctx.subscriptions.has(filter) && ctx.subscriptions.filterCount >= total) return 'gateway';
  return undefined;
}

/** SUBACK "congestion", counted, and one rate-limited line per bound. */
function refuseOverBound(
  ctx: GatewayContext,
  session: Session,
  packet: SubscribePacket,
  bound: 'client' | 'gateway',
): void {
  ctx.stats.subscriptionsRefused[bound]++;
  const limits = ctx.options.limits;
  ctx.warn.warn(
    `subscribe-limit|${bound}`,
    {
      clientId: session.clientId,
      address: describePeer(session.peer),
      filter: describe(packet),
      ...(bound === 'client'
        ? {
            maxSubscriptions: limits.maxSubscriptions ?? DEFAULT_MAX_SUBSCRIPTIONS_PER_CLIENT,
          }
        : { maxBrokerSubscriptions: limits.maxBrokerSubscriptions ?? DEFAULT_MAX_BROKER_SUBSCRIPTIONS }),
    },
    bound === 'client'
      ? 'SUBSCRIBE refused: subscription limit per client reached'
      : 'SUBSCRIBE refused: broker subscription limit of the gateway reached',
  );
  ctx.send(session.peer, {
    type: 'SUBACK',
    qos: 0,
    topicId: 0,
    msgId: packet.msgId,
    returnCode: ReturnCode.CONGESTION,
  });
}

/**
 * The broker filter a SUBSCRIBE / UNSUBSCRIBE names, or why it is refused. The composed filter is
 * checked last: a filter the broker refuses would drop the uplink on every re-subscribe.
 */
function resolveFilter(
  ctx: GatewayContext,
  session: Session,
  packet: SubscribePacket | UnsubscribePacket,
): { filter: string } | string {
  const target = composeFilter(ctx, session, packet);
  return typeof target === 'string' ? target : (brokerFilterProblem(target.filter) ?? target);
}

function composeFilter(
  ctx: GatewayContext,
  session: Session,
  packet: SubscribePacket | UnsubscribePacket,
): { filter: string } | string {
  switch (packet.topicIdType) {
    case 'normal': {
      const problem = topicFilterProblem(packet.topicName);
      return problem ?? { filter: session.prefix + packet.topicName };
    }
    case 'predefined': {
      const topic = lookupPredefined(ctx.predefined, session.clientId, packet.topicId);
      return topic === undefined ? 'unknown predefined id' : { filter: topic };
    }
    case 'short': {
      let name: string;
      try {
        name = shortTopicName(packet.topicId);
      } catch {
        return 'short topic name is not UTF-8';
      }
      const problem = topicFilterProblem(name);
      return problem ?? { filter: session.prefix + name };
    }
  }
}

function describe(packet: SubscribePacket | UnsubscribePacket): string {
  return packet.topicIdType === 'normal' ? packet.topicName : `${packet.topicIdType}:${packet.topicId}`;
}
