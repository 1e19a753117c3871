/**
 * The outbox: the ordered, durable queue every device message takes to the broker.
 *
 * - append() decides the quota synchronously and queues the record for the next group commit; the
 *   optional callback fires once the batch holding it is on disk (that is when a device gets PUBACK).
 * - read() hands committed entries to the uplink in sequence order; ack() forgets one the broker took.
 * - Sequence numbers never go backwards, also across restarts with an empty outbox: a high-water mark is
 *   stored in the same batch as the appends (a Raspberry Pi has no RTC, so order never comes from time).
 *
 * The outbox does not own the database: the caller opens it (openStore) and closes it after close().
 */
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { systemClock, type Clock } from '../time.js';
import type { Store } from './db.js';
import { EpisodeLog } from './episode-log.js';
import { isoTime } from './iso-time.js';
import { GroupCommit, type CommitCallback, type PendingPut } from './group-commit.js';
import { LiveIndex } from './live-index.js';
import type { AppendResult, OutboxEntry, OutboxMessage, OutboxStats, OutboxStore } from './ports.js';

/** The outbox's vocabulary is defined with its port (ports.ts); named here too for its users. */
export type { AppendResult, OutboxEntry, OutboxMessage, OutboxStats } from './ports.js';
import { writerFor } from './writer.js';
import { entryOf, entryOfLayout } from './entry.js';
import { encodeRecordLayout, recordBornAt } from './record.js';
import { Segment, SegmentTable, segmentRecords } from './segments.js';
import { readSeq, seqKey } from './seq-key.js';
import { Tail } from './tail.js';
import { OUTBOX_DEFAULTS } from './outbox-defaults.js';
import {
  goneSublevel,
  metaSublevel,
  OUTBOX_ELAPSED_META_KEY,
  OUTBOX_SEQ_META_KEY,
  outboxSublevel,
  type MetaSublevel,
  type OutboxSublevel,
} from './sublevels.js';

export type { CommitCallback } from './group-commit.js';

export type FullPolicy = 'reject' | 'drop-oldest';

export interface OutboxOptions {
  /** Prefix of each message's stable id (`mqttsn-id` = `<gatewayId>:<seq>`). */
  gatewayId: string;
  logger: Logger;
  /** Most messages kept (default 100,000). */
  maxMessages?: number;
  /** Most record bytes kept (default 64 MiB). */
  maxBytes?: number;
  /** Messages older than this are dropped; 0 = keep until delivered (default 0). */
  ttlMs?: number;
  /** What to do when a new message does not fit (default 'reject'). */
  whenFull?: FullPolicy;
  /** How often expired messages are swept (default ttlMs / 2, clamped to 100 ms..60 s). */
  ttlSweepIntervalMs?: number;
  /**
   * Time: the wall clock stamps receive times users see; ages and the TTL use the monotonic clock, so a
   * clock set by NTP never expires (or keeps) a message. Default: the system clock.
   */
  clock?: Clock;
  /** Older form: one function as both clocks (tests that move time by hand). Ignored with `clock`. */
  now?: () => number;
  /**
   * Called before a retry after write failures: the chance to reopen a database that LevelDB keeps in
   * its error state after a full disk (see store/db.ts recoverStore). Default: retry as is.
   */
  recover?: () => Promise<unknown>;
  /** First and longest pause between retries while writes fail (default 250 ms, 5 s). */
  retryMs?: { initial: number; max: number };
  /**
   * Most recent entries kept in memory for the uplink (default 4096, and at most `tailBytes` of them,
   * default 4 MiB), so live traffic is not read back from disk; older ones are read from LevelDB.
   */
  tailEntries?: number;
  tailBytes?: number;
}

/** The in-memory tail's bounds: 4,096 entries of the default 1 KB packet limit fit its 4 MiB. */
const DEFAULT_TAIL_ENTRIES = 4096;
const DEFAULT_TAIL_BYTES = 4 * 1024 * 1024;

export const USER_PROPERTY_ID = 'mqttsn-id';
export const USER_PROPERTY_CLIENT = 'mqttsn-client';
export const USER_PROPERTY_RECEIVED = 'mqttsn-received';

/** Segments read per nextv(): each holds up to a whole batch (at most 256 KiB, store/group-commit.ts). */
const SEGMENT_SCAN_CHUNK = 16;
/**
 * Entries are read once, in key order: keep them out of LevelDB's block cache, and let one nextv() call
 * return a whole chunk (the default 16 KiB high-water mark would split a 256-entry read into several).
 */
