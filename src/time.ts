/**
 * Injected time, so keep-alive, retry, sleep and TTL logic can be tested without waiting — and so no
 * age or deadline is ever measured with the wall clock, which NTP moves (a Raspberry Pi has no RTC and
 * jumps by hours when it first syncs). A leaf module: it imports nothing of the project.
 */
export interface Clock {
  /** Monotonic milliseconds, for deadlines and ages; never jumps, starts anywhere. */
  now(): number;
  /** Wall-clock milliseconds since the epoch, for timestamps users see; may jump either way. */
  wallNow(): number;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  wallNow: () => Date.now(),
};

/** A clock tests move by hand; the wall clock can also jump on its own, as NTP makes it. */
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
  /** Time passes: both clocks move. */
  advance(ms: number): void {
    this.monotonic += ms;
    this.wall += ms;
  }
  /** The wall clock is set (NTP, an operator): only it moves. */
  jumpWall(ms: number): void {
    this.wall += ms;
  }
}
