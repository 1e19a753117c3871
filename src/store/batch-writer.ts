import type { Store } from './db.js';
import { writerFor, type Done, type Operation, type StoreWriter } from './writer.js';

export type { Operation } from './writer.js';

/**
 * How the small stores (downlink queues, sessions) write: their operations go to the database's one
 * writer (store/writer.ts) and share its batches, and their fsyncs, with the outbox. Synced when any
 * operation has a waiter, so a burst of N durable writes costs one fsync, not N.
 */
export class BatchWriter {
  private readonly writer: StoreWriter;

  constructor(db: Store) {
    this.writer = writerFor(db);
  }

  /** Batches the database's writer has written so far. */
  get batches(): number {
    return this.writer.batches;
  }

  /** Queues operations; `done` runs once they are synced to disk (or failed). */
  write(operations: Operation[], done?: Done): void {
    this.writer.write(operations, done);
  }

  /** Resolves when everything queued so far is written. */
  async idle(): Promise<void> {
    await this.writer.idle();
  }
}