const SCAN_OPTIONS = {
  keyEncoding: 'buffer',
  valueEncoding: 'buffer',
  ...{ fillCache: false, highWaterMarkBytes: 256 * 1024 }, // classic-level options, passed through by sublevels
} as const;

interface OutboxEvents {
  /** A batch of appends is durable; `lastSeq` is the highest sequence number now readable. */
  committed: [lastSeq: number];
}

export class Outbox extends EventEmitter<OutboxEvents> implements OutboxStore {
  /** How long open() took to rebuild the in-memory index from disk, in ms. */
  readonly indexRebuildMs: number;
  /**
   * The highest sequence number assigned before this open: a message at or below it was stored by an
   * earlier process, which may have sent it to the broker before it stopped (the uplink sets DUP on it).
   */
  readonly lastSeqAtOpen: number;
  private readonly writer: GroupCommit;
  private readonly maxMessages: number;
  private readonly maxBytes: number;
  private readonly ttlMs: number;
  private readonly whenFull: FullPolicy;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly gatewayId: string;
  private readonly fullEpisode: EpisodeLog;
  private readonly ttlEpisode: EpisodeLog;
  private readonly counters = {
    dropQuota: 0,
    dropTtl: 0,
    dropInvalid: 0,
    rejected: 0,
    appended: 0,
    acked: 0,
  };
  private writeErrors = 0;
  private readonly writeEpisode: EpisodeLog;
  private writeFailure: Error | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelay: number;
  private recovering: Promise<unknown> | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private closed = false;
  /**
   * The newest entries, as appended (store/tail.ts): every live entry with seq >= tail.from is here.
   * read() serves from it once its cursor reaches tail.from, and never past committedSeq.
   */
  private readonly tail: Tail;
  /** Highest sequence number whose batch is on disk. */
  private committedSeq: number;
  /** The running clock (see elapsed()) read on the monotonic clock at open. */
  private readonly openedAtMonotonic: number;
  private lastCheckpoint: number;

  private constructor(
    private readonly db: Store,
    private readonly entries: OutboxSublevel,
    private readonly meta: MetaSublevel,
    private readonly index: LiveIndex,
    private readonly segments: SegmentTable,
    private lastAssignedSeq: number,
    rebuildMs: number,
    private readonly elapsedAtOpen: number,
    private readonly options: OutboxOptions,
  ) {
    super();
    this.indexRebuildMs = rebuildMs;
    this.lastSeqAtOpen = lastAssignedSeq;
    this.gatewayId = options.gatewayId;
    this.logger = options.logger;
    this.maxMessages = options.maxMessages ?? OUTBOX_DEFAULTS.maxMessages;
    this.maxBytes = options.maxBytes ?? OUTBOX_DEFAULTS.maxBytes;
    this.ttlMs = options.ttlMs ?? 0;
    this.whenFull = options.whenFull ?? 'reject';
    this.clock = clockOf(options);
    this.openedAtMonotonic = this.clock.now();
    this.lastCheckpoint = elapsedAtOpen;
    this.tail = new Tail(
      options.tailEntries ?? DEFAULT_TAIL_ENTRIES,
      options.tailBytes ?? DEFAULT_TAIL_BYTES,
      lastAssignedSeq + 1,
    );
    this.committedSeq = lastAssignedSeq;
    this.writer = new GroupCommit(
      db,
      entries,
      goneSublevel(db),
      meta,
      segments,
      (seq) => index.has(seq),
      (puts, err) => this.onBatchWritten(puts, err),
      (err) => this.onWriteFailed(err),
      () => this.onWriteRecovered(),
      () => this.elapsed(),
    );
    this.retryDelay = options.retryMs?.initial ?? 250;
    this.writeEpisode = new EpisodeLog(
      this.logger,
      'outbox: cannot write to the data dir; devices get PUBACK "congestion", retrying',
      'outbox: writing to the data dir works again',
      () => this.clock.now(),
      'error',
    );
    const fullAction = this.whenFull === 'reject' ? 'rejecting new messages' : 'dropping oldest messages';
    this.fullEpisode = new EpisodeLog(
      this.logger,
      `outbox full, ${fullAction}`,
      `outbox has room again, ended ${fullAction}`,
      () => this.clock.now(),
    );
    this.ttlEpisode = new EpisodeLog(
      this.logger,
      'outbox dropping expired messages (ttl)',
      'outbox stopped dropping expired messages',
      () => this.clock.now(),
    );
    if (this.ttlMs > 0) {
      const interval = options.ttlSweepIntervalMs ?? Math.min(Math.max(this.ttlMs / 2, 100), 60_000);
      this.sweepTimer = setInterval(() => {
        this.sweepExpired();
        this.checkpointElapsed();
      }, interval).unref();
    }
  }

