import type { UplinkState } from '../uplink/uplink.js';
import type { BridgeView } from './view.js';
import { systemClock } from '../time.js';

/** One point of the status page's backlog chart. */
export interface HistorySample {
  /** Wall-clock ms. */
  at: number;
  messages: number;
  bytes: number;
  uplink: UplinkState;
}

export interface HistoryOptions {
  /** Time between samples (default 10 s). */
  intervalMs?: number;
  /** Samples kept (default 360: one hour at 10 s). */
  capacity?: number;
  now?: () => number;
}

/**
 * The last hour of outbox depth and uplink state, sampled on one unref'd timer into a fixed ring, so
 * the status page can show how a backlog built up and drained without a time-series database.
 */
export class History {
  readonly intervalMs: number;
  readonly capacity: number;
  private readonly ring: HistorySample[] = [];
  private next = 0;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly view: Pick<BridgeView, 'outbox' | 'uplink'>,
    { intervalMs = 10_000, capacity = 360, now = () => systemClock.wallNow() }: HistoryOptions = {},
  ) {
    this.intervalMs = intervalMs;
    this.capacity = capacity;
    this.now = now;
  }

  /** Takes a first sample at once (a fresh page has a point to show), then one per interval. */
  start(): void {
    if (this.timer !== undefined) return;
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs).unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  sample(): void {
    const outbox = this.view.outbox();
    this.add({
      at: this.now(),
      messages: outbox.messages,
      bytes: outbox.bytes,
      uplink: this.view.uplink().state,
    });
  }

  add(sample: HistorySample): void {
    if (this.ring.length < this.capacity) this.ring.push(sample);
    else this.ring[this.next] = sample;
    this.next = (this.next + 1) % this.capacity;
  }

  /** Oldest first. */
  samples(): HistorySample[] {
    if (this.ring.length < this.capacity) return this.ring.slice();
    return [...this.ring.slice(this.next), ...this.ring.slice(0, this.next)];
  }
}
