/**
 * The gather window (store/gather-window.ts) and the writer that applies it (store/writer.ts), against a
 * real LevelDB through the real outbox. Time is a manual clock and a manual timer handed to the writer,
 * so when a batch is held, and for how long, is decided by the test, never by the machine's speed.
 */
import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import pino from 'pino';
import { openStore } from '../src/store/db.js';
import { DEFAULT_GATHER, GatherWindow, type GatherOptions } from '../src/store/gather-window.js';
import { Outbox, type OutboxMessage } from '../src/store/outbox.js';
import { writerFor, type StoreWriter, type WriterTiming } from '../src/store/writer.js';
import { ManualClock } from '../src/time.js';
import { withTempDir } from './helpers/tmp.js';
import { sleep, waitUntil } from './helpers/wait.js';

describe('gather window (the policy)', () => {
  test('no window before a sync is measured, nor below minMs; a fraction of the sync, capped', () => {
    const window = new GatherWindow(DEFAULT_GATHER);
    assert.equal(window.windowMs, 0);
    window.synced(0, 1.5, 10, 0); // a fast disk: half of 1.5 ms is below a timer's 1 ms
    assert.equal(window.windowMs, 0);
    assert.equal(window.remaining(0, 0), 0, 'nothing is held on a fast disk');
    const slow = new GatherWindow(DEFAULT_GATHER);
    slow.synced(0, 4, 10, 0);
    assert.equal(slow.windowMs, 2);
    const sdCard = new GatherWindow(DEFAULT_GATHER);
    sdCard.synced(0, 100, 10, 0);
    assert.equal(sdCard.windowMs, DEFAULT_GATHER.maxMs);
  });

  test('the sync time is a running estimate: one slow sync does not set the window alone', () => {
    const window = new GatherWindow(DEFAULT_GATHER);
    window.synced(0, 10, 1, 0);
    window.synced(0, 60, 1, 0);
    assert.equal(window.syncEstimateMs, 10 + 0.2 * 50);
  });

  test('held until as many as were answered are back (their share), at most until the deadline', () => {
    const window = new GatherWindow(DEFAULT_GATHER);
    window.synced(100, 10, 4, 3); // 4 answered, 3 already queued: 7 close it
    assert.equal(window.remaining(100, 3), 5);
    assert.equal(window.remaining(101, 6), 4);
    assert.equal(window.remaining(101, 7), 0);
    assert.equal(window.remaining(105, 6), 0, 'the deadline ends it whoever is missing');
    const share = new GatherWindow({ ...DEFAULT_GATHER, share: 0.9 });
    share.synced(0, 10, 100, 0);
    assert.equal(share.remaining(0, 89), 5);
    assert.equal(share.remaining(0, 90), 0, '90% back is enough with share 0.9');
  });

  test('a window that runs out mostly empty turns the next 8 off (slow devices), then is tried again', () => {
    const window = new GatherWindow(DEFAULT_GATHER);
    window.synced(0, 10, 10, 2); // 10 expected back on top of 2
    window.expired(6); // 4 of them back: less than half
    for (let i = 0; i < 8; i++) {
      window.synced(0, 10, 10, 0);
      assert.equal(window.remaining(0, 0), 0, `sync ${i + 1} after it is not held`);
    }
    window.synced(0, 10, 10, 0);
    assert.equal(window.remaining(0, 0), 5, 'tried again');
    window.expired(5); // half back: the window pays, it stays on
    window.synced(0, 10, 10, 0);
    assert.equal(window.remaining(0, 0), 5);
  });

  test('nobody answered, or closed: nothing is held', () => {
    const window = new GatherWindow(DEFAULT_GATHER);
    window.synced(0, 10, 0, 5);
    assert.equal(window.remaining(0, 5), 0);
    window.synced(0, 10, 3, 0);
    assert.equal(window.remaining(0, 1), 5);
    window.close();
    assert.equal(window.remaining(0, 1), 0);
  });
});

/** A manual timer on a manual clock: timers run only when the test fires them. */
class ManualTiming implements WriterTiming {
  readonly clock = new ManualClock();
  readonly timers = new Set<{ ms: number; fn: () => void }>();
  setTimer(fn: () => void, ms: number): () => void {
    const timer = { ms, fn };
    this.timers.add(timer);
    return () => this.timers.delete(timer);
  }
  /** Runs every pending timer. */
  fireAll(): void {
    const due = [...this.timers];
    this.timers.clear();
    for (const timer of due) timer.fn();
  }
}

const silent = pino({ level: 'silent' });

function message(client: string): OutboxMessage {
  return { clientId: client, topic: `mqttsn/${client}/t`, payload: Buffer.from('x'), retain: false, qos: 1 };
}

