import { ReturnCode, type ReturnCodeValue } from '../../codec/constants.js';
import type { SubscribePacket, UnsubscribePacket } from '../../codec/types.js';
import { DEFAULT_MAX_BROKER_SUBSCRIPTIONS, DEFAULT_MAX_SUBSCRIPTIONS_PER_CLIENT } from '../options.js';
import { describePeer, type Peer } from '../peer.js';
import type { Session } from '../session.js';
import { resolveTopic, type Resolved } from '../topic-names.js';
import type { HandlerEnv } from './env.js';

type Env = Pick<
  HandlerEnv,
  'send' | 'stats' | 'warn' | 'settings' | 'subscriptions' | 'broker' | 'persistence'
>;

/**
 * SUBSCRIBE (§6.9). The device's filter maps through its namespace (device C subscribing to cmd/#
 * gets what the cloud publishes under mqttsn/C/cmd/…); predefined ids map to their absolute topics.
 * SUBACK carries the topic id for a plain name (so the device knows it before the first PUBLISH),
 * 0x0000 for wildcards and short names, and the predefined id for predefined topics.
 */
export function handleSubscribe(ctx: Env, peer: Peer, session: Session, packet: SubscribePacket): void {
  const refuse = (returnCode: ReturnCodeValue, why: string): void => {
    ctx.warn.warn(
      'subscribe-refused',
      { clientId: session.clientId, address: describePeer(peer), packet: describe(packet), returnCode, why },
      'SUBSCRIBE refused',
    );
    ctx.send(peer, { type: 'SUBACK', qos: 0, topicId: 0, msgId: packet.msgId, returnCode });
  };
  const resolved = resolveFilter(ctx, session, packet);
  if (!('topic' in resolved)) {
    refuse(resolved.returnCode, resolved.problem);
    return;
  }
  const target = { filter: resolved.topic };
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
    if (ctx.subscriptions.remove(session, target.filter)) ctx.persistence.persist(session);
    refuse(ReturnCode.NOT_SUPPORTED, 'the broker refused the subscription');
  });
}

/** UNSUBSCRIBE (§6.10): always answered, also for a filter the device did not hold. */
export function handleUnsubscribe(ctx: Env, peer: Peer, session: Session, packet: UnsubscribePacket): void {
  const target = resolveFilter(ctx, session, packet);
  if ('topic' in target) ctx.subscriptions.remove(session, target.topic);
  ctx.send(peer, { type: 'UNSUBACK', msgId: packet.msgId });
}

/**
 * Whether one more subscription would pass a bound: the device's own (`--max-subscriptions`) or the
 * gateway's distinct broker filters (`--max-broker-subscriptions`). Replacing a subscription the
 * device holds, or sharing a filter another device holds, costs nothing.
 */
function subscriptionBound(ctx: Env, session: Session, filter: string): 'client' | 'gateway' | undefined {
  if (session.subscriptions.has(filter)) return undefined;
  const limits = ctx.settings.current.limits;
  const perClient = limits.maxSubscriptions ?? DEFAULT_MAX_SUBSCRIPTIONS_PER_CLIENT;
  if (session.subscriptions.size >= perClient) return 'client';
  const total = limits.maxBrokerSubscriptions ?? DEFAULT_MAX_BROKER_SUBSCRIPTIONS;
  if (!ctx.subscriptions.has(filter) && ctx.subscriptions.filterCount >= total) return 'gateway';
  return undefined;
}

/** SUBACK "congestion", counted, and one rate-limited line per bound. */
function refuseOverBound(
  ctx: Env,
  session: Session,
  packet: SubscribePacket,
  bound: 'client' | 'gateway',
): void {
  ctx.stats.subscriptionsRefused[bound]++;
  const limits = ctx.settings.current.limits;
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

/** The broker filter a SUBSCRIBE / UNSUBSCRIBE names (see topic-names.ts), or why it is refused. */
function resolveFilter(ctx: Env, session: Session, packet: SubscribePacket | UnsubscribePacket): Resolved {
  const ref =
    packet.topicIdType === 'normal'
      ? { topicIdType: packet.topicIdType, name: packet.topicName, topicId: 0 }
      : { topicIdType: packet.topicIdType, topicId: packet.topicId };
  return resolveTopic('filter', ref, session, ctx.settings.current.predefined);
}

function describe(packet: SubscribePacket | UnsubscribePacket): string {
  return packet.topicIdType === 'normal' ? packet.topicName : `${packet.topicIdType}:${packet.topicId}`;
}
