import type { Boundaries } from './boundary.js';
import type { Session } from './session.js';

/** A device message waiting for the outbox's group commit, and what its acknowledgement needs. */
export interface PendingCommit {
  session: Session | undefined;
  qos: 1 | 2;
  msgId: number;
  topicId: number;
  /** When it arrived (monotonic ms), for the PUBLISH-to-PUBACK latency. */
  started: number;
  /** Given to the sink as the message's `onCommitted`; made once with the slot, not per message. */
  readonly callback: (err?: Error) => void;
}

/**
 * The QoS 1/2 messages in the outbox's group commit: a pool of slots instead of a closure per
 * PUBLISH (a closure and the guard around it were two allocations per message). A slot is back in
 * the pool once its callback has run, or at once when the sink refused the message (the sink then
 * never calls it). The callback runs inside the outbox's commit: an exception is caught here.
 */
export class CommitTable {
  private readonly free: PendingCommit[] = [];

  constructor(
    /** Runs once per message; `commit` is only valid during the call (the slot is reused after). */
    private readonly onCommitted: (
      session: Session,
      commit: Readonly<PendingCommit>,
      err: Error | undefined,
    ) => void,
    private readonly boundaries: Boundaries,
    /** Slots kept for reuse; more in flight at once allocate, and are dropped afterwards. */
    private readonly keep = 1024,
  ) {}

  take(session: Session, qos: 1 | 2, msgId: number, topicId: number, started: number): PendingCommit {
    const slot = this.free.pop() ?? this.slot();
    slot.session = session;
    slot.qos = qos;
    slot.msgId = msgId;
    slot.topicId = topicId;
    slot.started = started;
    return slot;
  }

  /** The sink did not take the message: its callback will never run. */
  release(slot: PendingCommit): void {
    if (slot.session === undefined) return; // it ran already (a sink that answers synchronously)
    slot.session = undefined;
    this.recycle(slot);
  }

  /** Slots waiting in the pool (for tests). */
  get pooled(): number {
    return this.free.length;
  }

  private slot(): PendingCommit {
    const slot: PendingCommit = {
      session: undefined,
      qos: 1,
      msgId: 0,
      topicId: 0,
      started: 0,
      callback: (err) => this.run(slot, err),
    };
    return slot;
  }

  private run(slot: PendingCommit, err: Error | undefined): void {
    const session = slot.session;
    if (session === undefined) return; // called twice: the first call answered
    try {
      this.onCommitted(session, slot, err);
    } catch (error) {
      this.boundaries.caught('commit', error);
    } finally {
      slot.session = undefined;
      this.recycle(slot);
    }
  }

  private recycle(slot: PendingCommit): void {
    if (this.free.length < this.keep) this.free.push(slot);
  }
}
