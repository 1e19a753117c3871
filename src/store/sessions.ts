import type { TopicIdTypeName } from '../codec/constants.js';
import type { BatchWriter } from './batch-writer.js';
import type { Store } from './db.js';
import type { SessionRecordStore } from './ports.js';

/** What a CleanSession=0 session keeps across disconnects, sleeps and gateway restarts (§6.3). */
export interface SessionSnapshot {
  clientId: string;
  subscriptions: Array<{ filter: string; qos: 0 | 1 | 2; topicIdType: TopicIdTypeName; topicId?: number }>;
  will?: { topic: string; payload: string /* base64 */; qos: 0 | 1 | 2; retain: boolean };
  /** Asleep sessions keep their sleep supervision across a restart. */
  asleep: boolean;
  sleepMs: number;
  keepAliveMs: number;
}

/** Persisted sessions, one JSON record per client id. Written through the shared group commit. */
export class SessionStore implements SessionRecordStore {
  private readonly records;

  constructor(
    db: Store,
    private readonly writer: BatchWriter,
  ) {
    this.records = db.sublevel<string, SessionSnapshot>('sessions', {
      keyEncoding: 'utf8',
      valueEncoding: 'json',
    });
  }

  async loadAll(): Promise<SessionSnapshot[]> {
    const all: SessionSnapshot[] = [];
    for await (const value of this.records.values()) all.push(value);
    return all;
  }

  save(snapshot: SessionSnapshot, done?: (err?: Error) => void): void {
    this.writer.write(
      [{ type: 'put', sublevel: this.records, key: snapshot.clientId, value: snapshot }],
      done,
    );
  }

  delete(clientId: string): void {
    this.writer.write([{ type: 'del', sublevel: this.records, key: clientId }]);
  }
}
