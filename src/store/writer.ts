/**
 * The one writer of a store's database: every batch written to it goes through here, one at a time.
 *
 * Modules hand it operations (BatchWriter: sessions, downlink queues) or register as a part that fills
 * each batch with its own operations (the outbox's group commit). While one batch is being written and
 * synced, everything that arrives waits and goes out together in the next one: one fsync for a burst of
 * device messages, session saves and downlink puts alike, and never two writes competing for the disk.
 *
 * A batch is synced when anything in it waits for durability. The first batch after idle waits for the
 * end of the current event-loop turn, so datagrams read in the same turn share it — unless the last
 * synced batch answered at most one device and a device waits now: nobody else is expected, and the
 * rest of the turn is the broker's PUBACKs, which MQTT.js would handle in front of that device's write.
 * After a synced batch that answered devices, the next one is held until as many devices are back (or
 * for at most a fraction of the sync time): the gather window (store/gather-window.ts) keeps them all
 * in one sync.
 *
 * Work nobody waits for that a part marks deferrable (the outbox's acknowledgement marks) gets no batch
 * of its own: it rides with the next batch, or is written after DEFER_MS. A batch of its own would be a
 * second LevelDB write per message, and the device whose next message arrived meanwhile waited for it.
 */
import { systemClock, type Clock } from '../time.js';
import type { Store } from './db.js';
import { DEFAULT_GATHER, GatherWindow, type GatherOptions } from './gather-window.js';
import { rootKey, rootValue, type SublevelCodec } from './root-op.js';

/** A put or delete on one of the store's sublevels (batches across sublevels are atomic). */
export type Operation =
  | { type: 'put'; sublevel: SublevelCodec; key: Buffer | string; value: Buffer | string | object }
  | { type: 'del'; sublevel: SublevelCodec; key: Buffer | string };

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
  /** Devices it answers once the batch is synced: they are expected back with their next message. */
  answered?: number;
}

/** A module that puts its own operations into each batch (the outbox's group commit). */
export interface BatchPart {
  /** Whether it has something for the next batch. */
  hasWork(): boolean;
  /**
   * Runs between two batches, before the next is built: e.g. reopening the database after a full disk.
   * Undefined when there is nothing to do, so the usual batch is not delayed by an await.
   */
  beforeWrite?(): Promise<void> | undefined;
  /** Its contribution to the next batch (undefined: nothing after all). */
  take(): PartWrite | undefined;
  /** Devices queued for the next batch, waiting for their acknowledgement (what the gather counts). */
  waiting?(): number;
  /** Whether something queued must not be held by the gather window (a probe, a flush, a close). */
  urgent?(): boolean;
  /**
   * Whether all it has may wait for the next batch (at most DEFER_MS): nobody waits for it and losing it
   * in a crash costs only duplicates (acknowledgement marks).
   */
  deferrable?(): boolean;
}

/**
 * How long deferrable work waits for a batch to ride with before it is written alone: long against a
 * device's round trip (so a lone device's next message carries it), short against anything a person
 * or a crash bound would notice.
 */
export const DEFER_MS = 5;

/** The writer's time: it measures its syncs and ends gather windows on a timer. */
export interface WriterTiming {
  clock: Pick<Clock, 'now'>;
  /** Runs `fn` after `ms`; returns what cancels it. */
  setTimer(fn: () => void, ms: number): () => void;
}

export const systemTiming: WriterTiming = {
  clock: systemClock,
  setTimer(fn, ms) {
    // Not unref'd: a held batch must still be written before the process may end.
    const timer = setTimeout(fn, ms);
    return () => clearTimeout(timer);
  },
};

export interface WriterOptions {
  timing?: WriterTiming;
  gather?: GatherOptions;
}

/** How the gather windows went: how often one held a batch, ended by the deadline, and for how long. */
export interface GatherStats {
  held: number;
  timedOut: number;
  heldMs: number;
}

const writers = new WeakMap<Store, StoreWriter>();

/**
 * The writer of `db` (made on first use): whoever writes to a store gets the same one. `options` are for
 * whoever makes it (tests with a manual clock do, before opening the stores); later callers pass none.
 */
