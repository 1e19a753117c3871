/**
 * Group commit for the outbox: appends and acknowledgements accumulate while one LevelDB batch is being
 * written; when it returns, the next batch takes everything that accumulated meanwhile. So a burst
 * produces few big batches and a lone message is written at once (store/writer.ts says when). It tells the writer how many devices each batch
 * answers and how many wait now, which is what the writer's gather window (store/gather-window.ts)
 * counts to hold the next sync for the devices just answered; a flush or a probe is never held.
 *
 * The appends of a batch become one record, a segment (store/segments.ts), not one record each. What is
 * gone from a segment is written as its bitmap; a segment with nothing left is deleted. A batch is synced
 * when any append in it has a waiter (a device waiting for its PUBACK). Acknowledgements ride along
 * unsynced: a lost one only means a duplicate after a crash, which at-least-once allows. So they do not
 * get a batch of their own while appends keep coming: they wait for the next one (deferrable(), at most
 * DEFER_MAX_GONE of them and StoreWriter's DEFER_MS). Every batch with
 * appends also records the highest sequence number, atomically with them.
 */
import type { CommitCallback } from './ports.js';

export type { CommitCallback } from './ports.js';
import type { Store } from './db.js';
import {
  writerFor,
  type Batch,
  type BatchPart,
  type GatherStats,
  type PartWrite,
  type StoreWriter,
} from './writer.js';
import type { SegmentTable } from './segments.js';
import { Segment, encodeSegment } from './segments.js';
import { SEQ_KEY_BYTES, seqKey, writeSeq } from './seq-key.js';
import {
  OUTBOX_ELAPSED_META_KEY,
  OUTBOX_SEQ_META_KEY,
  type GoneSublevel,
  type MetaSublevel,
  type OutboxSublevel,
} from './sublevels.js';

export interface PendingPut {
  seq: number;
  value: Buffer;
  onCommitted: CommitCallback | undefined;
}

export interface GroupCommitStats {
  batches: number;
  syncBatches: number;
  puts: number;
  /** Appends written in synced batches: ÷ syncBatches, the messages each fsync carried. */
  syncedPuts: number;
  deletes: number;
}

/** Called after each batch write with the puts it carried (err set when the write failed). */
export type BatchWrittenHook = (puts: readonly PendingPut[], err: Error | undefined) => void;

/**
 * Acknowledgement marks deferred at most (StoreWriter's DEFER_MS): beyond it they are written at once,
 * so a replay that acknowledges thousands a second still loses at most this many marks in a crash.
 */
const DEFER_MAX_GONE = 32;

/** A segment holds at most this many record bytes (a larger batch is split), so one read stays small. */
const SEGMENT_MAX_BYTES = 256 * 1024;

export class GroupCommit implements BatchPart {
  readonly stats: GroupCommitStats = { batches: 0, syncBatches: 0, puts: 0, syncedPuts: 0, deletes: 0 };
  private pendingPuts: PendingPut[] = [];
  /** Of pendingPuts, those with a device waiting for the commit (what the writer's gather counts). */
  private waitingPuts = 0;
  /** Segments with messages gone since their last write: their bitmap (or their deletion) is due. */
  private dirty = new Set<Segment>();
  /** Messages marked gone since the last batch was taken: how many acknowledgements are deferred. */
  private goneSinceTake = 0;
  /** A batch with this writer's operations is being written. */
  private inFlight = false;
  private readonly writer: StoreWriter;
  private idleWaiters: Array<() => void> = [];
  private probes: Array<{ resolve: (ok: boolean) => void; recover: (() => Promise<unknown>) | undefined }> =
    [];
  private failure: Error | undefined;
  /**
   * The sublevels' key prefixes and the meta keys in full, so keys are built in one allocation and
   * written to the root db with no options (store/db.ts says why none).
   */
  private readonly keyPrefix: Buffer;
  private readonly goneKeyPrefix: Buffer;
  private readonly seqMetaKey: Buffer;
  private readonly elapsedMetaKey: Buffer;

