/**
 * A sublevel's put or delete as the bytes its root stores: the key with the sublevel's prefix, the
 * value in the sublevel's encoding.
 *
 * abstract-level does the same when a chained batch's put() or del() gets `{ sublevel }`, but on
 * Node 20 (V8 11.3) it spreads that options object on a slow path: 5–15 µs per operation against
 * about 1.5 µs without (bench/batch-put.ts). The writer (store/writer.ts) puts every session, downlink
 * and dead-letter operation on the binary root this way, with no options; the outbox's group commit
 * builds its keys itself (store/group-commit.ts). The bytes on disk are the same as before
 * (test/root-op.test.ts compares them with abstract-level's own).
 */

/** The encodings' output formats abstract-level knows (level-transcoder). */
type Format = 'utf8' | 'buffer' | 'view';

interface Encoding {
  readonly format: Format;
  encode(data: never): unknown;
}

/** What is needed of a sublevel: its default encodings and its prefix. */
export interface SublevelCodec {
  keyEncoding(): Encoding;
  valueEncoding(): Encoding;
  prefixKey(key: Buffer, keyFormat: 'buffer'): Buffer;
}

function asBuffer(data: unknown, format: Format): Buffer {
  if (format === 'utf8') return Buffer.from(data as string, 'utf8');
  if (Buffer.isBuffer(data)) return data;
  const view = data as Uint8Array;
  return Buffer.from(view.buffer, view.byteOffset, view.byteLength);
}

/** The root's key for `key` of `sublevel`. */
export function rootKey(sublevel: SublevelCodec, key: unknown): Buffer {
  const encoding = sublevel.keyEncoding();
  return sublevel.prefixKey(asBuffer(encoding.encode(key as never), encoding.format), 'buffer');
}

/** The root's value for `value` of `sublevel`. */
export function rootValue(sublevel: SublevelCodec, value: unknown): Buffer {
  const encoding = sublevel.valueEncoding();
  return asBuffer(encoding.encode(value as never), encoding.format);
}
