import { Level } from 'level';

/**
 * The gateway's one LevelDB. Modules carve their own sublevels out of it (the outbox uses 'outbox'
 * and 'meta'; parked downlink messages and sessions get theirs), so cross-module batches stay atomic.
 * Whoever calls openStore owns the handle and closes it, after closing the modules that use it.
 */
export type Store = Level<string, string>;

export async function openStore(dir: string): Promise<Store> {
  const db = new Level<string, string>(dir);
  await db.open();
  return db;
}
