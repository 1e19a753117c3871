/**
 * One timer structure for every session: a hashed timing wheel. Keep-alive refreshes only move a
 * deadline forward (a field write, no timer churn); an entry found in a slot before its deadline is
 * re-slotted then. Thousands of sleeping sensors cost one interval timer, not one timer each.
 */
export interface WheelEntry {
  /** Monotonic ms at which `expire` runs; Infinity for none. */
  deadline: number;
  /** Slot index while scheduled, -1 otherwise. Owned by the wheel. */
  slot: number;
  expire(now: number): void;
}

export class TimerWheel {
  private readonly slots: Set<WheelEntry>[];
  private cursor: number;

  constructor(
    start: number,
    private readonly resolutionMs = 250,
    slotCount = 512,
  ) {
    this.slots = Array.from({ length: slotCount }, () => new Set<WheelEntry>());
    this.cursor = Math.floor(start / resolutionMs);
  }

  /** (Re)places `entry` for its current deadline. Call after shortening a deadline; extending is free. */
  schedule(entry: WheelEntry): void {
    this.cancel(entry);
    if (entry.deadline === Infinity) return;
    // Never into a slot that has already fired: the next tick picks up anything already due.
    const tick = Math.max(Math.ceil(entry.deadline / this.resolutionMs), this.cursor + 1);
    const slot = tick % this.slots.length;
    this.slots[slot]!.add(entry);
    entry.slot = slot;
  }

  cancel(entry: WheelEntry): void {
    if (entry.slot !== -1) {
      this.slots[entry.slot]!.delete(entry);
      entry.slot = -1;
    }
  }

  /** Fires everything due up to `now`. */
  tick(now: number): void {
    const last = Math.floor(now / this.resolutionMs);
    while (this.cursor < last) {
      this.cursor++;
      const index = this.cursor % this.slots.length;
      const due = this.slots[index]!;
      if (due.size === 0) continue;
      this.slots[index] = new Set();
      for (const entry of due) {
        entry.slot = -1;
        if (entry.deadline <= now) entry.expire(now);
        else this.schedule(entry);
      }
    }
  }

  get size(): number {
    let n = 0;
    for (const slot of this.slots) n += slot.size;
    return n;
  }
}
