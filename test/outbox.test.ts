/**
 * The outbox against a real LevelDB in a temp dir: order, persistence, group commit, sequence numbers,
 * quotas, TTL, acknowledgements and stats.
 */
import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import pino, { type Logger } from 'pino';
import { BatchWriter } from '../src/store/batch-writer.js';
import { openStore, type Store } from '../src/store/db.js';
import { DeadLetters } from '../src/store/dead-letter.js';
import { Outbox, type OutboxMessage, type OutboxOptions } from '../src/store/outbox.js';
import { decodeRecord, encodeRecord } from '../src/store/record.js';
import { segmentRecords } from '../src/store/segments.js';
import { readSeq, seqKey } from '../src/store/seq-key.js';
import { outboxSublevel } from '../src/store/sublevels.js';
import { writerFor } from '../src/store/writer.js';
import { ManualClock } from '../src/time.js';
import { withTempDir } from './helpers/tmp.js';
import { sleep, waitUntil } from './helpers/wait.js';

interface LogLine {
  level: number;
  msg: string;
  count?: number;
}

/** A pino logger that keeps its lines, to check what was (and was not) logged. */
function captureLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = pino(
    { level: 'debug' },
    { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) },
  );
  return { logger, lines };
}

const silent = pino({ level: 'silent' });

function message(n: number, overrides: Partial<OutboxMessage> = {}): OutboxMessage {
  return {
    clientId: `client-${n % 3}`,
    topic: `mqttsn/client-${n % 3}/t`,
    payload: Buffer.from(`payload ${n}`),
    retain: n % 2 === 0,
    qos: 1,
    ...overrides,
  };
}

/** Append with a commit callback; resolves once the message is on disk. */
function appendDurably(outbox: Outbox, msg: OutboxMessage): Promise<void> {
  return new Promise((resolve, reject) => {
    const result = outbox.append(msg, (err) => (err ? reject(err) : resolve()));
    if (result === 'rejected') reject(new Error('rejected'));
  });
}

interface Opened {
  store: Store;
  outbox: Outbox;
  /** Close the outbox and the store (idempotent), e.g. to reopen the same directory. */
  close(): Promise<void>;
}

async function openOutbox(
  t: TestContext,
  dir: string,
  options: Partial<OutboxOptions> = {},
): Promise<Opened> {
  const store = await openStore(dir);
  const outbox = await Outbox.open(store, { gatewayId: 'gw', logger: silent, ...options });
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= outbox.close().then(() => store.close());
    return closing;
  };
  t.after(close);
  return { store, outbox, close };
}

