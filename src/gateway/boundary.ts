import type { RateLimitedWarn } from '../log/rate-limit.js';
import type { GatewayStats } from './stats.js';

/**
 * A dispatch boundary (undecodable datagram, broker message, commit callback, timer): an exception
 * is counted and logged (rate-limited) and the gateway goes on; no single input ends the process.
 */
export class Boundaries {
  constructor(
    private readonly stats: GatewayStats,
    private readonly warn: RateLimitedWarn,
  ) {}

  /** Runs `fn`; returns whether it completed. */
  guard(boundary: string, fn: () => void): boolean {
    try {
      fn();
      return true;
    } catch (err) {
      this.caught(boundary, err);
      return false;
    }
  }

  /** Counts and logs an exception caught at `boundary` (for callers with their own try). */
  caught(boundary: string, err: unknown): void {
    this.count(boundary);
    this.warn.warn(
      `boundary-error|${boundary}`,
      { err, boundary },
      `exception at the ${boundary} boundary caught`,
    );
  }

  count(boundary: string): void {
    this.stats.errorsByBoundary.set(boundary, (this.stats.errorsByBoundary.get(boundary) ?? 0) + 1);
  }
}
