/**
 * Group commit for the outbox: puts and deletes accumulate while one LevelDB batch is being written;
 * when it returns, the next batch takes everything that accumulated meanwhile. So a burst produces few
 * big batches and a lone message is written at once (after the current event-loop turn, so datagrams
 * read in the same turn share a batch) — no timer, no artificial delay.
 *
 * A batch is synced when any put in it has a waiter (a device waiting for its PUBACK). Deletes ride
 * along unsynced: a lost delete only means a duplicate after a crash, which at-least-once allows.
 * Every batch with puts also records the highest sequence number, atomically with the puts.
 */
import type { Store } from './db.js';
import { SEQ_KEY_BYTES, seqKey, writeSeq } from './seq-key.js';
import {
  OUTBOX_ELAPSED_META_KEY,
  OUTBOX_SEQ_META_KEY,
  type MetaSublevel,
  type OutboxSublevel,
} from './sublevels.js';

export type CommitCallback = (err?: Error) => void;

export interface PendingPut {
  seq: number;
  value: Buffer;
  onCommitted: CommitCallback | undefined;
}

export interface GroupCommitStats {
  batches: number;
  syncBatches: number;
  puts: number;
  deletes: number;
}

/** Called after each batch write with the puts it carried (err set when the write failed). */
export type BatchWrittenHook = (puts: readonly PendingPut[], err: Error | undefined) => void;

const BINARY = { keyEncoding: 'buffer', valueEncoding: 'buffer' } as const;

/** Consecutive sequence numbers at least this many are deleted as one range (one call, not one op each). */
const MIN_RANGE_DELETE = 16;

/**
 * Acknowledgements mostly come in order, so deletes form runs of consecutive sequence numbers; a run is
 * removed with one range delete, which LevelDB does off the main thread.
 */