interface Rig {
  outbox: Outbox;
  writer: StoreWriter;
  timing: ManualTiming;
  /** Every batch written: whether synced, and how many operations it held. */
  writes: Array<{ sync: boolean; ops: number }>;
  /** Appends for `client`; resolves with the number of the synced batch that carried it. */
  publish(client: string): Promise<number>;
  /** Resolves once the writer has started writing the batch it is about to build (a turn later). */
  writing(): Promise<void>;
  /** Device a's message is synced while device c's arrives: their acknowledgements. */
  aThenC(): Promise<{ a1: Promise<number>; c1: Promise<number> }>;
}

/**
 * The real outbox on a real LevelDB whose batch writes take `syncMs` on the writer's manual clock (the
 * clock moves as each write starts), so the writer measures that sync time whatever the machine does.
 */
async function rig(t: TestContext, syncMs = 10, gather: GatherOptions = DEFAULT_GATHER): Promise<Rig> {
  const store = await openStore(withTempDir(t, 'gather-'));
  const timing = new ManualTiming();
  const writes: Rig['writes'] = [];
  const makeBatch = store.batch.bind(store);
  store.batch = ((...args: Parameters<typeof makeBatch>) => {
    const batch = makeBatch(...args);
    const write = batch.write.bind(batch);
    batch.write = ((options: Parameters<typeof write>[0]) => {
      writes.push({ sync: (options as { sync?: boolean } | undefined)?.sync === true, ops: batch.length });
      timing.clock.advance(syncMs);
      return write(options);
    }) as typeof batch.write;
    return batch;
  }) as typeof store.batch;
  const writer = writerFor(store, { timing, gather });
  const outbox = await Outbox.open(store, { gatewayId: 'gw', logger: silent });
  t.after(async () => {
    timing.fireAll();
    await outbox.close();
    await store.close();
  });
  const publish = (client: string): Promise<number> =>
    new Promise((resolve, reject) => {
      outbox.append(message(client), (err) => (err ? reject(err) : resolve(outbox.stats.syncBatches)));
    });
  // The writer starts a batch in a setImmediate; one queued after it runs once the write is under way.
  const writing = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
  const aThenC = async (): Promise<{ a1: Promise<number>; c1: Promise<number> }> => {
    const a1 = publish('a');
    await writing();
    return { a1, c1: publish('c') };
  };
  return { outbox, writer, timing, writes, publish, writing, aThenC };
}

/** A device's next message, sent a turn after its PUBACK (as a real one answers about 1 ms later). */
function next(r: Rig, client: string, acked: Promise<number>): Promise<number> {
  return acked
    .then(() => new Promise<void>((resolve) => setImmediate(resolve)))
    .then(() => r.publish(client));
}

