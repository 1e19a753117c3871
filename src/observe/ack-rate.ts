import { systemClock } from '../time.js';
/**
 * How fast the backlog drains: messages the broker acknowledged per second over the last ~10 s.
 * A cumulative counter is sampled once a second; the rate is the slope from the oldest sample still in
 * the window to the counter's value now.
 */
export class AckRate {
  private readonly samples: Array<{ at: number; acked: number }> = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly readAcked: () => number,
    private readonly windowMs = 10_000,
    private readonly sampleEveryMs = 1_000,
    private readonly now: () => number = () => systemClock.now(),
  ) {}

  start(): void {
    if (this.timer !== undefined) return;
    this.sample();
    this.timer = setInterval(() => this.sample(), this.sampleEveryMs).unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  sample(): void {
    const at = this.now();
    this.samples.push({ at, acked: this.readAcked() });
    while (this.samples.length > 1 && at - this.samples[0]!.at > this.windowMs) this.samples.shift();
  }

  /** Messages per second; 0 until there is a time span to measure over. */
  perSecond(): number {
    const oldest = this.samples[0];
    if (oldest === undefined) return 0;
    const seconds = (this.now() - oldest.at) / 1000;
    if (seconds <= 0) return 0;
    return Math.max(0, (this.readAcked() - oldest.acked) / seconds);
  }
}
