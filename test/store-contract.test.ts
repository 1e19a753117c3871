/**
 * One contract for each store port (store/ports.ts), run against every implementation — the LevelDB
 * stores and the fault-injecting wrappers with their faults off — in the manner of aedes-persistence's
 * abstract.js. Then what the fault-injecting ones add: a refused write reports an error and stores nothing.
 */
import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import pino from 'pino';
import { BatchWriter } from '../src/store/batch-writer.js';
import { openStore } from '../src/store/db.js';
import { DownlinkStore } from '../src/store/downlink.js';
import { FaultyDownlinkStore, FaultySessionStore } from '../src/store/faulty.js';
import { Outbox } from '../src/store/outbox.js';
import type {
  DownlinkMessage,
  DownlinkQueueStore,
  OutboxStore,
  SessionRecordStore,
} from '../src/store/ports.js';
import { SessionStore, type SessionSnapshot } from '../src/store/sessions.js';
import { withTempDir } from './helpers/tmp.js';

const silent = pino({ level: 'silent' });

/** Opens the implementation on `dir`; `close` closes it and its database (to reopen the same dir). */
type Opener<T> = (t: TestContext, dir: string) => Promise<{ store: T; close(): Promise<void> }>;

async function levelParts(t: TestContext, dir: string) {
  const db = await openStore(dir);
  const writer = new BatchWriter(db);
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await writer.idle();
    await db.close();
  };
  t.after(close);
  return { db, writer, close };
}

const downlinkImplementations: Record<string, Opener<DownlinkQueueStore>> = {
  DownlinkStore: async (t, dir) => {
    const { db, writer, close } = await levelParts(t, dir);
    return { store: await DownlinkStore.open(db, writer), close };
  },
  'FaultyDownlinkStore (faults off)': async (t, dir) => {
    const { db, writer, close } = await levelParts(t, dir);
    return { store: new FaultyDownlinkStore(await DownlinkStore.open(db, writer)), close };
  },
};

const sessionImplementations: Record<string, Opener<SessionRecordStore>> = {
  SessionStore: async (t, dir) => {
    const { db, writer, close } = await levelParts(t, dir);
    return { store: new SessionStore(db, writer), close };
  },
  'FaultySessionStore (faults off)': async (t, dir) => {
    const { db, writer, close } = await levelParts(t, dir);
    return { store: new FaultySessionStore(new SessionStore(db, writer)), close };
  },
};

const outboxImplementations: Record<string, Opener<OutboxStore>> = {
  Outbox: async (t, dir) => {
    const db = await openStore(dir);
    const outbox = await Outbox.open(db, { gatewayId: 'gw', logger: silent });
    let closed = false;
    const close = async (): Promise<void> => {
      if (closed) return;
      closed = true;
      await outbox.close();
      await db.close();
    };
    t.after(close);
    return { store: outbox, close };
  },
};

function message(n: number, qos: 0 | 1 | 2 = 1): DownlinkMessage {
  return {
    seq: 0,
    topic: `cmd/${n}`,
    payload: Buffer.from(`m${n}`),
    qos,
    retain: n % 2 === 0,
    topicIdType: 'normal',
    topicId: n,
  };
}

function put(store: DownlinkQueueStore, entries: Array<{ clientId: string; message: DownlinkMessage }>) {
  return new Promise<void>((resolve, reject) => store.put(entries, (err) => (err ? reject(err) : resolve())));
}

/** loadAll gives references; the payloads are read back one by one, as delivery does. */
async function loadMessages(store: DownlinkQueueStore): Promise<Map<string, DownlinkMessage[]>> {
  const out = new Map<string, DownlinkMessage[]>();
  for (const [clientId, refs] of await store.loadAll()) {
    const list: DownlinkMessage[] = [];
    for (const ref of refs) {
      const m = await store.read(clientId, ref);
      assert.ok(m, `message ${ref.seq} of ${clientId} readable`);
      list.push(m);
    }
    out.set(clientId, list);
  }
  return out;
}