describe('outbox', () => {
  test('keeps messages in arrival order across close and reopen', async (t) => {
    const dir = withTempDir(t, 'outbox-');
    // The receive time is the clock's wall time at append: a clock the test moves decides it exactly.
    const clock = new ManualClock(1_000, 1_700_000_000_000);
    const first = await openOutbox(t, dir, { clock });
    const received: number[] = [];
    await Promise.all(
      Array.from({ length: 50 }, (_, i) => {
        clock.advance(7);
        received.push(clock.wallNow());
        return appendDurably(first.outbox, message(i));
      }),
    );
    await first.close();

    const second = await openOutbox(t, dir);
    const entries = await second.outbox.read(0, 1000);
    assert.equal(entries.length, 50);
    entries.forEach((entry, i) => {
      const expected = message(i);
      assert.equal(entry.seq, i + 1);
      assert.equal(entry.topic, expected.topic);
      assert.equal(entry.payload.toString(), `payload ${i}`);
      assert.equal(entry.retain, expected.retain);
      assert.equal(entry.clientId, expected.clientId);
      assert.deepEqual(Object.keys(entry.userProperties).sort(), [
        'mqttsn-client',
        'mqttsn-id',
        'mqttsn-received',
      ]);
      assert.equal(entry.userProperties['mqttsn-id'], `gw:${i + 1}`);
      assert.equal(entry.userProperties['mqttsn-client'], expected.clientId);
      assert.equal(entry.userProperties['mqttsn-received'], new Date(entry.receivedAt).toISOString());
      assert.equal(entry.receivedAt, received[i]);
    });
    // Paging with afterSeq continues where the previous page ended.
    const page = await second.outbox.read(20, 5);
    assert.deepEqual(
      page.map((e) => e.seq),
      [21, 22, 23, 24, 25],
    );
    assert.equal(second.outbox.stats.messages, 50);
  });

  test('group commit: 1000 concurrent appends share a few synced batches; callbacks fire after the write', async (t) => {
    const { outbox, store } = await openOutbox(t, withTempDir(t, 'outbox-'));
    const entriesSub = outboxSublevel(store);
    let appending = true;
    const checks: Array<Promise<void>> = [];
    const committed = Array.from(
      { length: 1000 },
      (_, i) =>
        new Promise<void>((resolve, reject) => {
          outbox.append(message(i), (err) => {
            if (err) return reject(err);
            if (appending) return reject(new Error('callback fired synchronously inside append()'));
            // The write has returned: the message is on disk now, in the segment of its batch.
            checks.push(
              (async () => {
                let found = false;
                for await (const [key, value] of entriesSub.iterator({ lte: seqKey(i + 1) }))
                  found = readSeq(key) + segmentRecords(value).length > i + 1;
                assert.ok(found, `seq ${i + 1} on disk`);
              })(),
            );
            resolve();
          });
        }),
    );
    appending = false;
    await Promise.all(committed);
    await Promise.all(checks);
    const { batches, syncBatches } = outbox.stats;
    assert.ok(batches <= 10, `expected few batches for 1000 appends, got ${batches}`);
    assert.equal(syncBatches, batches);
    // One record per batch (a segment), not one per message.
    assert.equal((await entriesSub.keys().all()).length, batches);
  });

  test('group commit under a steady stream: each write takes everything that accumulated meanwhile', async (t) => {
    const { outbox } = await openOutbox(t, withTempDir(t, 'outbox-'));
    // 20 "devices", each appending its next message as soon as the previous one is durable.
    let done = 0;
    await Promise.all(
      Array.from({ length: 20 }, async (_, device) => {
        for (let i = 0; i < 50; i++) {
          await appendDurably(outbox, message(device * 1000 + i));
          done++;
        }
      }),
    );
    assert.equal(done, 1000);
    assert.ok(outbox.stats.batches < 1000 / 5, `batches ${outbox.stats.batches}`);
  });

  test('appends without a callback are written without sync', async (t) => {
    const { outbox } = await openOutbox(t, withTempDir(t, 'outbox-'));
    for (let i = 0; i < 100; i++) assert.equal(outbox.append(message(i)), 'queued');
    await outbox.flush();
    assert.ok(outbox.stats.batches >= 1);
    assert.equal(outbox.stats.syncBatches, 0);
    assert.equal((await outbox.read(0, 1000)).length, 100);
    await appendDurably(outbox, message(100));
    assert.equal(outbox.stats.syncBatches, 1);
  });

  test('sequence numbers never go backwards, also across a reopen with an empty outbox', async (t) => {
    const dir = withTempDir(t, 'outbox-');
    const first = await openOutbox(t, dir);
    for (let i = 0; i < 5; i++) await appendDurably(first.outbox, message(i));
    for (const entry of await first.outbox.read(0, 10)) assert.ok(first.outbox.ack(entry.seq));
    await first.close();

    const second = await openOutbox(t, dir);
    assert.equal(second.outbox.stats.messages, 0);
    assert.equal(second.outbox.lastSeq, 5);
    await appendDurably(second.outbox, message(5));
    const [entry] = await second.outbox.read(0, 10);
    assert.equal(entry?.seq, 6);
    assert.equal(entry?.userProperties['mqttsn-id'], 'gw:6');
    await second.close();

    const third = await openOutbox(t, dir);
    assert.equal(third.outbox.lastSeq, 6);
  });

  test('acknowledged entries are not read again, even before their delete is written', async (t) => {
    const dir = withTempDir(t, 'outbox-');
    const first = await openOutbox(t, dir);
    for (let i = 0; i < 10; i++) await appendDurably(first.outbox, message(i));
    assert.ok(first.outbox.ack(3));
    assert.ok(first.outbox.ack(4));
    assert.equal(first.outbox.ack(4), false, 'second ack of the same entry');
    assert.equal(first.outbox.ack(99), false, 'unknown entry');
    // No await between ack() and read(): the deletes are still queued.
    const seqs = (await first.outbox.read(0, 100)).map((e) => e.seq);
    assert.deepEqual(seqs, [1, 2, 5, 6, 7, 8, 9, 10]);
    // A limited read still fills up past the skipped entries.
    assert.deepEqual(
      (await first.outbox.read(2, 3)).map((e) => e.seq),
      [5, 6, 7],
    );
    assert.equal(first.outbox.stats.messages, 8);
    assert.equal(first.outbox.stats.acked, 2);
    await first.close();

    const second = await openOutbox(t, dir);
    assert.deepEqual(
      (await second.outbox.read(0, 100)).map((e) => e.seq),
      [1, 2, 5, 6, 7, 8, 9, 10],
    );
  });

  test('acknowledgements inside segments: only the unacknowledged survive a reopen', async (t) => {
    const dir = withTempDir(t, 'outbox-');
    const first = await openOutbox(t, dir);
    for (let i = 0; i < 1000; i++) first.outbox.append(message(i));
    await first.outbox.flush();
    const keep = new Set([1, 500, 501, 777, 1000]);
    for (let seq = 1000; seq >= 1; seq -= 2) if (!keep.has(seq)) first.outbox.ack(seq); // evens, backwards
    for (let seq = 1; seq <= 1000; seq += 2) if (!keep.has(seq)) first.outbox.ack(seq); // odds, in order
    await first.close();
    const second = await openOutbox(t, dir);
    assert.deepEqual(
      (await second.outbox.read(0, 2000)).map((e) => e.seq),
      [...keep].sort((a, b) => a - b),
    );
  });

  test('stats account messages, bytes and the oldest receive time', async (t) => {
    let now = 1_700_000_000_000;
    const { outbox } = await openOutbox(t, withTempDir(t, 'outbox-'), { now: () => now });
    assert.deepEqual(outbox.stats.oldestReceivedAt, null);
    outbox.append(message(0));
    now += 10;
    outbox.append(message(1));
    await outbox.flush();
    const entries = await outbox.read(0, 10);
    const expectedBytes = entries.reduce(
      (sum, e) =>
        sum +
        encodeRecord({
          topic: e.topic,
          payload: e.payload,
          retain: e.retain,
          receivedAt: e.receivedAt,
          userProperties: e.userProperties,
        }).length,
      0,
    );
    assert.equal(outbox.stats.messages, 2);
    assert.equal(outbox.stats.bytes, expectedBytes);
    assert.equal(outbox.stats.oldestReceivedAt, 1_700_000_000_000);
    outbox.ack(1);
    assert.equal(outbox.stats.oldestReceivedAt, 1_700_000_000_010);
    outbox.ack(2);
    assert.equal(outbox.stats.messages, 0);
    assert.equal(outbox.stats.bytes, 0);
    assert.equal(outbox.stats.oldestReceivedAt, null);
  });

  test('reject policy: a full outbox (messages) refuses new messages, logged once per episode', async (t) => {
    const { logger, lines } = captureLogger();
    const { outbox } = await openOutbox(t, withTempDir(t, 'outbox-'), {
      maxMessages: 3,
      whenFull: 'reject',
      logger,
    });
    for (let i = 0; i < 3; i++) assert.equal(outbox.append(message(i)), 'queued');
    let called = false;
    for (let i = 3; i < 8; i++)
      assert.equal(
        outbox.append(message(i), () => (called = true)),
        'rejected',
      );
    assert.equal(outbox.stats.rejected, 5);
    assert.equal(outbox.stats.messages, 3);
    const starts = lines.filter((l) => l.msg.startsWith('outbox full'));
    assert.equal(starts.length, 1, 'one log line when the episode starts');

    outbox.ack(1);
    assert.equal(outbox.append(message(8)), 'queued');
    const ends = lines.filter((l) => l.msg.startsWith('outbox has room again'));
    assert.equal(ends.length, 1);
    assert.equal(ends[0]?.count, 5);
    await outbox.flush();
    assert.equal(called, false, 'rejected messages never get a commit callback');
    assert.deepEqual(
      (await outbox.read(0, 10)).map((e) => e.payload.toString()),
      ['payload 1', 'payload 2', 'payload 8'],
    );
  });

  test('reject policy with a byte quota', async (t) => {
    const recordSize = (payloadBytes: number): number =>
      encodeRecord({
        topic: 'x',
        payload: Buffer.alloc(payloadBytes),
        retain: false,
        receivedAt: 0,
        userProperties: {
          'mqttsn-id': 'gw:1',
          'mqttsn-client': 'c',
          'mqttsn-received': new Date(0).toISOString(),
        },
      }).length;
    const maxBytes = recordSize(100) + recordSize(1) + 5;
    const { outbox } = await openOutbox(t, withTempDir(t, 'outbox-'), { maxBytes });
    const big = { clientId: 'c', topic: 'x', payload: Buffer.alloc(100), retain: false, qos: 1 } as const;
    assert.equal(outbox.append(big), 'queued');
    assert.equal(outbox.append(big), 'rejected');
    assert.equal(outbox.append({ ...big, payload: Buffer.alloc(1) }), 'queued', 'a small one still fits');
    assert.equal(outbox.append({ ...big, payload: Buffer.alloc(1) }), 'rejected');
    assert.ok(outbox.stats.bytes <= maxBytes);
    assert.equal(outbox.stats.messages, 2);
    assert.equal(outbox.stats.rejected, 2);
  });

  test('drop-oldest policy (messages and bytes): the oldest entries make room, counted and logged', async (t) => {
    const { logger, lines } = captureLogger();
    const { outbox } = await openOutbox(t, withTempDir(t, 'outbox-'), {
      maxMessages: 5,
      maxBytes: 10_000,
      whenFull: 'drop-oldest',
      logger,
    });
    for (let i = 0; i < 8; i++) assert.equal(outbox.append(message(i)), 'queued');
    assert.equal(outbox.stats.messages, 5);
    assert.equal(outbox.stats.dropped.quota, 3);
    // A big message pushes out several small ones to stay under the byte quota.
    const big = message(8, { payload: Buffer.alloc(9700) });
    assert.equal(outbox.append(big), 'queued');
    assert.ok(outbox.stats.bytes <= 10_000);
    await outbox.flush();
    const left = (await outbox.read(0, 100)).map((e) => e.seq);
    assert.equal(left.at(-1), 9);
    assert.ok(left.length < 5, `entries left: ${left.join(',')}`);
    assert.equal(outbox.stats.dropped.quota, 8 - left.length + 1);
    assert.equal(lines.filter((l) => l.msg.startsWith('outbox full, dropping oldest')).length, 1);
    // Bigger than the whole quota: refused rather than emptying the outbox.
    assert.equal(outbox.append(message(9, { payload: Buffer.alloc(20_000) })), 'rejected');
  });

  test('TTL: expired messages are not handed out and are swept', async (t) => {
    let now = 1_000_000;
    const { logger, lines } = captureLogger();
    const { outbox } = await openOutbox(t, withTempDir(t, 'outbox-'), {
      ttlMs: 1000,
      ttlSweepIntervalMs: 20,
      now: () => now,
      logger,
    });
    for (let i = 0; i < 3; i++) outbox.append(message(i));
    now += 600;
    for (let i = 3; i < 5; i++) outbox.append(message(i));
    await outbox.flush();
    now += 500; // the first three are 1100 ms old, the others 500 ms
    assert.deepEqual(
      (await outbox.read(0, 10)).map((e) => e.seq),
      [4, 5],
    );
    assert.equal(outbox.stats.dropped.ttl, 3);
    now += 1000;
    await waitUntil(() => outbox.stats.messages === 0, { description: 'the sweep to expire the rest' });
    assert.equal(outbox.stats.dropped.ttl, 5);
    await sleep(60); // a sweep that finds nothing ends the episode
    assert.equal(lines.filter((l) => l.msg.startsWith('outbox dropping expired')).length, 1);
    assert.equal(lines.find((l) => l.msg.startsWith('outbox stopped dropping expired'))?.count, 5);
  });

  test('TTL: ages are monotonic — a wall-clock jump either way expires nothing, across a restart too', async (t) => {
    const dir = withTempDir(t, 'outbox-');
    const clock = new ManualClock(5_000, 1_700_000_000_000);
    // `now` is the old (wall-clock) option: given `clock`, the outbox must not age messages by it.
    const ttl = { ttlMs: 3_600_000, ttlSweepIntervalMs: 10, clock, now: () => clock.wallNow() };
    const first = await openOutbox(t, dir, ttl);
    for (let i = 0; i < 200; i++) first.outbox.append(message(i));
    await first.outbox.flush();
    clock.advance(5_000);
    clock.jumpWall(2 * 3_600_000); // NTP sets the clock of a Pi without RTC: +2 h
    await sleep(30); // sweeps run
    assert.equal((await first.outbox.read(0, 500)).length, 200, 'nothing expired by a forward jump');
    assert.equal(first.outbox.stats.dropped.ttl, 0);
    // The oldest age shown is the monotonic one (5 s), not the jump.
    assert.equal(clock.wallNow() - first.outbox.stats.oldestReceivedAt!, 5_000);
    clock.jumpWall(-3 * 3_600_000); // and back, past the receive times
    clock.advance(1_000);
    assert.equal((await first.outbox.read(0, 500)).length, 200);
    await first.close();

    // Restart: a new process has a new monotonic origin, and the wall clock moved by days while it was off.
    const later = new ManualClock(42, clock.wallNow() + 3 * 86_400_000);
    const second = await openOutbox(t, dir, { ...ttl, clock: later, now: () => later.wallNow() });
    assert.equal((await second.outbox.read(0, 500)).length, 200, 'downtime and jumps do not age messages');
    later.advance(3_600_000 - 6_000 - 100); // just under the TTL in running time (6 s were used before)
    assert.equal((await second.outbox.read(0, 500)).length, 200);
    later.advance(200); // past it: the age carried over the restart counts
    assert.equal((await second.outbox.read(0, 500)).length, 0);
    assert.equal(second.outbox.stats.dropped.ttl, 200);
  });

  test('close() stores the running clock of the close, even while a sweep checkpoint is still being written', async (t) => {
    const dir = withTempDir(t, 'outbox-');
    const clock = new ManualClock(1_000, 1_700_000_000_000);
    const ttl = { ttlMs: 3_600_000, ttlSweepIntervalMs: 2, clock, now: () => clock.wallNow() };
    const first = await openOutbox(t, dir, ttl);
    for (let i = 0; i < 10; i++) first.outbox.append(message(i));
    await first.outbox.flush();
    clock.advance(5_000);
    await sleep(20); // a sweep stores the running clock at 5 s
    // A big synced write keeps the database's one writer busy: the next sweep's checkpoint (6 s) waits
    // behind it, and is still being written when close() comes at 7 s.
    const ballast = first.store.sublevel<string, Buffer>('ballast', { valueEncoding: 'buffer' });
    const big = new Promise<void>((resolve) =>
      writerFor(first.store).write(
        [{ type: 'put', sublevel: ballast, key: 'x', value: Buffer.alloc(48 * 1024 * 1024, 1) }],
        () => resolve(),
      ),
    );
    clock.advance(1_000);
    await sleep(10);
    clock.advance(1_000);
    await first.close();
    await big;

    const later = new ManualClock(42, clock.wallNow());
    const second = await openOutbox(t, dir, { ...ttl, clock: later, now: () => later.wallNow() });
    later.advance(3_600_000 - 7_000 + 100); // past the TTL only if all 7 s of the first run were stored
    assert.equal((await second.outbox.read(0, 500)).length, 0, 'the 7 s the first run used count');
  });

  test('an unreadable record is dropped loudly instead of blocking the queue', async (t) => {
    const { logger, lines } = captureLogger();
    const dir = withTempDir(t, 'outbox-');
    const first = await openOutbox(t, dir);
    for (let i = 0; i < 3; i++) await appendDurably(first.outbox, message(i));
    // Corrupt entry 2 on disk, behind the outbox's back.
    await outboxSublevel(first.store).put(seqKey(2), Buffer.from([9, 9, 9]));
    await first.close();
    const second = await openOutbox(t, dir, { logger });
    assert.deepEqual(
      (await second.outbox.read(0, 10)).map((e) => e.seq),
      [1, 3],
    );
    assert.equal(second.outbox.stats.dropped.invalid, 1);
    assert.ok(lines.some((l) => l.msg.includes('unreadable record')));
  });

  test('records are MQTT 5 PUBLISH packets behind a version byte, the receive time and the birth (formats 4, 2, 1)', () => {
    const record = encodeRecord({
      topic: 'a/b',
      payload: new Uint8Array([1, 2, 3]),
      retain: true,
      receivedAt: 1234.5,
      bornAt: 77,
      userProperties: { 'mqttsn-id': 'gw:1' },
    });
    assert.equal(record[0], 4, 'format 4: strings checked for the broker');
    assert.equal(record.readDoubleBE(1), 1234.5);
    assert.equal(record.readDoubleBE(9), 77);
    assert.equal(record[17]! >> 4, 3, 'PUBLISH packet type');
    const decoded = {
      topic: 'a/b',
      payload: Buffer.from([1, 2, 3]),
      retain: true,
      receivedAt: 1234.5,
      userProperties: { 'mqttsn-id': 'gw:1' },
    };
    assert.deepEqual(decodeRecord(record), decoded);
    // Version 2 (same layout, strings not checked) and version 1 (no birth) are still read.
    assert.deepEqual(decodeRecord(Buffer.from([2, ...record.subarray(1)])), decoded);
    const v1 = Buffer.concat([Buffer.from([1]), record.subarray(1, 9), record.subarray(17)]);
    assert.deepEqual(decodeRecord(v1), decoded);
    assert.throws(() => decodeRecord(Buffer.from([3, ...record.subarray(1)])), /format version/);
    assert.throws(() => decodeRecord(record.subarray(0, record.length - 1)), /invalid PUBLISH/);
    // The parser recovers after a bad record.
    assert.equal(decodeRecord(record).topic, 'a/b');
  });

  test('close() writes what is queued; appends after close are refused', async (t) => {
    const dir = withTempDir(t, 'outbox-');
    const first = await openOutbox(t, dir);
    const callbacks: Array<Error | undefined> = [];
    for (let i = 0; i < 10; i++) first.outbox.append(message(i), (err) => callbacks.push(err));
    await first.outbox.close();
    assert.deepEqual(callbacks, Array(10).fill(undefined));
    assert.equal(first.outbox.append(message(10)), 'rejected');
    await first.close();
    const second = await openOutbox(t, dir);
    assert.equal(second.outbox.stats.messages, 10);
  });
});