  /** Open the outbox in `db`, rebuilding the in-memory index from what is on disk. */
  static async open(db: Store, options: OutboxOptions): Promise<Outbox> {
    const entries = outboxSublevel(db);
    const meta = metaSublevel(db);
    const started = performance.now();
    // The running clock goes on from where it was at the last checkpoint: time the gateway was off, and
    // wall-clock jumps, do not age messages. Births are never later than the checkpoint written with them.
    const storedElapsed = await meta.get(OUTBOX_ELAPSED_META_KEY);
    const elapsedAtOpen = storedElapsed === undefined ? 0 : storedElapsed.readDoubleBE(0);
    const index = new LiveIndex();
    const segments = new SegmentTable();
    const allGone: Segment[] = [];
    const goneBits = await loadGoneBits(db);
    const iterator = entries.iterator(SCAN_OPTIONS);
    try {
      for (;;) {
        const chunk = await iterator.nextv(SEGMENT_SCAN_CHUNK);
        if (chunk.length === 0) break;
        for (const [key, value] of chunk) {
          const start = readSeq(key);
          const records = segmentRecords(value);
          const segment = new Segment(start, records.length, goneBits.get(start));
          segments.add(segment);
          if (segment.allGone) allGone.push(segment);
          // A record without a birth (format 1, or malformed) ages from now; read() drops a malformed one.
          for (let i = 0; i < records.length; i++) {
            if (segment.gone[i >> 3]! & (1 << (i & 7))) continue;
            const record = records[i]!;
            index.add(
              start + i,
              record.length,
              Math.min(recordBornAt(record) ?? elapsedAtOpen, elapsedAtOpen),
            );
          }
        }
      }
    } finally {
      await iterator.close();
    }
    const stored = await meta.get(OUTBOX_SEQ_META_KEY);
    const highWaterMark = stored === undefined ? 0 : readSeq(stored);
    const lastOnDisk = index.newestSeq() ?? 0;
    const rebuildMs = performance.now() - started;
    const outbox = new Outbox(
      db,
      entries,
      meta,
      index,
      segments,
      Math.max(highWaterMark, lastOnDisk),
      rebuildMs,
      elapsedAtOpen,
      options,
    );
    for (const segment of allGone) outbox.writer.deleteLater(segment);
    options.logger.info(
      {
        messages: index.count,
        segments: segments.size,
        bytes: index.bytes,
        lastSeq: outbox.lastSeq,
        rebuildMs: Math.round(rebuildMs),
      },
      'outbox opened',
    );
    return outbox;
  }

  /** The highest sequence number assigned so far (0 for a brand-new outbox). */
  get lastSeq(): number {
    return this.lastAssignedSeq;
  }

  get stats(): OutboxStats {
    const oldest = this.index.oldest();
    return {
      messages: this.index.count,
      bytes: this.index.bytes,
      // The age is monotonic; shown as the wall-clock time it corresponds to now.
      oldestReceivedAt:
        oldest === undefined ? null : this.clock.wallNow() - (this.elapsed() - oldest.receivedAt),
      dropped: {
        quota: this.counters.dropQuota,
        ttl: this.counters.dropTtl,
        invalid: this.counters.dropInvalid,
      },
      rejected: this.counters.rejected,
      appended: this.counters.appended,
      acked: this.counters.acked,
      batches: this.writer.stats.batches,
      syncBatches: this.writer.stats.syncBatches,
      syncedMessages: this.writer.stats.syncedPuts,
      gather: { ...this.writer.gatherStats },
      tail: { entries: this.tail.size, bytes: this.tail.bytes },
      writeErrors: this.writeErrors,
      ...(this.writeFailure === undefined
        ? {}
        : { writeFailing: `cannot write to the data dir: ${this.writeFailure.message}` }),
    };
  }