function summary(all: Map<string, DownlinkMessage[]>): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [clientId, list] of all) out[clientId] = list.map((m) => Buffer.from(m.payload).toString());
  return out;
}

for (const [name, open] of Object.entries(downlinkImplementations)) {
  describe(`DownlinkQueueStore contract: ${name}`, () => {
    test('put assigns increasing sequence numbers; loadAll returns each client in order, across a reopen', async (t) => {
      const dir = withTempDir(t, 'contract-');
      const first = await open(t, dir);
      const a = message(1);
      const b = message(2);
      const c = message(3, 2);
      await put(first.store, [
        { clientId: 'x', message: a },
        { clientId: 'y', message: b },
      ]);
      await put(first.store, [{ clientId: 'x', message: c }]);
      assert.ok(a.seq > 0 && b.seq > a.seq && c.seq > b.seq, `${a.seq} ${b.seq} ${c.seq}`);
      await first.close();
      const second = await open(t, dir);
      const all = await loadMessages(second.store);
      assert.deepEqual(summary(all), { x: ['m1', 'm3'], y: ['m2'] });
      const [m1, m3] = all.get('x')!;
      assert.deepEqual(
        { ...m3!, payload: Buffer.from(m3!.payload) },
        { ...c, payload: Buffer.from('m3') },
        'every field survives',
      );
      assert.equal(m1!.seq, a.seq);
      // Sequence numbers keep growing after a reopen.
      const d = message(4);
      await put(second.store, [{ clientId: 'y', message: d }]);
      assert.ok(d.seq > c.seq);
    });

    test('delete and deleteAll remove what they name, nothing else', async (t) => {
      const dir = withTempDir(t, 'contract-');
      const first = await open(t, dir);
      const msgs = [1, 2, 3, 4].map((n) => message(n));
      await put(
        first.store,
        msgs.map((m, i) => ({ clientId: i < 3 ? 'x' : 'y', message: m })),
      );
      first.store.delete('x', msgs[1]!.seq);
      first.store.deleteAll('x', [msgs[0]!, { ...message(9), seq: 0 }]); // seq 0: memory only, ignored
      await put(first.store, [{ clientId: 'z', message: message(5) }]); // a synced write after the deletes
      await first.close();
      const second = await open(t, dir);
      assert.deepEqual(summary(await loadMessages(second.store)), { x: ['m3'], y: ['m4'], z: ['m5'] });
    });
  });
}

for (const [name, open] of Object.entries(sessionImplementations)) {
  describe(`SessionRecordStore contract: ${name}`, () => {
    const snapshot = (clientId: string, sleepMs = 0): SessionSnapshot => ({
      clientId,
      subscriptions: [{ filter: `mqttsn/${clientId}/#`, qos: 1, topicIdType: 'normal' }],
      will: { topic: 'w', payload: Buffer.from('bye').toString('base64'), qos: 1, retain: false },
      asleep: sleepMs > 0,
      sleepMs,
      keepAliveMs: 60_000,
    });

    test('save replaces per client id, delete forgets; all of it survives a reopen', async (t) => {
      const dir = withTempDir(t, 'contract-');
      const first = await open(t, dir);
      first.store.save(snapshot('a'));
      first.store.save(snapshot('b'));
      first.store.delete('b');
      await new Promise<void>((resolve, reject) =>
        first.store.save(snapshot('a', 5000), (err) => (err ? reject(err) : resolve())),
      );
      await first.close();
      const second = await open(t, dir);
      assert.deepEqual(await second.store.loadAll(), [snapshot('a', 5000)]);
    });

    test('subscriptions are kept one key each: added and removed without rewriting the record', async (t) => {
      const dir = withTempDir(t, 'contract-');
      const first = await open(t, dir);
      const base = snapshot('a');
      first.store.save({ ...base, subscriptions: [] });
      first.store.saveSubscription('a', { filter: 'mqttsn/a/x', qos: 1, topicIdType: 'normal' });
      first.store.saveSubscription('a', {
        filter: 'mqttsn/a/y',
        qos: 2,
        topicIdType: 'predefined',
        topicId: 7,
      });
      first.store.deleteSubscription('a', 'mqttsn/a/x');
      await new Promise<void>((resolve, reject) =>
        first.store.save({ ...base, subscriptions: [] }, (err) => (err ? reject(err) : resolve())),
      );
      await first.close();
      const second = await open(t, dir);
      const [restored] = await second.store.loadAll();
      assert.deepEqual(restored?.subscriptions, [
        { filter: 'mqttsn/a/y', qos: 2, topicIdType: 'predefined', topicId: 7 },
      ]);
    });
  });
}

