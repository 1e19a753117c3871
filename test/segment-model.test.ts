/**
 * Model-based test of the segment outbox against a real LevelDB: seeded random appends, acknowledgements
 * (in and out of order), flushes, crashes and clean reopens, checked after every reopen against a simple
 * reference queue (a map of what was appended, what was durable and what was acknowledged).
 *
 * A crash drops the outbox's process state without close(): the LevelDB handle is closed under it, so
 * every write it had not finished is lost or not, as a kill leaves it; the next open sees the files.
 *
 * Quick run in `npm test`; the long one:  SEGMENT_MODEL_RUNS=300 SEGMENT_MODEL_STEPS=400 \
 *   node --import tsx --test test/segment-model.test.ts   (SEGMENT_MODEL_SEED=n repeats one run)
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { openStore, type Store } from '../src/store/db.js';
import { Outbox, type OutboxEntry } from '../src/store/outbox.js';
import { encodeRecord } from '../src/store/record.js';
import { seqKey } from '../src/store/seq-key.js';
import { metaSublevel, OUTBOX_SEQ_META_KEY, outboxSublevel } from '../src/store/sublevels.js';
import { prng } from './helpers/prng.js';
import { withTempDir } from './helpers/tmp.js';

const RUNS = Number(process.env.SEGMENT_MODEL_RUNS ?? 6);
const STEPS = Number(process.env.SEGMENT_MODEL_STEPS ?? 120);
const FIRST_SEED = Number(process.env.SEGMENT_MODEL_SEED ?? 1);
const logger = pino({ level: 'silent' });

/** The reference queue: what the outbox must (and may) hold. */
class Model {
  /** Every message ever appended, by sequence number: its payload text and client. */
  readonly appended = new Map<number, { text: string; clientId: string }>();
  /** Committed (callback fired without error) and not acknowledged: must be there after any reopen. */
  readonly durable = new Set<number>();
  /** Acknowledged, and a flush() since: must never come back. */
  readonly goneForGood = new Set<number>();
  /** Acknowledged since the last flush: may come back after a crash (the bounded duplicates). */
  readonly ackedUnflushed = new Set<number>();
  /** Ever committed: such a sequence number is never given to another message (after a crash). */
  readonly everCommitted = new Set<number>();
  /** Live in the current outbox (what read() must return, in order). */
  live = new Set<number>();
}

/** Odd seeds run with a small quota that drops the oldest, so messages also go before their commit. */
async function openOutbox(store: Store, seed = 0): Promise<Outbox> {
  const quota = seed % 2 === 1 ? { maxMessages: 25, whenFull: 'drop-oldest' as const } : {};
  return Outbox.open(store, { gatewayId: 'model', logger, tailEntries: 64, ...quota });
}

async function readAll(outbox: Outbox): Promise<OutboxEntry[]> {
  const all: OutboxEntry[] = [];
  // Small pages, so reads start inside segments and cross them.
  for (let after = 0; ;) {
    const page = await outbox.read(after, 7);
    if (page.length === 0) return all;
    all.push(...page);
    after = page[page.length - 1]!.seq;
  }
}

/** After a reopen: what is there is exactly what the model allows. */
function checkReopened(model: Model, entries: OutboxEntry[], crashed: boolean, seed: number): void {
  const seqs = entries.map((e) => e.seq);
  const where = `seed ${seed}`;
  for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i - 1]! < seqs[i]!, `${where}: order ${seqs}`);
  const present = new Set(seqs);
  for (const seq of model.durable) assert.ok(present.has(seq), `${where}: committed message ${seq} lost`);
  for (const entry of entries) {
    const expected = model.appended.get(entry.seq);
    assert.ok(expected, `${where}: ${entry.seq} was never appended`);
    assert.equal(entry.payload.toString(), expected.text, `${where}: payload of ${entry.seq}`);
    assert.equal(entry.clientId, expected.clientId);
    assert.ok(!model.goneForGood.has(entry.seq), `${where}: acknowledged and flushed ${entry.seq} came back`);
    if (!crashed)
      assert.ok(!model.ackedUnflushed.has(entry.seq), `${where}: acknowledged ${entry.seq} came back`);
  }
  model.live = present;
  // Whatever came back is live again: committed now, whatever it was before.
  for (const seq of present) {
    model.durable.add(seq);
    model.everCommitted.add(seq);
  }
  for (const seq of model.ackedUnflushed) if (!present.has(seq)) model.goneForGood.add(seq);
  model.ackedUnflushed.clear();
}

