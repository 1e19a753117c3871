/**
 * The outbox's newest entries in memory, in sequence order, so live traffic is sent without reading it
 * back from disk. Bounded in entries and in bytes: when the uplink falls behind (an outage) the tail
 * starts over from the newest entry and what came before is read from LevelDB instead, so a backlog of
 * large messages never sits in memory twice. Every entry with seq >= `from` is here, unless it is gone.
 */
import type { OutboxEntry } from './ports.js';

export class Tail {
  private readonly entries = new Map<number, OutboxEntry>();
  /** Bytes of the PUBLISHes held (what the entries keep alive). */
  private held = 0;

  constructor(
    private readonly maxEntries: number,
    private readonly maxBytes: number,
    /** The first sequence number the tail is complete from. */
    public from: number,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  get bytes(): number {
    return this.held;
  }

  /** Adds the newest entry. Full: starts over from it; one larger than the whole bound is left on disk. */
  push(seq: number, entry: OutboxEntry): void {
    const size = entry.packet.length;
    if (this.entries.size >= this.maxEntries || this.held + size > this.maxBytes) this.restartAt(seq);
    if (size > this.maxBytes) {
      this.from = seq + 1;
      return;
    }
    this.entries.set(seq, entry);
    this.held += size;
  }

  delete(seq: number): void {
    const entry = this.entries.get(seq);
    if (entry === undefined) return;
    this.entries.delete(seq);
    this.held -= entry.packet.length;
  }

  [Symbol.iterator](): IterableIterator<[number, OutboxEntry]> {
    return this.entries.entries();
  }

  private restartAt(seq: number): void {
    this.entries.clear();
    this.held = 0;
    this.from = seq;
  }
}
