import type { Store } from './db.js';

/** Binary keys and values: outbox keys are 8-byte sequence numbers, values are encoded records. */
export function outboxSublevel(db: Store) {
  return db.sublevel<Buffer, Buffer>('outbox', { keyEncoding: 'buffer', valueEncoding: 'buffer' });
}

/**
 * Which messages of a partly acknowledged outbox segment are gone: a bitmap under the segment's key
 * (store/segments.ts).
 */
export function goneSublevel(db: Store) {
  return db.sublevel<Buffer, Buffer>('outbox-gone', { keyEncoding: 'buffer', valueEncoding: 'buffer' });
}

/** Small named values (e.g. the outbox's sequence high-water mark). */
export function metaSublevel(db: Store) {
  return db.sublevel<string, Buffer>('meta', { keyEncoding: 'utf8', valueEncoding: 'buffer' });
}

export type OutboxSublevel = ReturnType<typeof outboxSublevel>;
export type GoneSublevel = ReturnType<typeof goneSublevel>;
export type MetaSublevel = ReturnType<typeof metaSublevel>;

/** Meta key of the highest sequence number ever assigned, written in the same batch as the appends. */
export const OUTBOX_SEQ_META_KEY = 'outbox.seq';

/**
 * Meta key of the outbox's running clock (ms it has been open, over all restarts), written with every
 * batch of appends and at checkpoints: message ages are measured on it, not on the wall clock.
 */
export const OUTBOX_ELAPSED_META_KEY = 'outbox.elapsed';
