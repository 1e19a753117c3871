import type { Logger } from 'pino';
import { systemClock } from '../time.js';

/**
 * Keeps logs readable under a flood: the first occurrence of a warning key is logged, repeats within
 * the window are counted and summarised once the window has passed ("… (1234 more in the last 10 s)").
 */
export class RateLimitedWarn {
  private readonly windows = new Map<string, { until: number; suppressed: number }>();

  constructor(
    private readonly log: Logger,
    private readonly windowMs = 10_000,
    private readonly now: () => number = () => systemClock.now(),
  ) {}

  warn(key: string, context: Record<string, unknown>, message: string): void {
    const t = this.now();
    const window = this.windows.get(key);
    if (window && t < window.until) {
      window.suppressed++;
      return;
    }
    const suppressed = window?.suppressed ?? 0;
    this.windows.set(key, { until: t + this.windowMs, suppressed: 0 });
    if (suppressed > 0) {
      this.log.warn(
        { ...context, suppressed, windowSeconds: this.windowMs / 1000 },
        `${message} (and ${suppressed} more like it in the previous window)`,
      );
    } else {
      this.log.warn(context, message);
    }
    if (this.windows.size > 1000) this.prune(t);
  }

  private prune(t: number): void {
    for (const [key, window] of this.windows)
      if (window.until < t && window.suppressed === 0) this.windows.delete(key);
  }
}