describe('the in-memory tail', () => {
  test('reads across the memory/disk boundary stay gap-free and in order, and equal what is on disk', async (t) => {
    const { outbox } = await openOutbox(t, withTempDir(t, 'outbox-tail-'), { tailEntries: 4 });
    for (let n = 1; n <= 10; n++) await appendDurably(outbox, message(n));
    // Entries 1..8 only on disk (the tail restarted at 9), 9..10 in memory.
    const read: string[] = [];
    let cursor = 0;
    for (;;) {
      const chunk = await outbox.read(cursor, 3);
      if (chunk.length === 0) break;
      for (const entry of chunk) read.push(entry.payload.toString());
      cursor = chunk[chunk.length - 1]!.seq;
    }
    assert.deepEqual(
      read,
      Array.from({ length: 10 }, (_, i) => `payload ${i + 1}`),
    );
    // What the tail hands out is what a reader of the disk gets.
    const fromTail = (await outbox.read(9, 10))[0]!;
    const { outbox: reopened } = await openOutbox(t, withTempDir(t, 'outbox-tail-copy-'));
    await appendDurably(reopened, message(10));
    const fromDisk = (await reopened.read(0, 1))[0]!;
    assert.deepEqual(Object.keys(fromTail).sort(), Object.keys(fromDisk).sort());
    assert.deepEqual(
      [fromTail.topic, fromTail.retain, fromTail.payload.toString()],
      [fromDisk.topic, fromDisk.retain, fromDisk.payload.toString()],
    );
    assert.deepEqual(
      Object.keys(fromTail.userProperties).sort(),
      Object.keys(fromDisk.userProperties).sort(),
    );
  });

  test('holds at most 4 MiB by default: a backlog of large messages is read from disk, whole and in order', async (t) => {
    const { outbox } = await openOutbox(t, withTempDir(t, 'outbox-tail-'));
    const big = (n: number): Buffer => Buffer.alloc(60_000, n % 251);
    // 200 messages of 60 KB (12 MB, under 4,096 entries): the broker is away, nothing is acknowledged.
    for (let n = 1; n <= 200; n++) outbox.append(message(n, { payload: big(n) }));
    await outbox.flush();
    const tail = outbox.stats.tail;
    assert.ok(tail !== undefined && tail.bytes <= 4 * 1024 * 1024, `tail holds ${tail?.bytes} bytes`);
    assert.ok(tail.entries > 0, 'the newest messages are still served from memory');
    let cursor = 0;
    let n = 0;
    for (;;) {
      const chunk = await outbox.read(cursor, 32);
      if (chunk.length === 0) break;
      for (const entry of chunk) assert.ok(entry.payload.equals(big(++n)), `message ${n}`);
      cursor = chunk[chunk.length - 1]!.seq;
    }
    assert.equal(n, 200);
  });

  test('a message larger than the whole tail bound is served from disk', async (t) => {
    const { outbox } = await openOutbox(t, withTempDir(t, 'outbox-tail-'), { tailBytes: 1000 });
    await appendDurably(outbox, message(1));
    await appendDurably(outbox, message(2, { payload: Buffer.alloc(2000, 7) }));
    await appendDurably(outbox, message(3));
    assert.ok(outbox.stats.tail!.bytes <= 1000);
    const read = await outbox.read(0, 10);
    assert.deepEqual(
      read.map((e) => e.payload.length),
      [9, 2000, 9],
    );
  });

  test('nothing is handed out before its batch is on disk, nor after it was acknowledged', async (t) => {
    const { outbox } = await openOutbox(t, withTempDir(t, 'outbox-tail-'));
    let committed = false;
    outbox.append(message(1), () => (committed = true));
    // The write starts on a later turn of the event loop: right now the entry is in memory only.
    assert.equal(committed, false);
    assert.deepEqual(await outbox.read(0, 10), []);
    await waitUntil(() => committed);
    const [entry] = await outbox.read(0, 10);
    assert.equal(entry?.payload.toString(), 'payload 1');
    outbox.ack(entry!.seq);
    assert.deepEqual(await outbox.read(0, 10), []);
  });

  test('one writer for the database: a session save and device messages in the same turn share one batch', async (t) => {
    const { outbox, store } = await openOutbox(t, withTempDir(t, 'outbox-'));
    const writes: number[] = [];
    store.on('write', (operations: unknown[]) => writes.push(operations.length));
    const sessions = new BatchWriter(store);
    const other = store.sublevel<string, string>('one-writer-test', { valueEncoding: 'utf8' });
    const saved = new Promise<void>((resolve, reject) =>
      sessions.write([{ type: 'put', sublevel: other, key: 'k', value: 'v' }], (err) =>
        err ? reject(err) : resolve(),
      ),
    );
    await Promise.all([saved, appendDurably(outbox, message(1)), appendDurably(outbox, message(2))]);
    assert.equal(writes.length, 1, `one batch (one fsync), got ${writes.length}: ${writes}`);
    assert.equal(await other.get('k'), 'v');
    assert.equal((await outbox.read(0, 10)).length, 2);
  });

  test('dead letters stay bounded, the copy and the trimming of the oldest written as one batch', async (t) => {
    const { outbox, store } = await openOutbox(t, withTempDir(t, 'outbox-'));
    const deadLetters = await DeadLetters.open(store, { maxEntries: 3 });
    for (let i = 0; i < 6; i++) await appendDurably(outbox, message(i));
    const entries = await outbox.read(0, 10);
    const writes: number[] = [];
    store.on('write', (operations: unknown[]) => writes.push(operations.length));
    for (const entry of entries)
      await deadLetters.add(entry, { reason: 'test', attempts: 1 }, 1_700_000_000_000);
    assert.equal(deadLetters.count, 3);
    assert.deepEqual(
      (await deadLetters.list()).map((d) => d.seq),
      [4, 5, 6],
    );
    assert.deepEqual(writes, [1, 1, 1, 2, 2, 2], 'one batch per dead letter, with its trim');
    // Moving the same entry again (after a crash) overwrites it and trims nothing.
    await deadLetters.add(entries[5]!, { reason: 'again', attempts: 2 }, 1_700_000_000_001);
    assert.equal(deadLetters.count, 3);
    assert.equal((await deadLetters.list()).at(-1)?.reason, 'again');
  });
});
