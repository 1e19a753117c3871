import type { BatchWriter, Operation } from './batch-writer.js';
import type { Store } from './db.js';
import type { SessionRecordStore, SessionSnapshot, StoredSubscription } from './ports.js';

export type { SessionSnapshot, StoredSubscription } from './ports.js';

/** One subscription of a persistent session, as stored. */
/** Separates the client id from the filter in a subscription key; client ids never hold U+0000. */
const SEPARATOR = '\u0000';

/**
 * Persisted sessions: one JSON record per client id, and one key per subscription (client id, U+0000,
 * broker filter), so a SUBSCRIBE writes one small key instead of the device's whole list.
 * Written through the shared group commit.
 */
export class SessionStore implements SessionRecordStore {
  private readonly records;
  private readonly subscriptions;

  constructor(
    db: Store,
    private readonly writer: BatchWriter,
  ) {
    this.records = db.sublevel<string, SessionSnapshot>('sessions', {
      keyEncoding: 'utf8',
      valueEncoding: 'json',
    });
    this.subscriptions = db.sublevel<string, Omit<StoredSubscription, 'filter'>>('subscriptions', {
      keyEncoding: 'utf8',
      valueEncoding: 'json',
    });
  }

  /** Every snapshot with its subscriptions; snapshots of the old format (list inside) are migrated. */
  async loadAll(): Promise<SessionSnapshot[]> {
    const byClient = new Map<string, StoredSubscription[]>();
    for await (const [key, value] of this.subscriptions.iterator()) {
      const split = key.indexOf(SEPARATOR);
      const clientId = key.slice(0, split);
      let list = byClient.get(clientId);
      if (!list) byClient.set(clientId, (list = []));
      list.push({ ...value, filter: key.slice(split + 1) });
    }
    const all: SessionSnapshot[] = [];
    const migration: Operation[] = [];
    for await (const snapshot of this.records.values()) {
      const stored = byClient.get(snapshot.clientId) ?? [];
      if (snapshot.subscriptions) {
        const { subscriptions: old, ...rest } = snapshot;
        for (const sub of old) migration.push(this.putOperation(snapshot.clientId, sub));
        migration.push({ type: 'put', sublevel: this.records, key: snapshot.clientId, value: rest });
        const seen = new Set(stored.map((s) => s.filter));
        for (const sub of old) if (!seen.has(sub.filter)) stored.push(sub);
      }
      byClient.delete(snapshot.clientId);
      all.push({ ...snapshot, subscriptions: stored });
    }
    // Subscriptions of a session whose record is gone (a crash between two batches): forget them.
    for (const [clientId, orphaned] of byClient)
      for (const { filter } of orphaned) migration.push(this.deleteOperation(clientId, filter));
    if (migration.length > 0)
      await new Promise<void>((resolve) => this.writer.write(migration, () => resolve()));
    return all;
  }

  /** The snapshot without subscriptions (they are written one by one). */
  save(snapshot: SessionSnapshot, done?: (err?: Error) => void): void {
    const { subscriptions, ...record } = snapshot;
    const operations: Operation[] = [
      { type: 'put', sublevel: this.records, key: snapshot.clientId, value: record },
    ];
    for (const sub of subscriptions ?? []) operations.push(this.putOperation(snapshot.clientId, sub));
    this.writer.write(operations, done);
  }

  saveSubscription(clientId: string, subscription: StoredSubscription): void {
    this.writer.write([this.putOperation(clientId, subscription)]);
  }

  deleteSubscription(clientId: string, filter: string): void {
    this.writer.write([this.deleteOperation(clientId, filter)]);
  }

  delete(clientId: string): void {
    this.writer.write([{ type: 'del', sublevel: this.records, key: clientId }]);
  }

  private putOperation(
    clientId: string,
    { filter, qos, topicIdType, topicId }: StoredSubscription,
  ): Operation {
    const value = topicId === undefined ? { qos, topicIdType } : { qos, topicIdType, topicId };
    return { type: 'put', sublevel: this.subscriptions, key: clientId + SEPARATOR + filter, value };
  }

  private deleteOperation(clientId: string, filter: string): Operation {
    return { type: 'del', sublevel: this.subscriptions, key: clientId + SEPARATOR + filter };
  }
}
