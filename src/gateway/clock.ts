/** Injected time, so keep-alive, retry and sleep logic can be tested without waiting. */
export interface Clock {
  /** Monotonic milliseconds, for deadlines. */
  now(): number;
  /** Wall-clock milliseconds since the epoch, for timestamps users see. */
  wallNow(): number;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  wallNow: () => Date.now(),
};

/** A clock tests move by hand. */
export class ManualClock implements Clock {
  constructor(
    private monotonic = 0,
    private wall = 1_700_000_000_000,
  ) {}
  now(): number {
    return this.monotonic;
  }
  wallNow(): number {
    return this.wall;
  }
  advance(ms: number): void {
    this.monotonic += ms;
    this.wall += ms;
  }
}