for (const [name, open] of Object.entries(outboxImplementations)) {
  describe(`OutboxStore contract: ${name}`, () => {
    const msg = (n: number) => ({
      clientId: 'c',
      topic: `t/${n}`,
      payload: Buffer.from(`p${n}`),
      retain: false,
      qos: 1 as const,
    });

    test('append → committed → read in order → ack; what is not acked survives a reopen', async (t) => {
      const dir = withTempDir(t, 'contract-');
      const first = await open(t, dir);
      const committed: number[] = [];
      first.store.on('committed', (seq) => committed.push(seq));
      const callbacks: Array<Error | undefined> = [];
      for (let i = 1; i <= 5; i++)
        assert.equal(
          first.store.append(msg(i), (err) => callbacks.push(err)),
          'queued',
        );
      await first.store.flush();
      assert.deepEqual(callbacks, Array(5).fill(undefined));
      assert.equal(committed.at(-1), 5);
      const entries = await first.store.read(0, 10);
      assert.deepEqual(
        entries.map((e) => e.topic),
        ['t/1', 't/2', 't/3', 't/4', 't/5'],
      );
      assert.equal(first.store.ack(entries[1]!.seq), true);
      assert.equal(first.store.ack(entries[1]!.seq), false, 'acked once');
      assert.equal(first.store.isLive(entries[1]!.seq), false);
      assert.equal(first.store.isLive(entries[2]!.seq), true);
      await first.close();
      const second = await open(t, dir);
      assert.deepEqual(
        (await second.store.read(0, 10)).map((e) => e.topic),
        ['t/1', 't/3', 't/4', 't/5'],
      );
      assert.equal(second.store.lastSeq, 5);
    });
  });
}

describe('the fault-injecting stores', () => {
  test('a refused downlink put reports an error and stores none of its messages; the next put works', async (t) => {
    const dir = withTempDir(t, 'contract-');
    const { db, writer, close } = await levelParts(t, dir);
    const store = new FaultyDownlinkStore(await DownlinkStore.open(db, writer));
    store.faults.failNext(1);
    await assert.rejects(
      put(store, [
        { clientId: 'x', message: message(1) },
        { clientId: 'y', message: message(2) },
      ]),
      /ENOSPC|no space/,
    );
    await put(store, [{ clientId: 'x', message: message(3) }]);
    assert.equal(store.faults.refused, 1);
    assert.deepEqual(summary(await loadMessages(store)), { x: ['m3'] });
    await close();
  });

  test('a refused session save reports an error and keeps the previous record', async (t) => {
    const dir = withTempDir(t, 'contract-');
    const { db, writer } = await levelParts(t, dir);
    const store = new FaultySessionStore(new SessionStore(db, writer));
    const base = { subscriptions: [], asleep: false, sleepMs: 0, keepAliveMs: 1000 };
    await new Promise<void>((resolve) => store.save({ clientId: 'a', ...base }, () => resolve()));
    store.faults.failNext();
    const err = await new Promise<Error | undefined>((resolve) =>
      store.save({ clientId: 'a', ...base, keepAliveMs: 2000 }, resolve),
    );
    assert.match(String(err), /no space/);
    store.faults.heal();
    assert.deepEqual(await store.loadAll(), [{ clientId: 'a', ...base }]);
  });
});