  /**
   * Queue a message. Returns 'rejected' (synchronously) when it does not fit under the 'reject' policy,
   * or after close(); then `onCommitted` is never called. Otherwise `onCommitted` (if given) fires once the message is on
   * disk — or with an error if the write failed, in which case the message is gone.
   */
  append(message: OutboxMessage, onCommitted?: CommitCallback): AppendResult {
    if (this.closed) return 'rejected';
    const receivedAt = this.clock.wallNow();
    const bornAt = this.elapsed();
    const seq = this.lastAssignedSeq + 1;
    const userProperties = {
      [USER_PROPERTY_ID]: `${this.gatewayId}:${seq}`,
      [USER_PROPERTY_CLIENT]: message.clientId,
      [USER_PROPERTY_RECEIVED]: isoTime(receivedAt),
    };
    const { topic, payload, retain } = message;
    const encoded = encodeRecordLayout({ topic, payload, retain, receivedAt, bornAt, userProperties });
    const record = encoded.record;
    if (this.ttlMs > 0) this.expireOldest(bornAt);
    if (!this.makeRoomFor(record.length)) return 'rejected';
    this.lastAssignedSeq = seq;
    this.index.add(seq, record.length, bornAt);
    this.counters.appended++;
    this.writer.put(seq, record, onCommitted);
    // The tail holds the record itself (the bytes the uplink sends), as read() would from disk.
    this.tail.push(seq, entryOfLayout(seq, encoded));
    return 'queued';
  }

  /**
   * Up to `limit` committed entries with seq > afterSeq, in order. Entries already acknowledged or
   * dropped (whose delete may not be written yet) and expired ones are skipped.
   */
  async read(afterSeq: number, limit: number): Promise<OutboxEntry[]> {
    const found: OutboxEntry[] = [];
    if (limit <= 0 || this.index.count === 0) return found;
    if (this.recovering !== undefined) await this.recovering; // the database is being reopened
    const now = this.elapsed();
    if (afterSeq + 1 >= this.tail.from) return this.readTail(afterSeq, limit, now);
    // From the segment holding the next entry: a segment is read whole and its messages picked out.
    const from = this.segments.scanStart(afterSeq + 1);
    const iterator = this.entries.iterator({ ...SCAN_OPTIONS, gte: seqKey(from) });
    try {
      while (found.length < limit) {
        const chunk = await iterator.nextv(SEGMENT_SCAN_CHUNK);
        if (chunk.length === 0) break;
        for (const [key, value] of chunk) {
          const start = readSeq(key);
          const records = segmentRecords(value);
          for (let i = 0; i < records.length && found.length < limit; i++) {
            const seq = start + i;
            if (seq <= afterSeq || !this.index.has(seq)) continue;
            const entry = this.decode(seq, records[i]!);
            if (entry === undefined) continue;
            if (this.isExpiredSeq(seq, now)) {
              this.drop(seq, 'ttl');
              continue;
            }
            found.push(entry);
          }
          if (found.length >= limit) break;
        }
      }
    } finally {
      await iterator.close();
    }
    return found;
  }

  /** read() from memory: committed entries of the tail after `afterSeq`, in order. */
  private readTail(afterSeq: number, limit: number, now: number): OutboxEntry[] {
    const found: OutboxEntry[] = [];
    for (const [seq, entry] of this.tail) {
      if (seq <= afterSeq) continue;
      if (seq > this.committedSeq || found.length >= limit) break;
      if (this.isExpiredSeq(seq, now)) {
        this.drop(seq, 'ttl');
        continue;
      }
      found.push(entry);
    }
    return found;
  }

  /** Whether `seq` is still waiting for delivery (not acknowledged, dropped or expired). */
  isLive(seq: number): boolean {
    return this.index.has(seq);
  }

  /** The broker has the message: forget it now, delete it with the next batch. False if not live. */
  ack(seq: number): boolean {
    if (this.index.remove(seq) < 0) return false;
    this.tail.delete(seq);
    this.counters.acked++;
    // After close() the db may be gone: the entry is then sent again after a restart (at-least-once).
    if (!this.closed) this.writer.gone(seq);
    return true;
  }

