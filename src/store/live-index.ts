/**
 * The outbox's in-memory view of its live entries, in arrival (sequence) order: sequence number, record
 * size and receive time. Quotas, stats and the oldest entry's age come from here without touching disk.
 *
 * Stored column-wise in typed arrays (~21 bytes per entry, no object per entry) so a 100k backlog costs
 * ~2 MB. Entries are appended at the tail with increasing sequence numbers; removal marks a slot dead
 * and the head skips dead slots, so the live range is [head, tail) with holes where entries were
 * acknowledged out of order. Lookup by sequence number is a binary search.
 */
const INITIAL_CAPACITY = 1024;

export interface OldestEntry {
  seq: number;
  size: number;
  receivedAt: number;
}

export class LiveIndex {
  private seqs = new Float64Array(INITIAL_CAPACITY);
  private sizes = new Uint32Array(INITIAL_CAPACITY);
  private times = new Float64Array(INITIAL_CAPACITY);
  private alive = new Uint8Array(INITIAL_CAPACITY);
  private head = 0;
  private tail = 0;
  private liveCount = 0;
  private liveBytes = 0;

  get count(): number {
    return this.liveCount;
  }

  get bytes(): number {
    return this.liveBytes;
  }

  /** Append an entry; `seq` must be greater than every sequence number appended before. */
  add(seq: number, size: number, receivedAt: number): void {
    if (this.tail > this.head && seq <= this.seqs[this.tail - 1]!) {
      throw new Error(`LiveIndex: sequence ${seq} is not after ${this.seqs[this.tail - 1]}`);
    }
    if (this.tail === this.seqs.length) this.makeRoom();
    const slot = this.tail++;
    this.seqs[slot] = seq;
    this.sizes[slot] = size;
    this.times[slot] = receivedAt;
    this.alive[slot] = 1;
    this.liveCount++;
    this.liveBytes += size;
  }

  has(seq: number): boolean {
    return this.find(seq) >= 0;
  }

  /** Remove a live entry; returns its size, or -1 when it was not live (already removed or unknown). */
  remove(seq: number): number {
    const slot = this.find(seq);
    if (slot < 0) return -1;
    const size = this.sizes[slot]!;
    this.alive[slot] = 0;
    this.liveCount--;
    this.liveBytes -= size;
    while (this.head < this.tail && this.alive[this.head] === 0) this.head++;
    if (this.head === this.tail) this.head = this.tail = 0;
    return size;
  }

  /** The oldest live entry (lowest sequence number), or undefined when empty. */
  oldest(): OldestEntry | undefined {
    if (this.liveCount === 0) return undefined;
    const slot = this.head;
    return { seq: this.seqs[slot]!, size: this.sizes[slot]!, receivedAt: this.times[slot]! };
  }

  /** The most recently added sequence number while any entry is live (it may itself be removed). */
  newestSeq(): number | undefined {
    return this.liveCount === 0 ? undefined : this.seqs[this.tail - 1];
  }

  /** Receive time of a live entry, or undefined. */
  receivedAt(seq: number): number | undefined {
    const slot = this.find(seq);
    return slot < 0 ? undefined : this.times[slot];
  }

  private find(seq: number): number {
    let low = this.head;
    let high = this.tail - 1;
    while (low <= high) {
      const mid = (low + high) >>> 1;
      const value = this.seqs[mid]!;
      if (value < seq) low = mid + 1;
      else if (value > seq) high = mid - 1;
      else return this.alive[mid] === 1 ? mid : -1;
    }
    return -1;
  }

  /** At the end of the arrays: squeeze out dead slots, and grow only if mostly live. */
  private makeRoom(): void {
    const used = this.tail - this.head;
    const capacity = this.seqs.length;
    const target = this.liveCount * 2 > capacity ? capacity * 2 : capacity;
    const seqs = target === capacity ? this.seqs : new Float64Array(target);
    const sizes = target === capacity ? this.sizes : new Uint32Array(target);
    const times = target === capacity ? this.times : new Float64Array(target);
    const alive = target === capacity ? this.alive : new Uint8Array(target);
    let write = 0;
    for (let read = this.head; read < this.head + used; read++) {
      if (this.alive[read] === 0) continue;
      seqs[write] = this.seqs[read]!;
      sizes[write] = this.sizes[read]!;
      times[write] = this.times[read]!;
      alive[write] = 1;
      write++;
    }
    alive.fill(0, write);
    this.seqs = seqs;
    this.sizes = sizes;
    this.times = times;
    this.alive = alive;
    this.head = 0;
    this.tail = write;
  }
}
