/**
 * The writer puts sublevel operations on the binary root itself (store/root-op.ts): the bytes on disk
 * must be the ones abstract-level writes for the same operation with `{ sublevel }`, for every
 * encoding the store's sublevels use, or a store written by an earlier version would not read back.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openStore, type Store } from '../src/store/db.js';
import { writerFor, type Operation } from '../src/store/writer.js';
import { prng } from './helpers/prng.js';
import { withTempDir } from './helpers/tmp.js';

/** The store's sublevels' encodings (sessions, subscriptions, downlink, meta, dead letters), and 'view'. */
function sublevels(db: Store) {
  return {
    sessions: db.sublevel<string, object>('sessions', { keyEncoding: 'utf8', valueEncoding: 'json' }),
    downlink: db.sublevel<Buffer, Buffer>('downlink', { keyEncoding: 'buffer', valueEncoding: 'buffer' }),
    meta: db.sublevel<string, Buffer>('meta', { keyEncoding: 'utf8', valueEncoding: 'buffer' }),
    deadLetters: db.sublevel<Buffer, string>('dead-letter', { keyEncoding: 'buffer', valueEncoding: 'utf8' }),
    views: db.sublevel<Uint8Array, Uint8Array>('views', { keyEncoding: 'view', valueEncoding: 'view' }),
  };
}

type Names = keyof ReturnType<typeof sublevels>;
type Spec = { type: 'put' | 'del'; name: Names; key: string; value: string };

/** Seeded random operations: keys that collide (so deletes and overwrites hit), non-ASCII, separators. */
function specs(seed: number, count: number): Spec[] {
  const random = prng(seed);
  const names: Names[] = ['sessions', 'downlink', 'meta', 'deadLetters', 'views'];
  const alphabet = ['a', 'b', '!', '/', 'é', '温', '\u0000', '~'];
  const text = (length: number) =>
    Array.from({ length }, () => alphabet[Math.floor(random() * alphabet.length)]).join('');
  return Array.from({ length: count }, () => ({
    type: random() < 0.25 ? 'del' : 'put',
    name: names[Math.floor(random() * names.length)]!,
    key: text(1 + Math.floor(random() * 3)),
    value: text(Math.floor(random() * 12)),
  }));
}

function key(name: Names, text: string): string | Buffer | Uint8Array {
  if (name === 'sessions' || name === 'meta') return text;
  if (name === 'views') return new TextEncoder().encode(text);
  return Buffer.from(text, 'utf8');
}

function value(name: Names, text: string): object | string | Buffer | Uint8Array {
  if (name === 'sessions') return { clientId: text, n: text.length, list: [text] };
  if (name === 'deadLetters') return text;
  if (name === 'views') return new TextEncoder().encode(text);
  return Buffer.from(text, 'utf8');
}

async function contents(db: Store): Promise<Array<[string, string]>> {
  const all: Array<[string, string]> = [];
  for await (const [k, v] of db.iterator()) all.push([k.toString('hex'), v.toString('hex')]);
  return all;
}

test("the writer's operations store the bytes abstract-level stores for them with { sublevel }", async (t) => {
  const dir = withTempDir(t, 'mqttsn-root-op-');
  const reference = await openStore(`${dir}/reference`);
  const written = await openStore(`${dir}/written`);
  t.after(() => Promise.all([reference.close(), written.close()]));
  const ofReference = sublevels(reference);
  const ofWritten = sublevels(written);
  const writer = writerFor(written);

  for (let round = 0; round < 20; round++) {
    const batch = specs(round, 25);
    const chained = reference.batch();
    const operations: Operation[] = [];
    for (const spec of batch) {
      const sublevel = ofReference[spec.name];
      const options = { sublevel } as unknown as Record<string, never>;
      if (spec.type === 'put')
        chained.put(key(spec.name, spec.key) as never, value(spec.name, spec.value) as never, options);
      else chained.del(key(spec.name, spec.key) as never, options);
      operations.push(
        spec.type === 'put'
          ? {
              type: 'put',
              sublevel: ofWritten[spec.name],
              key: key(spec.name, spec.key) as string,
              value: value(spec.name, spec.value) as string,
            }
          : { type: 'del', sublevel: ofWritten[spec.name], key: key(spec.name, spec.key) as string },
      );
    }
    await chained.write();
    await new Promise<void>((resolve, reject) =>
      writer.write(operations, (err) => (err ? reject(err) : resolve())),
    );
  }

  const expected = await contents(reference);
  assert.ok(expected.length > 30, `the random operations left ${expected.length} keys`);
  assert.deepEqual(await contents(written), expected);
  // And they read back through the sublevels' own encodings.
  type Readable = { iterator(): { all(): Promise<unknown[]> } };
  for (const name of Object.keys(ofWritten) as Names[]) {
    const back = await (ofWritten[name] as Readable).iterator().all();
    const fromReference = await (ofReference[name] as Readable).iterator().all();
    assert.deepEqual(back, fromReference, name);
  }
});
