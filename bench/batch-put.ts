/**
 * What one operation of a LevelDB chained batch costs the main thread, with and without an options
 * object, on a fresh batch of four operations (the shape of one group commit: a segment, two meta
 * values, a bitmap):
 *
 *   node --import tsx bench/batch-put.ts [--batches 20000]
 *
 * On Node 20 (V8 11.3) abstract-level's put()/del() spreads the options into a new object and adds
 * properties to it, which that V8 does on a slow path: 5–15 µs per operation with options, about 1.5 µs
 * without. Node 22 and 24 do not have it. It is why the store's root database has binary encodings and
 * the writer passes no options (store/db.ts, store/root-op.ts). Each variant runs in a fresh process:
 * what V8 does depends on the shapes put() saw first (after calls without options, calls with them
 * stay fast), so variants run one after another in one process hide it. The figures are CPU µs per
 * batch of four (process.cpuUsage of the child, one thread busy).
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Level } from 'level';
import { rootKey, rootValue } from '../src/store/root-op.js';
import { tempDir } from '../test/helpers/index.js';

const { values } = parseArgs({
  options: { batches: { type: 'string', default: '20000' }, variant: { type: 'string' } },
});
const batches = Number(values.batches);

const dir = tempDir('mqttsn-batch-put-');
const binaryRoot = new Level<Buffer, Buffer>(`${dir.path}/binary`, {
  keyEncoding: 'buffer',
  valueEncoding: 'buffer',
});
const textRoot = new Level<string, string>(`${dir.path}/text`);
await Promise.all([binaryRoot.open(), textRoot.open()]);
const meta = textRoot.sublevel<string, Buffer>('meta', { valueEncoding: 'buffer' });
const binaryMeta = binaryRoot.sublevel<string, Buffer>('meta', { valueEncoding: 'buffer' });
const key = Buffer.alloc(14);
const segment = Buffer.alloc(2000);
const small = Buffer.alloc(8);
const BINARY = { keyEncoding: 'buffer', valueEncoding: 'buffer' } as const;

const variants: Record<string, () => Promise<void>> = {
  'binary root, no options': () => {
    const batch = binaryRoot.batch();
    batch.put(key, segment).put(key, small).put(key, small).del(key);
    return batch.close();
  },
  'text root, binary options': () => {
    const batch = textRoot.batch();
    batch.put<Buffer, Buffer>(key, segment, BINARY).put<Buffer, Buffer>(key, small, BINARY);
    batch.put<Buffer, Buffer>(key, small, BINARY).del<Buffer>(key, BINARY);
    return batch.close();
  },
  'binary root, writer-encoded sublevel ops': () => {
    // What store/writer.ts does with a session's or a downlink queue's operations (store/root-op.ts).
    const batch = binaryRoot.batch();
    batch.put(rootKey(binaryMeta, 'outbox.seq'), rootValue(binaryMeta, small));
    batch.put(rootKey(binaryMeta, 'outbox.elapsed'), rootValue(binaryMeta, small));
    batch.put(rootKey(binaryMeta, 'a'), rootValue(binaryMeta, small)).del(rootKey(binaryMeta, 'b'));
    return batch.close();
  },
  'text root, sublevel option': () => {
    const batch = textRoot.batch();
    batch.put<string, Buffer>('outbox.seq', small, { sublevel: meta });
    batch.put<string, Buffer>('outbox.elapsed', small, { sublevel: meta });
    batch.put<string, Buffer>('a', small, { sublevel: meta }).del<string>('b', { sublevel: meta });
    return batch.close();
  },
};

if (values.variant === undefined) {
  console.log(`node ${process.version}, ${batches} batches of 4 operations each, a process per variant`);
  const self = fileURLToPath(import.meta.url);
  for (const name of Object.keys(variants)) {
    const args = [...process.execArgv, self, '--batches', String(batches), '--variant', name];
    process.stdout.write(execFileSync(process.execPath, args, { encoding: 'utf8' }));
  }
} else {
  const run = variants[values.variant];
  if (run === undefined) throw new Error(`no variant ${values.variant}`);
  const before = process.cpuUsage();
  for (let i = 0; i < batches; i++) await run();
  const { user, system } = process.cpuUsage(before);
  console.log(`${values.variant.padEnd(40)} ${((user + system) / batches).toFixed(1)} µs per batch`);
}
await Promise.all([binaryRoot.close(), textRoot.close()]);
dir.cleanup();
