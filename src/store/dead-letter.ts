/**
 * Dead letters: outbox entries the broker will not take (a PUBACK reason code >= 0x80, a packet over
 * the broker's maximum size, or a link that dies every time the entry is sent). They leave the outbox
 * so the messages behind them flow again, but they are kept, in the same LevelDB, for an operator to
 * inspect (`mqttsn-bridge dead-letters --data-dir DIR`). Keyed by outbox sequence number, so moving
 * one again after a crash (dead letter written, outbox delete not yet) overwrites, never duplicates.
 * Bounded: past `maxEntries` the oldest dead letter is deleted.
 */
import type { Store } from './db.js';
import type { OutboxEntry } from './outbox.js';
import { readSeq, seqKey } from './seq-key.js';
import { writerFor, type Operation, type StoreWriter } from './writer.js';

export const DEFAULT_MAX_DEAD_LETTERS = 10_000;

export interface DeadLetterReason {
  /** Why, in words (e.g. "PUBACK 0x87 Not authorized"). */
  reason: string;
  /** The broker's MQTT 5 reason code, when it gave one. */
  reasonCode?: number;
  /** How many times the entry was sent. */
  attempts: number;
}

export interface DeadLetter extends DeadLetterReason {
  seq: number;
  topic: string;
  payload: Buffer;
  retain: boolean;
  clientId: string;
  userProperties: Record<string, string>;
  /** Wall-clock ms when the device's message was received, and when it was moved here. */
  receivedAt: number;
  deadLetteredAt: number;
}

interface StoredDeadLetter extends Omit<DeadLetter, 'payload' | 'seq'> {
  payload: string; // base64
}

function sublevel(db: Store) {
  return db.sublevel<Buffer, string>('dead-letter', { keyEncoding: 'buffer', valueEncoding: 'utf8' });
}

export class DeadLetters {
  /** Entries moved here by this process. */
  moved = 0;
  private kept: number;
  private writes: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly writer: StoreWriter,
    private readonly entries: ReturnType<typeof sublevel>,
    private readonly maxEntries: number,
    kept: number,
  ) {
    this.kept = kept;
  }

  static async open(db: Store, { maxEntries = DEFAULT_MAX_DEAD_LETTERS } = {}): Promise<DeadLetters> {
    const entries = sublevel(db);
    let kept = 0;
    for await (const _key of entries.keys()) kept++;
    return new DeadLetters(writerFor(db), entries, Math.max(1, maxEntries), kept);
  }

  /** Dead letters on disk now. */
  get count(): number {
    return this.kept;
  }

  /** Store `entry` as a dead letter; resolves once it is on disk (the outbox copy may go then). */
  add(entry: OutboxEntry, why: DeadLetterReason, now: number): Promise<void> {
    const stored: StoredDeadLetter = {
      topic: entry.topic,
      payload: entry.payload.toString('base64'),
      retain: entry.retain,
      clientId: entry.clientId,
      userProperties: entry.userProperties,
      receivedAt: entry.receivedAt,
      deadLetteredAt: now,
      ...why,
    };
    // One at a time, so the count and the trimming of the oldest stay exact.
    const write = this.writes.then(async () => {
      const key = seqKey(entry.seq);
      const existed = (await this.entries.get(key)) !== undefined;
      let kept = this.kept + (existed ? 0 : 1);
      // The copy and the trimming of the oldest in one batch of the database's writer, synced.
      const operations: Operation[] = [
        { type: 'put', sublevel: this.entries, key, value: JSON.stringify(stored) },
      ];
      if (kept > this.maxEntries) {
        const oldest = await this.entries.keys({ limit: kept - this.maxEntries + 1 }).all();
        for (const old of oldest) {
          if (kept <= this.maxEntries) break;
          if (old.equals(key)) continue;
          operations.push({ type: 'del', sublevel: this.entries, key: old });
          kept--;
        }
      }
      await new Promise<void>((resolve, reject) =>
        this.writer.write(operations, (err) => (err === undefined ? resolve() : reject(err))),
      );
      this.kept = kept;
      this.moved++;
    });
    this.writes = write.catch(() => undefined);
    return write;
  }

  /** Up to `limit` dead letters, oldest first. */
  async list(limit = Number.POSITIVE_INFINITY): Promise<DeadLetter[]> {
    const found: DeadLetter[] = [];
    for await (const [key, value] of this.entries.iterator()) {
      if (found.length >= limit) break;
      const stored = JSON.parse(value) as StoredDeadLetter;
      found.push({ ...stored, seq: readSeq(key), payload: Buffer.from(stored.payload, 'base64') });
    }
    return found;
  }

  /** Resolves once every add() so far has settled. */
  idle(): Promise<void> {
    return this.writes.then(() => undefined);
  }
}
