import type { TopicIdTypeName } from './topic-id-type.js';
import type { BatchWriter, Operation } from './batch-writer.js';
import type { Store } from './db.js';
import type { DownlinkMessage, DownlinkQueueStore, DownlinkRef } from './ports.js';

import { readSeq, writeSeq } from './seq-key.js';

const FORMAT_VERSION = 1;
const TOPIC_ID_TYPES: TopicIdTypeName[] = ['normal', 'predefined', 'short'];
const SEQ_META_KEY = 'downlink.seq';

/**
 * Per-device durable queues of downlink messages (QoS 1/2, and QoS 0 for sleepers when configured):
 * key = client id, 0x00, 8-byte sequence — so one device's messages are contiguous and in order.
 * Client ids never contain control characters (the gateway refuses them), so 0x00 cannot collide.
 * A small index under the same keys holds each record's size: a restart reads the index, not the
 * payloads, which are read one by one when delivered.
 */
export class DownlinkStore implements DownlinkQueueStore {
  private readonly queues;
  private readonly index;
  private readonly meta;
  private lastSeq = 0;

  private constructor(
    db: Store,
    private readonly writer: BatchWriter,
  ) {
    this.queues = db.sublevel<Buffer, Buffer>('downlink', { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    this.index = db.sublevel<Buffer, Buffer>('downlink-index', {
      keyEncoding: 'buffer',
      valueEncoding: 'buffer',
    });
    this.meta = db.sublevel<string, Buffer>('meta', { keyEncoding: 'utf8', valueEncoding: 'buffer' });
  }

  static async open(db: Store, writer: BatchWriter): Promise<DownlinkStore> {
    const store = new DownlinkStore(db, writer);
    const stored = await store.meta.get(SEQ_META_KEY);
    store.lastSeq = stored === undefined ? 0 : readSeq(stored);
    return store;
  }

  /**
   * Every stored message as a reference (sequence and size), grouped by client id, in order. Records
   * written before the index existed are measured once and indexed.
   */
  async loadAll(): Promise<Map<string, DownlinkRef[]>> {
    const sizes = new Map<string, number>();
    for await (const [key, value] of this.index.iterator())
      sizes.set(key.toString('latin1'), value.readUInt32BE(0));
    const byClient = new Map<string, DownlinkRef[]>();
    const migration: Operation[] = [];
    for await (const key of this.queues.keys()) {
      const split = key.indexOf(0);
      const clientId = key.subarray(0, split).toString('utf8');
      const seq = readSeq(key, split + 1);
      this.lastSeq = Math.max(this.lastSeq, seq);
      const id = key.toString('latin1');
      let size = sizes.get(id);
      sizes.delete(id);
      if (size === undefined) {
        const value = await this.queues.get(key);
        if (value === undefined) continue;
        size = value.length;
        migration.push({ type: 'put', sublevel: this.index, key, value: sizeValue(size) });
      }
      let list = byClient.get(clientId);
      if (!list) byClient.set(clientId, (list = []));
      list.push({ seq, size });
    }
    // Index entries whose record is gone (a crash between batches cannot do it, but be tidy).
    for (const id of sizes.keys())
      migration.push({ type: 'del', sublevel: this.index, key: Buffer.from(id, 'latin1') });
    if (migration.length > 0)
      await new Promise<void>((resolve) => this.writer.write(migration, () => resolve()));
    return byClient;
  }

  /** The stored message behind a reference; undefined when the record is missing. */
  async read(clientId: string, ref: DownlinkRef): Promise<DownlinkMessage | undefined> {
    const value = await this.queues.get(keyOf(clientId, ref.seq));
    if (value === undefined) return undefined;
    const message = decodeMessage(ref.seq, value);
    message.size = ref.size;
    return message;
  }

  /**
   * Stores messages for several devices in one synced batch and assigns their sequence numbers;
   * `done` runs after the sync (then the broker may be acknowledged).
   */
  put(
    entries: ReadonlyArray<{ clientId: string; message: DownlinkMessage }>,
    done: (err?: Error) => void,
  ): void {
    const operations: Operation[] = [];
    for (const { clientId, message } of entries) {
      message.seq = ++this.lastSeq;
      const key = keyOf(clientId, message.seq);
      const value = encodeMessage(message);
      message.size = value.length;
      operations.push({ type: 'put', sublevel: this.queues, key, value });
      operations.push({ type: 'put', sublevel: this.index, key, value: sizeValue(value.length) });
    }
    const seqValue = Buffer.alloc(8);
    writeSeq(seqValue, 0, this.lastSeq);
    operations.push({ type: 'put', sublevel: this.meta, key: SEQ_META_KEY, value: seqValue });
    this.writer.write(operations, done);
  }

  delete(clientId: string, seq: number): void {
    const key = keyOf(clientId, seq);
    this.writer.write([
      { type: 'del', sublevel: this.queues, key },
      { type: 'del', sublevel: this.index, key },
    ]);
  }

  deleteAll(clientId: string, messages: ReadonlyArray<{ seq: number }>): void {
    const operations: Operation[] = [];
    for (const { seq } of messages) {
      if (seq === 0) continue;
      const key = keyOf(clientId, seq);
      operations.push(
        { type: 'del', sublevel: this.queues, key },
        { type: 'del', sublevel: this.index, key },
      );
    }
    if (operations.length > 0) this.writer.write(operations);
  }
}

function sizeValue(size: number): Buffer {
  const value = Buffer.allocUnsafe(4);
  value.writeUInt32BE(size, 0);
  return value;
}

function keyOf(clientId: string, seq: number): Buffer {
  const id = Buffer.from(clientId, 'utf8');
  const key = Buffer.allocUnsafe(id.length + 9);
  id.copy(key, 0);
  key[id.length] = 0;
  writeSeq(key, id.length + 1, seq);
  return key;
}

/** version(1) qos(1) retain(1) topicIdType(1) topicId(2) topicLength(2) topic payload */
function encodeMessage(m: DownlinkMessage): Buffer {
  const topic = Buffer.from(m.topic, 'utf8');
  const out = Buffer.allocUnsafe(8 + topic.length + m.payload.length);
  out[0] = FORMAT_VERSION;
  out[1] = m.qos;
  out[2] = m.retain ? 1 : 0;
  out[3] = TOPIC_ID_TYPES.indexOf(m.topicIdType);
  out.writeUInt16BE(m.topicId, 4);
  out.writeUInt16BE(topic.length, 6);
  topic.copy(out, 8);
  out.set(m.payload, 8 + topic.length);
  return out;
}

function decodeMessage(seq: number, value: Buffer): DownlinkMessage {
  if (value[0] !== FORMAT_VERSION) throw new Error(`downlink record ${seq}: unknown format ${value[0]}`);
  const topicLength = value.readUInt16BE(6);
  return {
    seq,
    qos: value[1] as 0 | 1 | 2,
    retain: value[2] === 1,
    topicIdType: TOPIC_ID_TYPES[value[3]!] ?? 'normal',
    topicId: value.readUInt16BE(4),
    topic: value.toString('utf8', 8, 8 + topicLength),
    payload: value.subarray(8 + topicLength),
  };
}