  constructor(
    db: Store,
    outbox: OutboxSublevel,
    gone: GoneSublevel,
    meta: MetaSublevel,
    /** The stored segments (built from disk at open); this writer adds and removes them. */
    private readonly segments: SegmentTable,
    /** Whether a message is still live: one dropped before its batch was written is stored as gone. */
    private readonly isLive: (seq: number) => boolean,
    private readonly onBatchWritten: BatchWrittenHook,
    /** A write failed (its acknowledgements stay queued; the owner retries with probe()). */
    private readonly onWriteFailed: (err: Error) => void,
    /** The first write that worked after failures. */
    private readonly onWriteRecovered: () => void,
    /** The outbox's running clock, stored with the appends so no birth is later than what is stored. */
    private readonly elapsed: () => number = () => 0,
  ) {
    this.keyPrefix = outbox.prefixKey(Buffer.alloc(0), 'buffer');
    this.goneKeyPrefix = gone.prefixKey(Buffer.alloc(0), 'buffer');
    this.seqMetaKey = meta.prefixKey(Buffer.from(OUTBOX_SEQ_META_KEY), 'buffer');
    this.elapsedMetaKey = meta.prefixKey(Buffer.from(OUTBOX_ELAPSED_META_KEY), 'buffer');
    this.writer = writerFor(db);
    this.writer.register(this);
  }

  /** How the database writer's gather windows went (store/gather-window.ts). */
  get gatherStats(): GatherStats {
    return this.writer.gatherStats;
  }

  /** Leaves the database's writer (after close, once idle). */
  detach(): void {
    this.writer.unregister(this);
  }

  put(seq: number, value: Buffer, onCommitted: CommitCallback | undefined): void {
    this.pendingPuts.push({ seq, value, onCommitted });
    if (onCommitted !== undefined) this.waitingPuts++;
    this.schedule();
  }

  /**
   * A message is gone (acknowledged, dropped, moved): its segment's bitmap, or the segment's deletion,
   * goes with the next batch. A message whose batch is not written yet is stored as gone by that batch.
   */
  gone(seq: number): void {
    const segment = this.segments.find(seq);
    if (segment === undefined || !segment.markGone(seq)) return;
    this.dirty.add(segment);
    this.goneSinceTake++;
    // While writes fail, these wait for the next batch of appends or probe(), not one failure each.
    if (this.failure === undefined) this.schedule();
  }

  /** Segments found fully gone at open (a crash before their deletion was written). */
  deleteLater(segment: Segment): void {
    this.dirty.add(segment);
    this.schedule();
  }

  /** Resolves once everything queued so far has been written. */
  idle(): Promise<void> {
    if (!this.inFlight && !this.hasWork()) return Promise.resolve();
    const idle = new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    this.schedule(); // someone waits: no gather window holds the writes
    return idle;
  }

  private schedule(): void {
    this.writer.kick();
  }

  private fullKey(prefix: Buffer, seq: number): Buffer {
    const key = Buffer.allocUnsafe(prefix.length + SEQ_KEY_BYTES);
    prefix.copy(key, 0);
    writeSeq(key, prefix.length, seq);
    return key;
  }

  /**
   * Retry after write failures (a full disk): writes what is pending — or, with nothing pending, a
   * synced checkpoint, to learn whether the disk takes writes again — after `recover` (the owner's
   * chance to reopen a database LevelDB keeps in its error state). Resolves whether it worked.
   */
  probe(recover?: () => Promise<unknown>): Promise<boolean> {
    return new Promise((resolve) => {
      this.probes.push({ resolve, recover });
      this.schedule();
    });
  }

  /** Whether the last write failed (and none succeeded since). */
  get failing(): boolean {
    return this.failure !== undefined;
  }

  /** The appends of one batch as segments of at most SEGMENT_MAX_BYTES, gone messages marked. */
  private segmentsOf(puts: readonly PendingPut[]): Array<{ segment: Segment; records: Buffer[] }> {
    const made: Array<{ segment: Segment; records: Buffer[] }> = [];
    for (let from = 0; from < puts.length;) {
      let to = from;
      let bytes = 0;
      while (to < puts.length && (to === from || bytes + puts[to]!.value.length <= SEGMENT_MAX_BYTES))
        bytes += puts[to++]!.value.length;
      const segment = new Segment(puts[from]!.seq, to - from);
      const records: Buffer[] = [];
      for (let i = from; i < to; i++) {
        records.push(puts[i]!.value);
        if (!this.isLive(puts[i]!.seq)) segment.markGone(puts[i]!.seq);
      }
      made.push({ segment, records });
      from = to;
    }
    return made;
  }