async function run(seed: number, dir: string): Promise<void> {
  const random = prng(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const model = new Model();
  let store = await openStore(dir);
  let outbox = await openOutbox(store, seed);
  let counter = 0;
  try {
    for (let step = 0; step < STEPS; step++) {
      const op = random();
      if (op < 0.4) {
        // A burst of appends from a few clients, some waiting for their commit (synced), some not.
        const burst = 1 + Math.floor(random() * 40);
        for (let i = 0; i < burst; i++) {
          const clientId = `c${Math.floor(random() * 4)}`;
          const text = `m${counter++}`;
          const seq = outbox.lastSeq + 1;
          const current = outbox;
          const result = outbox.append(
            { clientId, topic: `t/${clientId}`, payload: Buffer.from(text), retain: false, qos: 1 },
            random() < 0.7
              ? (err) => {
                  // A callback of an abandoned (crashed) outbox tells nothing about the new one.
                  if (err !== undefined || current !== outbox) return;
                  model.everCommitted.add(seq);
                  if (model.live.has(seq)) model.durable.add(seq);
                }
              : undefined,
          );
          assert.equal(result, 'queued');
          // A crash may give the number of a message that was never committed to a new one, never more.
          assert.ok(!model.everCommitted.has(seq), `seed ${seed}: committed ${seq} given again`);
          model.goneForGood.delete(seq);
          model.appended.set(seq, { text, clientId });
          model.live.add(seq);
        }
        // Dropped by the quota: gone like an acknowledged message.
        for (const seq of model.live)
          if (!outbox.isLive(seq)) {
            model.live.delete(seq);
            model.durable.delete(seq);
            model.ackedUnflushed.add(seq);
          }
      } else if (op < 0.7) {
        // Acknowledge some committed messages, in order or scattered (a slow client holds its line).
        const committed = (await outbox.read(0, 1000)).map((e) => e.seq);
        const count = Math.floor(random() * Math.min(committed.length, 30));
        const inOrder = random() < 0.5;
        for (let i = 0; i < count; i++) {
          const seq = inOrder ? committed[i]! : pick(committed);
          if (!outbox.ack(seq)) continue;
          model.live.delete(seq);
          model.durable.delete(seq);
          model.ackedUnflushed.add(seq);
        }
      } else if (op < 0.82) {
        await outbox.flush();
        for (const seq of model.ackedUnflushed) model.goneForGood.add(seq);
        model.ackedUnflushed.clear();
      } else if (op < 0.95) {
        // Crash: the outbox is abandoned mid-flight, the database closed under it, then reopened.
        await new Promise<void>((resolve) => setImmediate(resolve));
        await store.close();
        store = await openStore(dir);
        outbox = await openOutbox(store, seed);
        checkReopened(model, await readAll(outbox), true, seed);
      } else {
        await outbox.close();
        for (const seq of model.ackedUnflushed) model.goneForGood.add(seq);
        model.ackedUnflushed.clear();
        await store.close();
        store = await openStore(dir);
        outbox = await openOutbox(store, seed);
        checkReopened(model, await readAll(outbox), false, seed);
      }
    }
    await outbox.close();
    await store.close();
    store = await openStore(dir);
    outbox = await openOutbox(store, seed);
    checkReopened(model, await readAll(outbox), false, seed);
    assert.equal(outbox.stats.messages, model.live.size, `seed ${seed}: stats.messages`);
  } finally {
    await outbox.close();
    await store.close();
  }
}

test(`segment outbox matches the reference queue over ${RUNS} seeded runs of ${STEPS} steps`, async (t) => {
  for (let seed = FIRST_SEED; seed < FIRST_SEED + RUNS; seed++)
    await run(seed, withTempDir(t, 'segment-model-'));
});

test('a data dir of the previous format (one record per message) opens, replays and acknowledges', async (t) => {
  const dir = withTempDir(t, 'segment-upgrade-');
  // Written the way the previous main wrote it: a format 2 record under each message's own key.
  const old = await openStore(dir);
  const entries = outboxSublevel(old);
  for (let seq = 1; seq <= 20; seq++)
    await entries.put(
      seqKey(seq),
      encodeRecord({
        topic: 'old/topic',
        payload: Buffer.from(`old ${seq}`),
        retain: false,
        receivedAt: 1_700_000_000_000 + seq,
        bornAt: seq,
        userProperties: { 'mqttsn-id': `gw:${seq}`, 'mqttsn-client': 'dev', 'mqttsn-received': 'x' },
      }),
    );
  await metaSublevel(old).put(OUTBOX_SEQ_META_KEY, seqKey(20));
  await old.close();

  let store = await openStore(dir);
  let outbox = await openOutbox(store);
  const replayed = await readAll(outbox);
  assert.deepEqual(
    replayed.map((e) => e.payload.toString()),
    Array.from({ length: 20 }, (_, i) => `old ${i + 1}`),
  );
  for (let seq = 1; seq <= 10; seq++) assert.ok(outbox.ack(seq));
  for (let i = 0; i < 5; i++)
    outbox.append({ clientId: 'dev', topic: 'new', payload: Buffer.from(`new ${i}`), retain: false, qos: 1 });
  await outbox.close();
  await store.close();

  store = await openStore(dir);
  outbox = await openOutbox(store);
  t.after(async () => {
    await outbox.close();
    await store.close();
  });
  assert.deepEqual(
    (await readAll(outbox)).map((e) => [e.seq, e.payload.toString()]),
    [
      ...Array.from({ length: 10 }, (_, i) => [i + 11, `old ${i + 11}`]),
      ...Array.from({ length: 5 }, (_, i) => [i + 21, `new ${i}`]),
    ],
  );
});