describe('gather window (the writer, real LevelDB)', () => {
  test('the devices just acknowledged share the next sync with those that arrived during the last one', async (t) => {
    const r = await rig(t);
    const a1 = r.publish('a');
    const b1 = r.publish('b');
    await r.writing();
    const c1 = r.publish('c'); // arrives while batch 1 syncs (10 ms: the window may be 5 ms)
    const [a2, b2] = [next(r, 'a', a1), next(r, 'b', b1)];
    assert.deepEqual(await Promise.all([a1, b1]), [1, 1]);
    // Without the window, c's batch starts at once and a, b (back a turn later) wait for the one after.
    assert.deepEqual(await Promise.all([c1, a2, b2]), [2, 2, 2], 'one sync for all three');
    assert.equal(r.writer.gatherStats.timedOut, 0, 'closed by their return, not by the deadline');
    assert.equal(r.timing.timers.size, 0);
  });

  test('a device that does not come back holds the next batch only until the deadline', async (t) => {
    const r = await rig(t);
    const { a1, c1 } = await r.aThenC();
    let committed = false;
    void c1.then(() => (committed = true));
    assert.equal(await a1, 1);
    await waitUntil(() => r.timing.timers.size === 1);
    assert.deepEqual(
      [...r.timing.timers].map((timer) => timer.ms),
      [5],
      'half the sync time',
    );
    await sleep(30); // real turns pass: only the deadline may end the hold
    assert.equal(committed, false);
    r.timing.clock.advance(5);
    r.timing.fireAll(); // the deadline: c goes without a
    assert.equal(await c1, 2);
    assert.equal(r.writer.gatherStats.timedOut, 1);
    assert.equal(r.writer.gatherStats.heldMs, 5);
  });

  test('a lone device is never held: its own next message closes the window', async (t) => {
    const r = await rig(t);
    let acked = r.publish('a');
    for (let i = 1; i <= 5; i++) {
      assert.equal(await acked, i);
      acked = next(r, 'a', Promise.resolve(i));
    }
    assert.equal(await acked, 6);
    assert.equal(r.writer.syncEstimateMs, 10, 'a window of 5 ms was open after every sync');
    assert.equal(r.writer.gatherStats.held, 0);
    assert.equal(r.timing.timers.size, 0);
  });

  test('a flush is not held: what waits is written at once', async (t) => {
    const r = await rig(t);
    const { a1, c1 } = await r.aThenC();
    await a1;
    await waitUntil(() => r.timing.timers.size === 1);
    await r.outbox.flush();
    assert.equal(await c1, 2);
    assert.equal(r.timing.timers.size, 0, 'the deadline timer is cancelled');
    assert.equal(r.writer.gatherStats.timedOut, 0);
  });

  test('on a fast disk there is no window: the next batch starts at once', async (t) => {
    const r = await rig(t, 1.5); // half of 1.5 ms is below what a timer can do
    const { a1, c1 } = await r.aThenC();
    assert.equal(await a1, 1);
    assert.equal(await c1, 2);
    assert.equal(r.writer.gatherStats.held, 0);
  });

  test('a lone device costs one LevelDB write per message: the broker acknowledgements ride with the next', async (t) => {
    const r = await rig(t, 1.5); // a fast disk: no gather window, so only the deferral can join them
    for (let i = 1; i <= 5; i++) {
      assert.equal(await r.publish('a'), i);
      const [entry] = await r.outbox.read(r.outbox.lastSeq - 1, 1);
      r.outbox.ack(entry!.seq); // the broker's PUBACK, before the device's next message
      await r.writing(); // a turn passes: a batch started for the acknowledgement alone is under way
      await r.writing();
    }
    // Before: an unsynced batch for each acknowledgement, and the device's next append waited for it.
    assert.deepEqual(
      r.writes.map((w) => w.sync),
      [true, true, true, true, true],
      'one synced write per message, nothing in between',
    );
    // Segment, highest seq, clock; then the previous segment's deletion (segment and bitmap keys).
    assert.deepEqual(
      r.writes.map((w) => w.ops),
      [3, 5, 5, 5, 5],
    );
    assert.equal(r.timing.timers.size, 1, 'the last acknowledgement waits for DEFER_MS');
    r.timing.fireAll();
    await waitUntil(() => r.writes.length === 6);
    assert.deepEqual(r.writes[5], { sync: false, ops: 2 }, 'then written alone, unsynced');
  });

  test('deferred acknowledgements are written at once by a flush, and beyond 32 of them', async (t) => {
    const r = await rig(t, 1.5);
    const acked: Array<Promise<number>> = [];
    for (let i = 0; i < 40; i++) acked.push(r.publish(`d${i}`));
    await Promise.all(acked);
    const entries = await r.outbox.read(0, 40);
    for (const entry of entries.slice(0, 31)) r.outbox.ack(entry.seq);
    await r.writing();
    await r.writing();
    const before = r.writes.length;
    assert.equal(r.timing.timers.size, 1, '31 marks wait');
    r.outbox.ack(entries[31]!.seq);
    await waitUntil(() => r.writes.length === before + 1);
    r.outbox.ack(entries[32]!.seq);
    await r.outbox.flush();
    assert.equal(r.writes.length, before + 2, 'the flush wrote the one left');
  });

  test("a lone device's write is under way before the rest of its turn (the broker's PUBACKs) runs", async (t) => {
    const r = await rig(t, 1.5);
    const before = r.timing.clock.now(); // the rig's writes move the clock as they start
    let startedBy: boolean | undefined;
    // Queued before the datagram's append, as the broker socket's data is read after it in the same turn.
    setImmediate(() => (startedBy = r.timing.clock.now() > before));
    const a1 = r.publish('a');
    assert.equal(await a1, 1);
    assert.equal(startedBy, true, 'the write started within the turn of the append');
  });

  test('after a batch that answered several devices, the next gathers the datagrams read in the same turn', async (t) => {
    const r = await rig(t, 1.5);
    await Promise.all([r.publish('a'), r.publish('b')]);
    // Their next messages: two datagrams read in one turn, each its own callback.
    const [a2, b2] = await new Promise<Array<Promise<number>>>((resolve) => {
      let a2: Promise<number>;
      setImmediate(() => (a2 = r.publish('a')));
      setImmediate(() => resolve([a2, r.publish('b')]));
    });
    assert.deepEqual(await Promise.all([a2, b2]), [2, 2], 'one sync for both');
  });

  test('the writer of a database is made once: options for an existing one are refused', async (t) => {
    const store = await openStore(withTempDir(t, 'gather-'));
    t.after(() => store.close());
    writerFor(store);
    assert.throws(() => writerFor(store, { gather: DEFAULT_GATHER }), /already has its writer/);
  });
});
