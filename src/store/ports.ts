/**
 * The store as the rest of the gateway sees it: small interfaces (ports), so the gateway and the bridge
 * depend on what a store does, not on LevelDB classes, and tests can put a store that fails on purpose
 * (faulty.ts) where the real one goes. test/store-contract.test.ts runs one contract suite against every
 * implementation.
 */
import type { DownlinkMessage, DownlinkRef } from './downlink.js';
import type { AppendResult, CommitCallback, OutboxEntry, OutboxMessage, OutboxStats } from './outbox.js';
import type { SessionSnapshot, StoredSubscription } from './sessions.js';

/** Per-device durable queues of broker messages. */
export interface DownlinkQueueStore {
  /**
   * Every stored message, grouped by client id, in order: references only (sequence number and size);
   * payloads stay on disk until read() fetches one for delivery.
   */
  loadAll(): Promise<Map<string, DownlinkRef[]>>;
  /** One stored message, or undefined when it is no longer there. */
  read(clientId: string, ref: DownlinkRef): Promise<DownlinkMessage | undefined>;
  /**
   * Stores messages for several devices atomically and assigns their sequence numbers; `done` runs once
   * they are synced — or with an error, when none of them is stored (then the broker must not be acked).
   */
  put(
    entries: ReadonlyArray<{ clientId: string; message: DownlinkMessage }>,
    done: (err?: Error) => void,
  ): void;
  delete(clientId: string, seq: number): void;
  deleteAll(clientId: string, messages: ReadonlyArray<{ seq: number }>): void;
}

/** Persisted CleanSession=0 sessions: one record per client id, one key per subscription. */
export interface SessionRecordStore {
  loadAll(): Promise<SessionSnapshot[]>;
  save(snapshot: SessionSnapshot, done?: (err?: Error) => void): void;
  saveSubscription(clientId: string, subscription: StoredSubscription): void;
  deleteSubscription(clientId: string, filter: string): void;
  delete(clientId: string): void;
}

/** The outbox: append (device side), feed and ack (uplink side). */
export interface OutboxStore {
  readonly lastSeq: number;
  readonly stats: OutboxStats;
  append(message: OutboxMessage, onCommitted?: CommitCallback): AppendResult;
  read(afterSeq: number, limit: number): Promise<OutboxEntry[]>;
  isLive(seq: number): boolean;
  ack(seq: number): boolean;
  flush(): Promise<void>;
  close(): Promise<void>;
  on(event: 'committed', listener: (lastSeq: number) => void): unknown;
  off(event: 'committed', listener: (lastSeq: number) => void): unknown;
}
