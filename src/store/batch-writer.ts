import type { Store } from './db.js';

type AnySublevel = { readonly prefix: string };

/** A put or delete on one of the store's sublevels (batches across sublevels are atomic). */
export type Operation =
  | { type: 'put'; sublevel: AnySublevel; key: Buffer | string; value: Buffer | string | object }
  | { type: 'del'; sublevel: AnySublevel; key: Buffer | string };

type Done = (err?: Error) => void;

/**
 * Group commit for small stores (downlink queues, sessions): operations accumulate while one batch
 * is being written; the next batch takes all that came meanwhile. Synced when any operation has a
 * waiter, so a burst of N durable writes costs one fsync, not N.
 */
export class BatchWriter {
  private pending: Operation[] = [];
  private waiters: Done[] = [];
  private writing: Promise<void> | undefined;
  batches = 0;

  constructor(private readonly db: Store) {}

  /** Queues operations; `done` runs once they are synced to disk (or failed). */
  write(operations: Operation[], done?: Done): void {
    for (const op of operations) this.pending.push(op);
    if (done) this.waiters.push(done);
    if (!this.writing) this.writing = this.drain();
  }

  /** Resolves when everything queued so far is written. */
  async idle(): Promise<void> {
    while (this.writing) await this.writing;
  }

  private async drain(): Promise<void> {
    // Let datagrams read in this event-loop turn join the batch.
    await new Promise<void>((resolve) => setImmediate(resolve));
    while (this.pending.length > 0) {
      const operations = this.pending;
      const waiters = this.waiters;
      this.pending = [];
      this.waiters = [];
      let failure: Error | undefined;
      try {
        // One cast here: abstract-level's batch typing cannot express operations on mixed sublevels.
        await this.db.batch(operations as unknown as Array<{ type: 'put'; key: string; value: string }>, {
          sync: waiters.length > 0,
        });
        this.batches++;
      } catch (err) {
        failure = err as Error;
      }
      for (const done of waiters) done(failure);
    }
    this.writing = undefined;
  }
}
