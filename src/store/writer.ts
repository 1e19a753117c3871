/**
 * The one writer of a store's database: every batch written to it goes through here, one at a time.
 *
 * Modules hand it operations (BatchWriter: sessions, downlink queues) or register as a part that fills
 * each batch with its own operations (the outbox's group commit). While one batch is being written and
 * synced, everything that arrives waits and goes out together in the next one: one fsync for a burst of
 * device messages, session saves and downlink puts alike, and never two writes competing for the disk.
 *
 * A batch is synced when anything in it waits for durability. The first batch after idle waits for the
 * end of the current event-loop turn, so datagrams read in the same turn share it; there is no timer.
 */
import type { Store } from './db.js';

type AnySublevel = { readonly prefix: string };

/** A put or delete on one of the store's sublevels (batches across sublevels are atomic). */
export type Operation =
  | { type: 'put'; sublevel: AnySublevel; key: Buffer | string; value: Buffer | string | object }
  | { type: 'del'; sublevel: AnySublevel; key: Buffer | string };

export type Done = (err?: Error) => void;

/** LevelDB's chained batch of the store. */
export type Batch = ReturnType<Store['batch']>;

/** What a part contributes to one batch; taken out of the part before the batch is built. */
export interface PartWrite {
  /** Whether the batch must be synced for it. */
  sync: boolean;
  /** Adds its operations to the batch. */
  apply(batch: Batch): void;
  /** Runs once the batch is written, or with the error when it failed (then nothing of it is written). */
  settle(err: Error | undefined): void;
}

/** A module that puts its own operations into each batch (the outbox's group commit). */
export interface BatchPart {
  /** Whether it has something for the next batch. */
  hasWork(): boolean;
  /** Runs between two batches, before the next is built: e.g. reopening the database after a full disk. */
  beforeWrite?(): Promise<void>;
  /** Its contribution to the next batch (undefined: nothing after all). */
  take(): PartWrite | undefined;
}

const writers = new WeakMap<Store, StoreWriter>();

/** The writer of `db` (made on first use): whoever writes to a store gets the same one. */
export function writerFor(db: Store): StoreWriter {
  let writer = writers.get(db);
  if (writer === undefined) {
    writer = new StoreWriter(db);
    writers.set(db, writer);
  }
  return writer;
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

export class StoreWriter {
  /** Batches written so far. */
  batches = 0;
  private readonly parts = new Set<BatchPart>();
  private pending: Operation[] = [];
  private waiters: Done[] = [];
  /** idle() callers waiting for the operations queued before them. */
  private pendingIdle: Array<() => void> = [];
  private running = false;
  private scheduled = false;
  /** idle() callers with nothing of theirs queued: they wait for the batch being written, not for quiet. */
  private afterCurrent: Array<() => void> = [];

  constructor(private readonly db: Store) {}

  register(part: BatchPart): void {
    this.parts.add(part);
  }

  unregister(part: BatchPart): void {
    this.parts.delete(part);
  }

  /** Queues operations; `done` runs once they are synced to disk (or failed: then none is written). */
  write(operations: readonly Operation[], done?: Done): void {
    for (const op of operations) this.pending.push(op);
    if (done) this.waiters.push(done);
    this.kick();
  }

  /** Resolves when every operation queued with write() so far is written (or failed). */
  idle(): Promise<void> {
    if (this.pending.length === 0 && this.waiters.length === 0 && !this.running && !this.scheduled)
      return Promise.resolve();
    return new Promise((resolve) => {
      if (this.pending.length === 0 && this.waiters.length === 0) this.afterCurrent.push(resolve);
      else this.pendingIdle.push(resolve);
    });
  }

  /** Something is waiting to be written: start a batch unless one is being written (then it goes next). */
  kick(): void {
    if (this.running || this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.run();
    });
  }

  private hasWork(): boolean {
    if (this.pending.length > 0 || this.waiters.length > 0 || this.pendingIdle.length > 0) return true;
    for (const part of this.parts) if (part.hasWork()) return true;
    return false;
  }

  private async run(): Promise<void> {
    if (this.running) return;
    this.running = true;
    while (this.hasWork()) {
      for (const part of this.parts) if (part.hasWork()) await part.beforeWrite?.();
      const operations = this.pending;
      const waiters = this.waiters;
      const idle = this.pendingIdle;
      this.pending = [];
      this.waiters = [];
      this.pendingIdle = [];
      let sync = waiters.length > 0;
      // Taken before anything can throw: whatever happens below, every part hears how its write ended.
      const taken: PartWrite[] = [];
      for (const part of this.parts) {
        const write = part.hasWork() ? part.take() : undefined;
        if (write === undefined) continue;
        if (write.sync) sync = true;
        taken.push(write);
      }
      let failure: Error | undefined;
      try {
        const batch = this.db.batch();
        for (const op of operations) addOperation(batch, op);
        for (const write of taken) write.apply(batch);
        await batch.write({ sync });
        this.batches++;
      } catch (err) {
        failure = asError(err);
      }
      for (const write of taken) write.settle(failure);
      for (const done of waiters) done(failure);
      for (const resolve of idle) resolve();
      this.wakeAfterCurrent();
    }
    this.running = false;
    this.wakeAfterCurrent();
  }

  private wakeAfterCurrent(): void {
    const waiting = this.afterCurrent;
    this.afterCurrent = [];
    for (const resolve of waiting) resolve();
  }
}

// One cast each: abstract-level's batch typing cannot express operations on mixed sublevels.
function addOperation(batch: Batch, op: Operation): void {
  const options = { sublevel: op.sublevel } as unknown as Record<string, never>;
  if (op.type === 'put') batch.put(op.key as string, op.value as string, options);
  else batch.del(op.key as string, options);
}