  /**
   * Moved elsewhere (the dead letters): forget it now, so nothing reads it again, and delete it from
   * disk only once `kept` (the copy's write) resolves, so a crash in between keeps it. False if not live.
   */
  forget(seq: number, kept: Promise<unknown>): boolean {
    if (this.index.remove(seq) < 0) return false;
    this.tail.delete(seq);
    kept.then(
      () => {
        if (!this.closed) this.writer.gone(seq);
      },
      () => undefined, // not copied: it stays on disk and is tried again after a restart
    );
    return true;
  }

  /** Resolves once everything queued so far (appends and deletes) is written; callbacks have fired. */
  flush(): Promise<void> {
    return this.writer.idle();
  }

  /** Write everything queued (appends and deletes) and stop the TTL sweep. Does not close the db. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.sweepTimer !== undefined) clearInterval(this.sweepTimer);
    clearTimeout(this.retryTimer);
    await this.writer.idle();
    // A sweep's checkpoint may still be queued or settling, with the running clock of when it started:
    // let it end, then store the clock of the close, so the time this process ran ages the messages after
    // a restart. The database writer's idle() is urgent: no gather window holds either write.
    const storeWriter = writerFor(this.db);
    await storeWriter.idle();
    await this.checkpointing;
    this.checkpointElapsed(true);
    await storeWriter.idle();
    await this.checkpointing;
    this.writer.detach();
    this.fullEpisode.end(this.statsForLog());
    this.ttlEpisode.end(this.statsForLog());
  }

  /** Apply the quota for a new record of `size` bytes; false when it must be rejected. */
  private makeRoomFor(size: number): boolean {
    const fits = (): boolean =>
      this.index.count < this.maxMessages && this.index.bytes + size <= this.maxBytes;
    if (fits()) {
      if (this.fullEpisode.active) this.fullEpisode.end(this.statsForLog());
      return true;
    }
    // A record larger than the whole byte quota can never fit: refuse it rather than empty the outbox.
    if (this.whenFull === 'reject' || size > this.maxBytes) {
      this.counters.rejected++;
      this.fullEpisode.note(1, { ...this.statsForLog(), policy: this.whenFull });
      return false;
    }
    let dropped = 0;
    while (!fits()) {
      const oldest = this.index.oldest();
      if (oldest === undefined) break;
      this.drop(oldest.seq, 'quota');
      dropped++;
    }
    this.fullEpisode.note(dropped, { ...this.statsForLog(), policy: this.whenFull });
    return true;
  }

  /**
   * The outbox's running clock: milliseconds it has been open, summed over restarts (monotonic while
   * running, resumed from the stored checkpoint at open). Births and ages are measured on it.
   */
  private elapsed(): number {
    return this.elapsedAtOpen + (this.clock.now() - this.openedAtMonotonic);
  }

  private checkpointing: Promise<void> | undefined;

  /**
   * Store the running clock, so time spent running without appends still ages messages after a restart
   * (every batch with appends stores it too). A failed checkpoint only makes ages shorter: harmless.
   */
  private checkpointElapsed(final = false): void {
    const now = this.elapsed();
    if (this.checkpointing !== undefined) return;
    // Not more than one a second while running; the last one, at close, whatever the time since.
    if (!final && now - this.lastCheckpoint < 1000) return;
    if (now === this.lastCheckpoint) return;
    const value = Buffer.allocUnsafe(8);
    value.writeDoubleBE(now, 0);
    // Through the database's one writer, like every other write.
    const written = new Promise<void>((resolve, reject) =>
      writerFor(this.db).write(
        [{ type: 'put', sublevel: this.meta, key: OUTBOX_ELAPSED_META_KEY, value }],
        (err) => (err === undefined ? resolve() : reject(err)),
      ),
    );
    this.checkpointing = written
      .then(
        () => {
          this.lastCheckpoint = Math.max(this.lastCheckpoint, now);
        },
        () => undefined,
      )
      .finally(() => {
        this.checkpointing = undefined;
      });
  }

  private isExpired(bornAt: number, now: number): boolean {
    return this.ttlMs > 0 && now - bornAt > this.ttlMs;
  }

  private isExpiredSeq(seq: number, now: number): boolean {
    if (this.ttlMs <= 0) return false;
    const bornAt = this.index.receivedAt(seq);
    return bornAt !== undefined && this.isExpired(bornAt, now);
  }

  /** Drop expired entries from the old end; entries out of time order are caught by read(). */
  private expireOldest(now: number): number {
    let expired = 0;
    for (let oldest = this.index.oldest(); oldest !== undefined; oldest = this.index.oldest()) {
      if (!this.isExpired(oldest.receivedAt, now)) break;
      this.drop(oldest.seq, 'ttl');
      expired++;
    }
    return expired;
  }

