import type { RateLimitedWarn } from '../log/rate-limit.js';
import type { DownlinkMessage } from '../store/ports.js';
import type { DownlinkQueueStore } from '../store/ports.js';
import type { Boundaries } from './boundary.js';
import type { Delivery } from './delivery.js';
import type { DownlinkOptions } from './options.js';
import type { Sessions } from './registry.js';
import type { Session } from './session.js';
import type { GatewayStats } from './stats.js';
import type { SubscriptionIndex } from './subscriptions.js';

/**
 * Broker messages to the devices subscribed to them: which sessions (the subscription index), at what
 * QoS, whether the copy must be stored first (QoS 1/2, and QoS 0 for sleepers when configured), and
 * when the broker may be acknowledged (only once every stored copy is synced).
 */
export class DownlinkRouter {
  constructor(
    private readonly subscriptions: SubscriptionIndex,
    private readonly delivery: Pick<Delivery, 'queues' | 'enqueue'>,
    private readonly store: DownlinkQueueStore,
    private readonly sessions: Pick<Sessions, 'byClientId'>,
    private readonly options: Pick<DownlinkOptions, 'bufferQos0ForSleepers'>,
    private readonly stats: GatewayStats,
    private readonly warn: RateLimitedWarn,
    private readonly boundaries: Boundaries,
  ) {}

  /** `done` runs once, after the durable copies are synced (or with the error that kept them off disk). */
  route(
    topic: string,
    payload: Uint8Array,
    qos: 0 | 1 | 2,
    retain: boolean,
    done: (err?: Error) => void,
  ): void {
    let answered = false;
    const once = (err?: Error): void => {
      if (answered) return;
      answered = true;
      done(err);
    };
    // A message that makes routing throw would throw again on every redelivery: acknowledge and drop it.
    if (!this.boundaries.guard('broker-message', () => this.fanOut(topic, payload, qos, retain, once))) {
      this.stats.downlinkDropped++;
      once();
    }
  }

  private fanOut(
    topic: string,
    payload: Uint8Array,
    qos: 0 | 1 | 2,
    retain: boolean,
    done: (err?: Error) => void,
  ): void {
    const durable: Array<{ session: Session; message: DownlinkMessage }> = [];
    const markedRetained: Array<Set<string>> = [];
    for (const [session, subscription] of this.subscriptions.match(topic)) {
      if (retain) {
        // Retained copies come on every (re)subscription of the filter, also for other devices.
        if (!subscription.retainedSeen || subscription.retainedSeen.has(topic)) continue;
        subscription.retainedSeen.add(topic);
        markedRetained.push(subscription.retainedSeen);
      }
      const message: DownlinkMessage = {
        seq: 0,
        topic,
        payload,
        qos: Math.min(subscription.qos, qos) as 0 | 1 | 2,
        retain,
        topicIdType: subscription.topicIdType,
        topicId: subscription.topicId ?? 0,
      };
      // Refused before storing: a stored copy that cannot be sent would wedge the device's queue.
      if (this.delivery.queues.refuseUnrepresentable(session, message)) continue;
      const listening =
        session.state === 'active' || session.state === 'awake' || session.state === 'connecting';
      if (message.qos > 0 || (session.state === 'asleep' && this.options.bufferQos0ForSleepers)) {
        durable.push({ session, message });
      } else if (listening) {
        this.delivery.enqueue(session, message);
      } else {
        this.stats.downlinkDropped++;
      }
    }
    if (durable.length === 0) {
      done();
      return;
    }
    this.store.put(
      durable.map(({ session, message }) => ({ clientId: session.clientId, message })),
      (err) => {
        if (err) {
          // Not durable, so not acknowledged: the broker sends it again (the uplink does not ack and
          // reconnects). Delivering it from memory too would only duplicate it.
          this.stats.downlinkStoreFailures++;
          this.warn.warn(
            'downlink-store',
            { err, topic },
            'storing a broker message failed: not acknowledged',
          );
          // The redelivered retained copy must not be taken for one already seen.
          for (const seen of markedRetained) seen.delete(topic);
          done(err);
          return;
        }
        for (const { session, message } of durable) {
          // One device's delivery failing must not keep the others (or the broker's ack) waiting.
          this.boundaries.guard('commit', () => {
            // The session may have been removed meanwhile (CleanSession=1 reconnect).
            if (this.sessions.byClientId(session.clientId) === session)
              this.delivery.enqueue(session, message);
            else this.store.delete(session.clientId, message.seq);
          });
        }
        done();
      },
    );
  }
}
