/**
 * The store as the rest of the gateway sees it: small interfaces (ports), so the gateway and the bridge
 * depend on what a store does, not on LevelDB classes, and tests can put a store that fails on purpose
 * (faulty.ts) where the real one goes. test/store-contract.test.ts runs one contract suite against every
 * implementation.
 */
import type { TopicIdTypeName } from './topic-id-type.js';

export type CommitCallback = (err?: Error) => void;

export interface OutboxMessage {
  /** Device client id. */
  clientId: string;
  /** Broker topic (already mapped through the namespace). */
  topic: string;
  payload: Uint8Array;
  retain: boolean;
  /** The device's QoS; informational, the uplink always publishes at QoS 1. */
  qos: -1 | 0 | 1 | 2;
}

/**
 * A stored message as the uplink reads it: the bytes of its MQTT 5 PUBLISH as stored (sent as they are,
 * only the packet id and DUP patched) and where their parts are; the fields are read from those bytes on
 * first use (dead letters, logs), not for every send.
 */
export interface OutboxEntry {
  readonly seq: number;
  /** The PUBLISH (QoS 1, packet id 0, DUP clear): a view into the stored record, not a copy. */
  readonly packet: Buffer;
  /** Offsets into `packet`: the topic's length prefix, the properties' length, the payload. */
  readonly topicAt: number;
  readonly propertiesAt: number;
  readonly payloadAt: number;
  /** Topic and user properties were found valid for the broker when stored (record format 4). */
  readonly checked: boolean;
  readonly retain: boolean;
  readonly receivedAt: number;
  readonly topic: string;
  readonly payload: Buffer;
  /** `mqttsn-id`, `mqttsn-client`, `mqttsn-received`. */
  readonly userProperties: Record<string, string>;
  readonly clientId: string;
}

export interface OutboxStats {
  messages: number;
  bytes: number;
  oldestReceivedAt: number | null;
  dropped: { quota: number; ttl: number; invalid: number };
  rejected: number;
  appended: number;
  acked: number;
  /** Batch writes so far, and how many of them were synced. */
  batches: number;
  syncBatches: number;
  /** Messages written in synced batches: ÷ syncBatches, the messages each fsync carried. */
  syncedMessages?: number;
  /** The writer's gather window (store/gather-window.ts): syncs it held back, of them ended by its deadline, ms held. */
  gather?: { held: number; timedOut: number; heldMs: number };
  /** The in-memory tail (store/tail.ts): entries and PUBLISH bytes it holds, within its bounds. */
  tail?: { entries: number; bytes: number };
  writeErrors: number;
  /** Set while writes fail (a full disk): why, for /healthz. */
  writeFailing?: string;
}

export type AppendResult = 'queued' | 'rejected';

export interface StoredSubscription {
  filter: string;
  qos: 0 | 1 | 2;
  topicIdType: TopicIdTypeName;
  topicId?: number;
}

/** What a CleanSession=0 session keeps across disconnects, sleeps and gateway restarts (§6.3). */
export interface SessionSnapshot {
  clientId: string;
  /**
   * Loaded from the 'subscriptions' sublevel (one key each). Written inside the snapshot only by
   * versions before that; such snapshots are migrated on load.
   */
  subscriptions?: StoredSubscription[];
  will?: { topic: string; payload: string /* base64 */; qos: 0 | 1 | 2; retain: boolean };
  /** Asleep sessions keep their sleep supervision across a restart. */
  asleep: boolean;
  sleepMs: number;
  keepAliveMs: number;
  /** IP address the session was last bound to (per-address bounds survive a restart). */
  address?: string;
  /** The client has done nothing but CONNECT: the short idle expiry applies. */
  idle?: boolean;
}

/** A message from the broker waiting for (or being delivered to) one device. */
export interface DownlinkMessage {
  /** Key in the durable queue; 0 for a QoS 0 message kept only in memory. */
  seq: number;
  /** Broker topic it was published on. */
  topic: string;
  payload: Uint8Array;
  /** Delivery QoS: the lower of the message's and the subscription's. */
  qos: 0 | 1 | 2;
  retain: boolean;
  /** How the device subscribed: deliveries to predefined / short subscriptions reuse that id. */
  topicIdType: TopicIdTypeName;
  topicId: number;
  /** Bytes it takes in the queue (the stored record); computed when absent. */
  size?: number;
}

/**
 * A queued message whose content stays on disk until it is delivered: what a sleeper's queue holds,
 * and all a restart loads (so RAM does not grow with what sleepers have waiting).
 */
export interface DownlinkRef {
  seq: number;
  size: number;
}

export type QueuedDownlink = DownlinkMessage | DownlinkRef;

export function isLoaded(entry: QueuedDownlink): entry is DownlinkMessage {
  return 'payload' in entry;
}

/** The bytes a message takes in the queue: its stored record. */
export function sizeOf(entry: QueuedDownlink): number {
  if (!isLoaded(entry)) return entry.size;
  entry.size ??= 8 + Buffer.byteLength(entry.topic, 'utf8') + entry.payload.length;
  return entry.size;
}

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