export function writerFor(db: Store, options?: WriterOptions): StoreWriter {
  let writer = writers.get(db);
  if (writer === undefined) {
    writer = new StoreWriter(db, options);
    writers.set(db, writer);
  } else if (options !== undefined) throw new Error('writerFor: this database already has its writer');
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
  readonly gatherStats: GatherStats = { held: 0, timedOut: 0, heldMs: 0 };
  private readonly timing: WriterTiming;
  private readonly window: GatherWindow;
  /** The gather window holding the next batch, if one is. */
  private holding: { since: number; resume: () => void; cancel: () => void } | undefined;
  private endingHold = false;
  /** Cancels the timer that writes deferred work alone; set while one runs. */
  private deferTimer: (() => void) | undefined;
  /** The deferred work waited DEFER_MS: it is written now, alone if need be. */
  private deferDue = false;

  constructor(
    private readonly db: Store,
    { timing = systemTiming, gather = DEFAULT_GATHER }: WriterOptions = {},
  ) {
    this.timing = timing;
    this.window = new GatherWindow(gather);
  }

  /** The running estimate of a synced write's duration in ms (the gather window is a fraction of it). */
  get syncEstimateMs(): number {
    return this.window.syncEstimateMs;
  }

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
    const idle = new Promise<void>((resolve) => {
      if (this.pending.length === 0 && this.waiters.length === 0) this.afterCurrent.push(resolve);
      else this.pendingIdle.push(resolve);
    });
    this.kick(); // someone waits for the writes: no gather window holds them
    return idle;
  }

  /**
   * Something is waiting to be written: start a batch unless one is being written (then it goes next).
   * While a gather window holds the next batch, see whether it can end.
   */
  kick(): void {
    if (this.holding !== undefined) {
      // At the end of this turn, so the datagrams read with the one that closed the window join it.
      if (this.mayWriteNow()) this.endHoldSoon();
      return;
    }
    if (this.running || this.scheduled) return;
    if (!this.mustWrite()) {
      if (this.hasWork()) this.deferWrite();
      return;
    }
    this.scheduled = true;
    // A lone device waiting for its PUBACK goes at once; anything else gathers the turn's datagrams.
    if (this.window.alone && this.waiting() > 0) queueMicrotask(this.start);
    else setImmediate(this.start);
  }

  private readonly start = (): void => {
    this.scheduled = false;
    void this.run();
  };

  /** Whether what is queued needs a batch now: anything but deferrable work, or deferred work now due. */
  private mustWrite(): boolean {
    if (this.pending.length > 0 || this.waiters.length > 0 || this.deferDue || this.urgent()) return true;
    for (const part of this.parts) if (part.hasWork() && part.deferrable?.() !== true) return true;
    return false;
  }

  /** Only deferrable work is queued: it waits for the next batch, or DEFER_MS. */
  private deferWrite(): void {
    if (this.deferTimer !== undefined) return;
    this.deferTimer = this.timing.setTimer(() => {
      this.deferTimer = undefined;
      if (!this.hasWork()) return;
      this.deferDue = true;
      this.kick();
    }, DEFER_MS);
  }

  private hasWork(): boolean {
    if (this.pending.length > 0 || this.waiters.length > 0 || this.pendingIdle.length > 0) return true;
    for (const part of this.parts) if (part.hasWork()) return true;
    return false;
  }

  /** Devices queued for the next batch. */
  private waiting(): number {
    let count = 0;
    for (const part of this.parts) count += part.waiting?.() ?? 0;
    return count;
  }

  private urgent(): boolean {
    if (this.pendingIdle.length > 0 || this.afterCurrent.length > 0) return true;
    for (const part of this.parts) if (part.urgent?.() === true) return true;
    return false;
  }

  private mayWriteNow(): boolean {
    return this.urgent() || this.window.remaining(this.timing.clock.now(), this.waiting()) === 0;
  }

  /** Resolves when the next batch may be written: at once, or when its gather window ends. */
  private gather(): Promise<void> | undefined {
    const now = this.timing.clock.now();
    const wait = this.urgent() ? 0 : this.window.remaining(now, this.waiting());
    if (wait <= 0) return undefined;
    this.gatherStats.held++;
    return new Promise((resume) => {
      const cancel = this.timing.setTimer(() => {
        this.gatherStats.timedOut++;
        this.window.expired(this.waiting());
        // Timers run before the event loop reads sockets: let it read the datagrams already here first.
        this.endHoldSoon();
      }, wait);
      this.holding = { since: now, resume, cancel };
    });
  }

  private endHoldSoon(): void {
    if (this.endingHold) return;
    this.endingHold = true;
    setImmediate(() => this.endHold());
  }

  private endHold(): void {
    this.endingHold = false;
    const holding = this.holding;
    if (holding === undefined) return;
    this.holding = undefined;
    holding.cancel();
    this.window.close();
    this.gatherStats.heldMs += this.timing.clock.now() - holding.since;
    holding.resume();
  }

  private async run(): Promise<void> {
    if (this.running) return;
    this.running = true;
    while (this.hasWork()) {
      if (!this.mustWrite()) {
        this.deferWrite();
        break;
      }
      const held = this.gather();
      if (held !== undefined) await held;
      this.window.close(); // used (or not needed): the next one opens after the next synced batch
      for (const part of this.parts) {
        const ready = part.hasWork() ? part.beforeWrite?.() : undefined;
        if (ready !== undefined) await ready;
      }
      // Whatever was deferred rides with this batch.
      this.deferDue = false;
      this.deferTimer?.();
      this.deferTimer = undefined;
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
      let started = 0;
      try {
        const batch = this.db.batch();
        for (const op of operations) addOperation(batch, op);
        for (const write of taken) write.apply(batch);
        started = this.timing.clock.now();
        await batch.write({ sync });
        this.batches++;
      } catch (err) {
        failure = asError(err);
      }
      const ended = this.timing.clock.now();
      for (const write of taken) write.settle(failure);
      for (const done of waiters) done(failure);
      for (const resolve of idle) resolve();
      this.wakeAfterCurrent();
      // From the end of the settling: the devices answered have their PUBACKs now and will come back.
      if (sync && failure === undefined) {
        let answered = 0;
        for (const write of taken) answered += write.answered ?? 0;
        this.window.synced(this.timing.clock.now(), ended - started, answered, this.waiting());
      }
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

/** On the binary root, prefixed and encoded here, with no options (store/root-op.ts says why). */
function addOperation(batch: Batch, op: Operation): void {
  const key = rootKey(op.sublevel, op.key);
  if (op.type === 'put') batch.put(key, rootValue(op.sublevel, op.value));
  else batch.del(key);
}
