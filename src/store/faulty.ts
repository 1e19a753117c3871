/**
 * Stores that fail on purpose: real implementations of the store ports that wrap the LevelDB ones and
 * make writes fail on command, as a full or broken disk does. Tests put them where the real stores go
 * (no mocks: reads and successful writes are the real store's). A failed write writes nothing.
 */
import type { DownlinkMessage, DownlinkRef } from './ports.js';
import type { DownlinkQueueStore, SessionRecordStore } from './ports.js';
import type { SessionSnapshot, StoredSubscription } from './sessions.js';

/** The switch the tests turn: while failing, every write is refused with `error`. */
export class WriteFaults {
  failing = false;
  /** Writes refused so far. */
  refused = 0;
  /** Fail the next `n` writes, then work again (Infinity: until heal()). */
  private remaining = 0;

  failNext(n = Infinity): void {
    this.remaining = n;
    this.failing = n > 0;
  }

  heal(): void {
    this.remaining = 0;
    this.failing = false;
  }

  /** An error for this write, or undefined when it may go through. */
  take(): Error | undefined {
    if (!this.failing) return undefined;
    this.refused++;
    if (--this.remaining <= 0) this.failing = false;
    return Object.assign(new Error('injected write fault: no space left on device'), { code: 'ENOSPC' });
  }
}

export class FaultyDownlinkStore implements DownlinkQueueStore {
  constructor(
    private readonly inner: DownlinkQueueStore,
    readonly faults = new WriteFaults(),
  ) {}

  loadAll(): Promise<Map<string, DownlinkRef[]>> {
    return this.inner.loadAll();
  }

  read(clientId: string, ref: DownlinkRef): Promise<DownlinkMessage | undefined> {
    return this.inner.read(clientId, ref);
  }

  put(
    entries: ReadonlyArray<{ clientId: string; message: DownlinkMessage }>,
    done: (err?: Error) => void,
  ): void {
    const err = this.faults.take();
    // Asynchronous like a real write: callers must not rely on the callback running first.
    if (err) setImmediate(() => done(err));
    else this.inner.put(entries, done);
  }

  delete(clientId: string, seq: number): void {
    if (!this.faults.take()) this.inner.delete(clientId, seq);
  }

  deleteAll(clientId: string, messages: ReadonlyArray<{ seq: number }>): void {
    if (!this.faults.take()) this.inner.deleteAll(clientId, messages);
  }
}

export class FaultySessionStore implements SessionRecordStore {
  constructor(
    private readonly inner: SessionRecordStore,
    readonly faults = new WriteFaults(),
  ) {}

  loadAll(): Promise<SessionSnapshot[]> {
    return this.inner.loadAll();
  }

  save(snapshot: SessionSnapshot, done?: (err?: Error) => void): void {
    const err = this.faults.take();
    if (err) setImmediate(() => done?.(err));
    else this.inner.save(snapshot, done);
  }

  saveSubscription(clientId: string, subscription: StoredSubscription): void {
    if (!this.faults.take()) this.inner.saveSubscription(clientId, subscription);
  }

  deleteSubscription(clientId: string, filter: string): void {
    if (!this.faults.take()) this.inner.deleteSubscription(clientId, filter);
  }

  delete(clientId: string): void {
    if (!this.faults.take()) this.inner.delete(clientId);
  }
}
