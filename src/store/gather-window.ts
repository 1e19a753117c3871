/**
 * When the writer starts the next batch after a synced one: the gather window (PostgreSQL's
 * commit_delay / commit_siblings idea, decided by counts instead of a fixed delay).
 *
 * Why: devices keep one message in flight and answer their PUBACK with the next message about a
 * millisecond later. Started at once, the next sync holds only what arrived during the previous one; the
 * devices just acknowledged miss it and wait for the one after. The devices then split into two cohorts
 * that alternate, each batch holds about half of them, and throughput stays under half of
 * devices ÷ fsync time however busy the disk is. Holding the next batch until the devices just answered
 * are back — or a small fraction of the sync time has passed — puts them all in one sync again.
 *
 * The window opens only after a synced batch that answered someone, so nothing waits when nobody is
 * expected; it closes as soon as as many new waiters have arrived as were answered (a lone device is
 * never held: its own next message closes it), and it never lasts longer than `fraction` of the recent
 * sync time nor `maxMs`. Below `minMs` (a fast disk, where a timer could not be that short) there is no
 * window. Devices that answer slower than a window (a radio network with a long round trip) would only
 * make every sync wait for nothing: a window that runs out with fewer than half of them back turns the
 * next few off. Pure arithmetic on the times and counts it is given; the writer owns the clock and timer.
 */

export interface GatherOptions {
  /** Longest window as a fraction of the recent sync time (default 0.5). */
  fraction: number;
  /** Longest window in ms whatever the disk (default 5). */
  maxMs: number;
  /** No window shorter than this, in ms (default 1: what a timer can do). */
  minMs: number;
  /**
   * Share of the devices answered whose return closes the window (default 1: all of them). Below 1 the
   * last ones back always miss the sync and wait for the next (bench/commit-model.ts: 0.9 keeps 90% of
   * the devices in a sync), while at 1 only a window that runs out costs, and it is bounded.
   */
  share: number;
}

export const DEFAULT_GATHER: GatherOptions = { fraction: 0.5, maxMs: 5, minMs: 1, share: 1 };

/** Weight of the newest sync in the running estimate of the sync time. */
const SYNC_EWMA_WEIGHT = 0.2;
/** Synced batches without a window after one that ran out mostly empty; then it is tried again. */
const SKIP_AFTER_EMPTY_WINDOW = 8;

export class GatherWindow {
  /** Running estimate of how long a synced batch write takes, in ms (0 until one is measured). */
  private syncMs = 0;
  /** The waiting count that closes the open window, and when it closes anyway (monotonic ms). */
  private target = 0;
  private deadline = Number.NEGATIVE_INFINITY;
  /** What was queued when the window opened, and how many were expected back on top. */
  private openedWith = 0;
  private expected = 0;
  /** Windows still to skip after one that ran out mostly empty. */
  private skip = 0;
  /** Devices the last synced batch answered. */
  private lastAnswered = 0;

  constructor(private readonly options: GatherOptions = DEFAULT_GATHER) {}

  /** The running estimate of a synced write's duration, in ms. */
  get syncEstimateMs(): number {
    return this.syncMs;
  }

  /**
   * Whether the last synced batch answered at most one device: no other device is expected, so the
   * next batch need not wait for the end of the event-loop turn to gather the datagrams read in it.
   */
  get alone(): boolean {
    return this.lastAnswered <= 1;
  }

  /** The longest window the current estimate allows (0: none). */
  get windowMs(): number {
    const ms = Math.min(this.options.maxMs, this.options.fraction * this.syncMs);
    return ms >= this.options.minMs ? ms : 0;
  }

  /**
   * A synced batch was written in `tookMs`, answering `answered` waiters, with `waiting` new ones already
   * queued for the next batch, at `now`. Opens the window for the answered ones to come back.
   */
  synced(now: number, tookMs: number, answered: number, waiting: number): void {
    this.syncMs = this.syncMs === 0 ? tookMs : this.syncMs + SYNC_EWMA_WEIGHT * (tookMs - this.syncMs);
    this.lastAnswered = answered;
    const window = this.windowMs;
    if (answered === 0 || window === 0) this.close();
    else if (this.skip > 0) {
      this.skip--;
      this.close();
    } else {
      this.openedWith = waiting;
      this.expected = Math.max(1, Math.floor(answered * this.options.share));
      this.target = waiting + this.expected;
      this.deadline = now + window;
    }
  }

  /** The deadline passed with `waiting` queued: fewer than half back turns the next few windows off. */
  expired(waiting: number): void {
    if (waiting - this.openedWith < this.expected / 2) this.skip = SKIP_AFTER_EMPTY_WINDOW;
  }

  /** Nothing to wait for any more (a failed write, or the window was used). */
  close(): void {
    this.deadline = Number.NEGATIVE_INFINITY;
  }

  /** With `waiting` waiters queued at `now`: how many ms the next batch should still wait (0: go). */
  remaining(now: number, waiting: number): number {
    if (waiting >= this.target) return 0;
    return Math.max(0, this.deadline - now);
  }
}