  private sweepExpired(): void {
    const expired = this.expireOldest(this.elapsed());
    if (expired === 0 && this.ttlEpisode.active) this.ttlEpisode.end(this.statsForLog());
  }

  private drop(seq: number, reason: 'quota' | 'ttl' | 'invalid'): void {
    if (this.index.remove(seq) < 0) return;
    this.tail.delete(seq);
    if (!this.closed) this.writer.gone(seq);
    if (reason === 'quota') this.counters.dropQuota++;
    else if (reason === 'invalid') this.counters.dropInvalid++;
    else {
      this.counters.dropTtl++;
      this.ttlEpisode.note(1, { ...this.statsForLog(), ttlMs: this.ttlMs });
    }
  }

  private decode(seq: number, value: Buffer): OutboxEntry | undefined {
    const entry = entryOf(seq, value);
    // An unreadable record would block the queue forever: drop it, loudly.
    if (entry === undefined) {
      this.logger.error({ seq, format: value[0] }, 'outbox: dropping unreadable record');
      this.drop(seq, 'invalid');
    }
    return entry;
  }

  private onBatchWritten(puts: readonly PendingPut[], err: Error | undefined): void {
    if (err !== undefined) {
      // Counted and logged (once per episode) by onWriteFailed. Not on disk, so not in the outbox: the devices get no PUBACK and will retry.
      for (const put of puts) {
        this.index.remove(put.seq);
        this.tail.delete(put.seq);
      }
    }
    // Batches are written in order, so everything up to the last put of this one is settled.
    if (puts.length > 0) this.committedSeq = Math.max(this.committedSeq, puts[puts.length - 1]!.seq);
    for (const put of puts) {
      if (put.onCommitted === undefined) continue;
      try {
        put.onCommitted(err);
      } catch (callbackError) {
        this.logger.error({ err: callbackError, seq: put.seq }, 'outbox: commit callback threw');
      }
    }
    if (err === undefined && puts.length > 0) this.emit('committed', puts[puts.length - 1]!.seq);
  }

  /** A write failed: report it (one log line per episode), keep the deletes, retry with a backoff. */
  private onWriteFailed(err: Error): void {
    this.writeErrors++;
    this.writeFailure = err;
    this.writeEpisode.note(1, { err, ...this.statsForLog() });
    if (this.retryTimer !== undefined || this.closed) return;
    this.retryTimer = setTimeout(() => void this.retryWrites(), this.retryDelay).unref();
    this.retryDelay = Math.min(this.retryDelay * 2, this.options.retryMs?.max ?? 5000);
  }

  private onWriteRecovered(): void {
    this.writeFailure = undefined;
    this.retryDelay = this.options.retryMs?.initial ?? 250;
    this.writeEpisode.end({ writeErrors: this.writeErrors, ...this.statsForLog() });
  }

  private async retryWrites(): Promise<void> {
    this.retryTimer = undefined;
    if (this.closed) return;
    const recover = this.options.recover;
    // Reads wait while the database is reopened; the writer runs `recover` between two batches.
    const probe = this.writer.probe(
      recover === undefined
        ? undefined
        : () => {
            this.recovering = recover().finally(() => {
              this.recovering = undefined;
            });
            return this.recovering;
          },
    );
    await probe; // on failure onWriteFailed has scheduled the next retry
  }

  private statsForLog(): Record<string, unknown> {
    return {
      messages: this.index.count,
      bytes: this.index.bytes,
      maxMessages: this.maxMessages,
      maxBytes: this.maxBytes,
    };
  }
}

function clockOf(options: OutboxOptions): Clock {
  if (options.clock !== undefined) return options.clock;
  const now = options.now;
  return now === undefined ? systemClock : { now, wallNow: now };
}

/** The gone-bitmaps of partly acknowledged segments, by segment start (few: only the partial ones). */
async function loadGoneBits(db: Store): Promise<Map<number, Uint8Array>> {
  const bits = new Map<number, Uint8Array>();
  for await (const [key, value] of goneSublevel(db).iterator({
    keyEncoding: 'buffer',
    valueEncoding: 'buffer',
  }))
    bits.set(readSeq(key), value);
  return bits;
}
