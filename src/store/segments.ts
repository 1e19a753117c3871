/**
 * Outbox segments: one LevelDB record per group commit instead of one per message.
 *
 * Layout of a segment value (format 3), stored under the 8-byte key of its first sequence number:
 *
 *   byte 0       3 (the segment format; a value starting with 1 or 2 is a single message record of that
 *                format, as earlier versions wrote them: read as a segment of one)
 *   then, for each message in sequence order (sequence numbers are consecutive from the key):
 *     4 bytes    length of the message record, uint32 big-endian
 *     n bytes    the message record in format 2 (store/record.ts: receive time, birth, MQTT 5 PUBLISH)
 *
 * A segment is deleted as a whole once every message in it is acknowledged or dropped. Until then, which
 * of its messages are gone is stored as a bitmap under the same key in the 'outbox-gone' sublevel (bit i:
 * message key+i), written with the next batch after the acknowledgement: a crash forgets at most the
 * acknowledgements of the batches not yet written, as it forgot unwritten deletes before.
 */
export const SEGMENT_FORMAT = 3;
const LENGTH_BYTES = 4;

/** Encode message records (consecutive sequence numbers) as one segment value. */
export function encodeSegment(records: readonly Buffer[]): Buffer {
  let size = 1;
  for (const record of records) size += LENGTH_BYTES + record.length;
  const value = Buffer.allocUnsafe(size);
  value[0] = SEGMENT_FORMAT;
  let at = 1;
  for (const record of records) {
    value.writeUInt32BE(record.length, at);
    record.copy(value, at + LENGTH_BYTES);
    at += LENGTH_BYTES + record.length;
  }
  return value;
}

/**
 * The message records of a stored value, as views into it, in sequence order. A value of an older format
 * is one record; a segment whose lengths do not add up is returned as one (unreadable) record, so the
 * outbox drops it loudly instead of guessing where its messages are.
 */
export function segmentRecords(value: Buffer): Buffer[] {
  if (value[0] !== SEGMENT_FORMAT) return [value];
  const records: Buffer[] = [];
  let at = 1;
  while (at < value.length) {
    if (at + LENGTH_BYTES > value.length) return [value];
    const length = value.readUInt32BE(at);
    at += LENGTH_BYTES;
    if (at + length > value.length) return [value];
    records.push(value.subarray(at, at + length));
    at += length;
  }
  return records.length === 0 ? [value] : records;
}

/** One stored segment: which of its messages are gone (acknowledged, dropped or moved). */
export class Segment {
  readonly gone: Uint8Array;
  goneCount = 0;
  /** Deleted from the table (its record deleted or never written). */
  removed = false;

  constructor(
    readonly start: number,
    readonly count: number,
    gone?: Uint8Array,
  ) {
    this.gone = new Uint8Array(Math.ceil(count / 8));
    if (gone !== undefined) for (let i = 0; i < count; i++) if (isSet(gone, i)) this.markGone(start + i);
  }

  get allGone(): boolean {
    return this.goneCount === this.count;
  }

  /** Marks `seq` gone; false when it already was (or is not in this segment). */
  markGone(seq: number): boolean {
    const i = seq - this.start;
    if (i < 0 || i >= this.count || isSet(this.gone, i)) return false;
    this.gone[i >> 3]! |= 1 << (i & 7);
    this.goneCount++;
    return true;
  }
}

function isSet(bits: Uint8Array, i: number): boolean {
  return ((bits[i >> 3] ?? 0) & (1 << (i & 7))) !== 0;
}

/**
 * The stored segments in sequence order, found by any sequence number they hold. Segments are added in
 * order (each group commit's after the previous one's) and removed mostly from the old end: an array with
 * a moving head, squeezed when dead slots pile up, and a binary search.
 */
export class SegmentTable {
  private segments: Segment[] = [];
  private head = 0;
  private dead = 0;

  get size(): number {
    return this.segments.length - this.head - this.dead;
  }

  add(segment: Segment): void {
    const last = this.segments[this.segments.length - 1];
    if (last !== undefined && segment.start < last.start + last.count)
      throw new Error(`SegmentTable: segment ${segment.start} overlaps ${last.start}+${last.count}`);
    this.segments.push(segment);
  }

  /** The live segment holding `seq`, if any. */
  find(seq: number): Segment | undefined {
    const slot = this.floorSlot(seq);
    if (slot < 0) return undefined;
    const segment = this.segments[slot]!;
    return !segment.removed && seq < segment.start + segment.count ? segment : undefined;
  }

  /** Where a scan for sequence numbers >= seq starts: the segment holding seq, or seq itself. */
  scanStart(seq: number): number {
    return this.find(seq)?.start ?? seq;
  }

  remove(segment: Segment): void {
    if (segment.removed) return;
    segment.removed = true;
    this.dead++;
    while (this.head < this.segments.length && this.segments[this.head]!.removed) {
      this.head++;
      this.dead--;
    }
    if (this.head === this.segments.length) {
      this.segments = [];
      this.head = 0;
    } else if (this.head + this.dead > 1024 && this.head + this.dead > this.size) {
      this.segments = this.segments.filter((s) => !s.removed);
      this.head = 0;
      this.dead = 0;
    }
  }

  /** Slot of the last segment starting at or before `seq`, or -1. */
  private floorSlot(seq: number): number {
    let low = this.head;
    let high = this.segments.length - 1;
    let found = -1;
    while (low <= high) {
      const mid = (low + high) >>> 1;
      if (this.segments[mid]!.start <= seq) {
        found = mid;
        low = mid + 1;
      } else high = mid - 1;
    }
    return found;
  }
}
