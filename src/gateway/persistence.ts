import type { SessionRecordStore } from '../store/ports.js';
import type { Session } from './session.js';
import type { Subscription } from './subscription.js';

/**
 * CleanSession=0 sessions on disk (§6.2: the session outlives the connection, and the gateway's
 * restarts): a snapshot written when the session is first kept and when its will or sleep changes,
 * and its subscriptions one key each as they change, so a SUBSCRIBE never rewrites the whole record.
 */
export class SessionPersistence {
  constructor(private readonly store: SessionRecordStore) {}

  /** Saves (CleanSession=0) or forgets (CleanSession=1) the session's durable snapshot. */
  persist(session: Session): void {
    if (session.cleanSession) {
      this.forget(session);
      return;
    }
    const will = session.will;
    this.store.save({
      clientId: session.clientId,
      // Written in full only when the session is first persisted; then key by key as they change.
      subscriptions: session.persisted ? undefined : [...session.subscriptions.values()].map(stored),
      will: will && {
        topic: will.topic,
        payload: Buffer.from(will.payload).toString('base64'),
        qos: will.qos,
        retain: will.retain,
      },
      asleep: session.state === 'asleep' || session.state === 'awake',
      sleepMs: session.sleepMs,
      keepAliveMs: session.keepAliveMs,
      address: session.peer.address || undefined,
      idle: session.idle || undefined,
    });
    session.persisted = true;
  }

  /** The session is gone (or clean): its record goes too. */
  forget(session: Session): void {
    if (session.persisted) this.store.delete(session.clientId);
    session.persisted = false;
  }

  /** For the subscription index: a kept session's subscriptions are stored one key each. */
  readonly onSubscriptionChange = {
    added: (session: Session, subscription: Subscription): void => {
      if (session.persisted) this.store.saveSubscription(session.clientId, stored(subscription));
    },
    removed: (session: Session, filter: string): void => {
      if (session.persisted) this.store.deleteSubscription(session.clientId, filter);
    },
  };
}

function stored({ filter, qos, topicIdType, topicId }: Subscription): {
  filter: string;
  qos: 0 | 1 | 2;
  topicIdType: Subscription['topicIdType'];
  topicId?: number;
} {
  return { filter, qos, topicIdType, topicId };
}