  hasWork(): boolean {
    // Failing with only acknowledgements left: they wait for the owner's probe() instead of looping.
    return this.pendingPuts.length > 0 || this.probes.length > 0 || (this.dirty.size > 0 && !this.failing);
  }

  waiting(): number {
    return this.waitingPuts;
  }

  /** A probe (the retry after failures) or an idle() caller (flush, close) is not held by a gather. */
  urgent(): boolean {
    return this.probes.length > 0 || this.idleWaiters.length > 0;
  }

  /**
   * Acknowledgement marks alone wait for the next batch (StoreWriter, DEFER_MS), but only up to
   * DEFER_MAX_GONE of them: what a crash can lose stays a few messages, as when each went at once.
   */
  deferrable(): boolean {
    return (
      this.pendingPuts.length === 0 &&
      this.probes.length === 0 &&
      this.idleWaiters.length === 0 &&
      this.goneSinceTake < DEFER_MAX_GONE
    );
  }

  /** Between two batches: the probes' chance to reopen the database (recoverStore). */
  beforeWrite(): Promise<void> | undefined {
    return this.probes.length === 0 ? undefined : this.recoverForProbes();
  }

  private async recoverForProbes(): Promise<void> {
    for (const { recover } of this.probes) {
      try {
        await recover?.();
      } catch {
        // the write tells
      }
    }
  }

  take(): PartWrite {
    const probes = this.probes;
    const puts = this.pendingPuts;
    const dirty = this.dirty;
    this.probes = [];
    const answered = this.waitingPuts;
    this.pendingPuts = [];
    this.waitingPuts = 0;
    this.dirty = new Set();
    this.goneSinceTake = 0;
    this.inFlight = true;
    let sync = probes.length > 0;
    for (const put of puts) if (put.onCommitted !== undefined) sync = true;
    const added: Segment[] = [];
    const deleted: Segment[] = [];
    const apply = (batch: Batch): void => {
      for (const { segment, records } of this.segmentsOf(puts)) {
        // Sequence numbers are consecutive in a batch (every append gets the next one), so a segment
        // is its first sequence number and its records.
        if (segment.allGone) continue; // all dropped meanwhile (quota, TTL): nothing to keep
        batch.put(this.fullKey(this.keyPrefix, segment.start), encodeSegment(records));
        this.segments.add(segment);
        added.push(segment);
        if (segment.goneCount > 0) dirty.add(segment);
      }
      if (puts.length > 0) {
        const highWaterMark = seqKey(puts[puts.length - 1]!.seq);
        batch.put(this.seqMetaKey, highWaterMark);
      }
      if (puts.length > 0 || probes.length > 0) {
        const elapsed = Buffer.allocUnsafe(8);
        elapsed.writeDoubleBE(this.elapsed(), 0);
        batch.put(this.elapsedMetaKey, elapsed);
      }
      for (const segment of dirty) {
        if (segment.removed) continue;
        const goneKey = this.fullKey(this.goneKeyPrefix, segment.start);
        if (segment.allGone) {
          batch.del(this.fullKey(this.keyPrefix, segment.start));
          batch.del(goneKey);
          deleted.push(segment);
        } else batch.put(goneKey, Buffer.from(segment.gone));
      }
    };
    const settle = (writeError: Error | undefined): void => {
      this.inFlight = false;
      this.stats.batches++;
      if (sync) this.stats.syncBatches++;
      if (writeError === undefined) {
        this.stats.puts += puts.length;
        if (sync) this.stats.syncedPuts += puts.length;
        this.stats.deletes += deleted.length;
        for (const segment of deleted) this.segments.remove(segment);
      } else for (const segment of added) this.segments.remove(segment);
      // Devices hear back as soon as their batch is durable.
      this.onBatchWritten(puts, writeError);
      if (writeError !== undefined) {
        // Acknowledged messages must not come back after a restart: their segments stay due until
        // written (a bitmap or a delete twice is harmless). They go with the next batch or probe().
        for (const segment of dirty) if (!segment.removed) this.dirty.add(segment);
        this.failure = writeError;
        this.onWriteFailed(writeError);
      } else if (this.failure !== undefined) {
        this.failure = undefined;
        this.onWriteRecovered();
      }
      for (const { resolve } of probes) resolve(writeError === undefined);
      if (!this.hasWork()) this.wakeIdleWaiters();
    };
    return { sync, apply, settle, answered };
  }

  private wakeIdleWaiters(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const wake of waiters) wake();
  }
}
