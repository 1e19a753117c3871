import { FilterTrie } from '../topics/filter-trie.js';
import type { Session } from './session.js';
import type { Subscription } from './subscription.js';

export type { Subscription } from './subscription.js';

/**
 * Which sessions want which broker filters. The broker sees one subscription per distinct filter,
 * however many devices share it; `onLast` runs when a filter loses its last device.
 */
export class SubscriptionIndex {
  private readonly sessionsByFilter = new Map<string, Set<Session>>();
  private readonly trie = new FilterTrie();

  constructor(
    private readonly onLast: (filter: string) => void,
    /** Told of every change to a session's subscriptions (persistence writes one key per change). */
    private readonly onChange?: {
      added(session: Session, subscription: Subscription): void;
      removed(session: Session, filter: string): void;
    },
  ) {}

  /** Whether some device holds this broker filter already (so it costs no new broker subscription). */
  has(filter: string): boolean {
    return this.sessionsByFilter.has(filter);
  }

  get filterCount(): number {
    return this.sessionsByFilter.size;
  }

  /** Adds (or replaces) a subscription. Returns true when the filter was new to the broker side. */
  add(session: Session, subscription: Subscription): boolean {
    session.subscriptions.set(subscription.filter, subscription);
    let sessions = this.sessionsByFilter.get(subscription.filter);
    const isNew = sessions === undefined;
    if (!sessions) {
      this.sessionsByFilter.set(subscription.filter, (sessions = new Set()));
      this.trie.add(subscription.filter);
    }
    sessions.add(session);
    this.onChange?.added(session, subscription);
    return isNew;
  }

  remove(session: Session, filter: string): boolean {
    if (!session.subscriptions.delete(filter)) return false;
    this.onChange?.removed(session, filter);
    const sessions = this.sessionsByFilter.get(filter);
    if (sessions?.delete(session) && sessions.size === 0) {
      this.sessionsByFilter.delete(filter);
      this.trie.remove(filter);
      this.onLast(filter);
    }
    return true;
  }

  /**
   * The broker refused `filter` (at a device's SUBSCRIBE, or when the uplink re-applied it after a
   * reconnect): no device holds it any more, so what the gateway says it holds is what the broker
   * has. Returns the client ids that lost it.
   */
  drop(filter: string): string[] {
    const sessions = [...(this.sessionsByFilter.get(filter) ?? [])];
    for (const session of sessions) this.remove(session, filter);
    return sessions.map((session) => session.clientId);
  }

  removeAll(session: Session): void {
    for (const filter of [...session.subscriptions.keys()]) this.remove(session, filter);
  }

  /**
   * The sessions a broker message on `topic` goes to, each once, with the subscription granting the
   * highest QoS (several of a device's filters may match one topic; it gets the message once).
   */
  match(topic: string): Map<Session, Subscription> {
    const targets = new Map<Session, Subscription>();
    this.trie.match(topic, (filter) => {
      for (const session of this.sessionsByFilter.get(filter)!) {
        const subscription = session.subscriptions.get(filter)!;
        const previous = targets.get(session);
        if (!previous || subscription.qos > previous.qos) targets.set(session, subscription);
      }
    });
    return targets;
  }

  filters(): IterableIterator<string> {
    return this.sessionsByFilter.keys();
  }
}