export function splitIntoRuns(seqs: readonly number[]): { singles: number[]; runs: Array<[number, number]> } {
  const sorted = isAscending(seqs) ? seqs : [...seqs].sort((a, b) => a - b);
  const singles: number[] = [];
  const runs: Array<[number, number]> = [];
  let start = 0;
  for (let i = 1; i <= sorted.length; i++) {
    if (i < sorted.length && sorted[i] === sorted[i - 1]! + 1) continue;
    if (i - start >= MIN_RANGE_DELETE) runs.push([sorted[start]!, sorted[i - 1]!]);
    else for (let j = start; j < i; j++) singles.push(sorted[j]!);
    start = i;
  }
  return { singles, runs };
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

function isAscending(seqs: readonly number[]): boolean {
  for (let i = 1; i < seqs.length; i++) if (seqs[i]! <= seqs[i - 1]!) return false;
  return true;
}

export class GroupCommit {
  readonly stats: GroupCommitStats = { batches: 0, syncBatches: 0, puts: 0, deletes: 0 };
  private pendingPuts: PendingPut[] = [];
  private pendingDeletes: number[] = [];
  private writing = false;
  private scheduled = false;
  private idleWaiters: Array<() => void> = [];
  private probes: Array<{ resolve: (ok: boolean) => void; recover: (() => Promise<unknown>) | undefined }> =
    [];
  private failure: Error | undefined;
  /** The outbox sublevel's key prefix, so keys are built in one allocation and written via the root db. */
  private readonly keyPrefix: Buffer;

  constructor(
    private readonly db: Store,
    private readonly outbox: OutboxSublevel,
    private readonly meta: MetaSublevel,
    private readonly onBatchWritten: BatchWrittenHook,
    /** A write failed (its deletes stay queued; the owner retries with probe()). */
    private readonly onWriteFailed: (err: Error) => void,
    /** The first write that worked after failures. */
    private readonly onWriteRecovered: () => void,
    /** The outbox's running clock, stored with the appends so no birth is later than what is stored. */
    private readonly elapsed: () => number = () => 0,
  ) {
    this.keyPrefix = outbox.prefixKey(Buffer.alloc(0), 'buffer');
  }

  put(seq: number, value: Buffer, onCommitted: CommitCallback | undefined): void {
    this.pendingPuts.push({ seq, value, onCommitted });
    this.schedule();
  }

  delete(seq: number): void {
    this.pendingDeletes.push(seq);
    // While writes fail, deletes wait for the next batch of appends or probe(), not one failure each.
    if (this.failure === undefined) this.schedule();
  }

  get pending(): number {
    return this.pendingPuts.length + this.pendingDeletes.length;
  }

  /** Resolves once everything queued so far has been written. */
  idle(): Promise<void> {
    const settled = this.pendingPuts.length === 0 && (this.pendingDeletes.length === 0 || this.failing);
    if (!this.writing && !this.scheduled && settled) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private schedule(): void {
    if (this.writing || this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.writeNext();
    });
  }

  private fullKey(seq: number): Buffer {
    const key = Buffer.allocUnsafe(this.keyPrefix.length + SEQ_KEY_BYTES);
    this.keyPrefix.copy(key, 0);
    writeSeq(key, this.keyPrefix.length, seq);
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

  private async writeNext(): Promise<void> {
    if (this.writing) return;
    const probes = this.probes;
    if (this.pending === 0 && probes.length === 0) {
      this.wakeIdleWaiters();
      return;
    }
    this.writing = true;
    this.probes = [];
    for (const { recover } of probes) {
      try {
        await recover?.();
      } catch {
        // the write below tells
      }
    }
    const puts = this.pendingPuts;
    const deletes = this.pendingDeletes;
    this.pendingPuts = [];
    this.pendingDeletes = [];

    let putError: Error | undefined;
    let sync = probes.length > 0;
    let runs: Array<[number, number]> = [];
    try {
      // Puts before deletes: a delete always refers to a put in this batch or an earlier one.
      const batch = this.db.batch();
      for (const put of puts) {
        batch.put<Buffer, Buffer>(this.fullKey(put.seq), put.value, BINARY);
        if (put.onCommitted !== undefined) sync = true;
      }
      if (puts.length > 0) {
        const highWaterMark = seqKey(puts[puts.length - 1]!.seq);
        batch.put<string, Buffer>(OUTBOX_SEQ_META_KEY, highWaterMark, { sublevel: this.meta });
      }
      if (puts.length > 0 || probes.length > 0) {
        const elapsed = Buffer.allocUnsafe(8);
        elapsed.writeDoubleBE(this.elapsed(), 0);
        batch.put<string, Buffer>(OUTBOX_ELAPSED_META_KEY, elapsed, { sublevel: this.meta });
      }
      const split = splitIntoRuns(deletes);
      runs = split.runs;
      for (const seq of split.singles) batch.del<Buffer>(this.fullKey(seq), BINARY);
      await batch.write({ sync });
    } catch (err) {
      putError = asError(err);
    }
    this.stats.batches++;
    if (sync) this.stats.syncBatches++;
    if (putError === undefined) this.stats.puts += puts.length;
    // Devices hear back as soon as their batch is durable, before the range deletes run.
    this.onBatchWritten(puts, putError);

    // After the batch: every key in a run has its put in this batch or an earlier one.
    let writeError = putError;
    if (putError === undefined) {
      try {
        for (const [first, last] of runs) await this.outbox.clear({ gte: seqKey(first), lte: seqKey(last) });
        this.stats.deletes += deletes.length;
      } catch (err) {
        writeError = asError(err);
      }
    }
    if (writeError !== undefined) {
      // Acknowledged messages must not come back after a restart: their deletes stay queued until
      // written (deleting twice is harmless). They go with the next batch or the owner's probe().
      this.pendingDeletes = deletes.concat(this.pendingDeletes);
      this.failure = writeError;
      this.onWriteFailed(writeError);
    } else if (this.failure !== undefined) {
      this.failure = undefined;
      this.onWriteRecovered();
    }
    for (const { resolve } of probes) resolve(writeError === undefined);
    this.writing = false;
    if (this.failure !== undefined && this.pendingPuts.length === 0) {
      // Failing with only deletes left: they wait for the owner's probe() instead of looping.
      this.wakeIdleWaiters();
      if (this.probes.length > 0) void this.writeNext();
      return;
    }
    // Whatever accumulated during the write goes out now, as one batch.
    void this.writeNext();
  }

  private wakeIdleWaiters(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const wake of waiters) wake();
  }
}
