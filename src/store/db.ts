import { readFileSync, statSync, statfsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Level } from 'level';

/**
 * The gateway's one LevelDB. Modules carve their own sublevels out of it (the outbox uses 'outbox'
 * and 'meta'; parked downlink messages and sessions get theirs), so cross-module batches stay atomic.
 * Whoever calls openStore owns the handle and closes it, after closing the modules that use it.
 */
export type Store = Level<Buffer, Buffer>;

/** The data dir could not be opened; the message says why and what to do (the CLI prints it). */
export class StoreOpenError extends Error {
  override readonly name = 'StoreOpenError';
}

/** Who has the data dir: written after a successful open, read to name the holder of the LOCK. */
export const PID_FILE = 'mqttsn-bridge.pid';

export interface OpenStoreOptions {
  /** Write PID_FILE once open (the gateway does; tools and tests reading a dir do not). */
  claim?: boolean;
}

/** Every sublevel made from a store, so recoverStore can reopen them with it. */
const sublevels = new WeakMap<Store, Set<{ readonly status: string; open(): Promise<void> }>>();

/**
 * LevelDB's memory, sized for a Pi (its defaults are 8 MB of block cache and a 4 MB write buffer,
 * which LevelDB holds twice while one is being written out). The gateway reads the outbox in order
 * and once (a replay after an outage), so a large block cache buys little; a 2 MB write buffer still
 * holds a second or more of full load between two level-0 files. Measured with 20,000 10 KB batches:
 * about 4 MB less RSS (docs/architecture.md, Memory).
 */
export const LEVELDB_MEMORY = { cacheSize: 1024 * 1024, writeBufferSize: 2 * 1024 * 1024 } as const;

/**
 * The root's own keys and values are bytes. Only the database's writer (store/writer.ts) uses the root,
 * for batches across the sublevels; everything else goes through a sublevel, which has its own encodings.
 * The writer puts fully prefixed binary keys and values there with no options (store/root-op.ts; the
 * outbox's group commit builds its own): on Node 20 (V8 11.3) abstract-level's put() with an options
 * object costs 5–15 µs of object spreading per operation (about 1.5 µs without), several times per
 * batch, and a downlink message costs a few operations per device.
 */
const ROOT_ENCODINGS = { keyEncoding: 'buffer', valueEncoding: 'buffer' } as const;

export async function openStore(dir: string, { claim = false }: OpenStoreOptions = {}): Promise<Store> {
  const db = new Level<Buffer, Buffer>(dir, { ...LEVELDB_MEMORY, ...ROOT_ENCODINGS });
  const made = new Set<{ readonly status: string; open(): Promise<void> }>();
  sublevels.set(db, made);
  const sublevel = db.sublevel.bind(db);
  db.sublevel = ((...args: Parameters<typeof sublevel>) => {
    const created = sublevel(...args);
    made.add(created);
    return created;
  }) as unknown as typeof db.sublevel;
  try {
    await db.open();
  } catch (err) {
    throw new StoreOpenError(explainOpenFailure(dir, err), { cause: err });
  }
  if (claim) {
    try {
      writeFileSync(path.join(dir, PID_FILE), `${process.pid}\n`);
    } catch {
      // Only used to name this process in another one's error message.
    }
  }
  return db;
}

/**
 * LevelDB says "Database failed to open" whatever the reason; an operator needs which one and what to
 * do. The cause's text (LevelDB's or the file system's) decides, checked against the directory itself.
 */
export function explainOpenFailure(dir: string, err: unknown): string {
  const cause = (err as { cause?: unknown }).cause ?? err;
  const code = (cause as { code?: string }).code ?? '';
  const text = `${code} ${cause instanceof Error ? cause.message : String(cause)}`;
  const where = `data dir ${path.resolve(dir)}`;
  const isFile = (() => {
    try {
      return !statSync(dir).isDirectory();
    } catch {
      return false;
    }
  })();
  if (isFile || /EEXIST|ENOTDIR|Not a directory/.test(text))
    return `${where} is a file, not a directory: point --data-dir at a directory (or move the file away)`;
  if (code === 'LEVEL_LOCKED' || /lock .*(held|temporarily unavailable)/i.test(text)) {
    const pid = holderPid(dir);
    return (
      `another mqttsn-bridge is running on this ${where}${pid === undefined ? '' : ` (pid ${pid})`}: ` +
      'stop it first, or give each gateway its own --data-dir'
    );
  }
  if (/ENOSPC|No space left/i.test(text) || noSpaceLeft(dir))
    return `no space left on the device of the ${where}: free some space, then start again`;
  if (/EROFS|Read-only file system/i.test(text))
    return `${where} is on a read-only file system: mount it read-write or choose another --data-dir`;
  if (/EACCES|EPERM|Permission denied/i.test(text))
    return (
      `no permission to write in the ${where} (running as uid ${process.getuid?.() ?? '?'}): ` +
      'give the service user write access or choose another --data-dir'
    );
  return `the database in the ${where} failed to open: ${text.trim()}`;
}

/** Below this much free space a reopen cannot help: the disk is still full. */
const RECOVER_MIN_FREE_BYTES = 1024 * 1024;

/**
 * After write failures (a full disk), once there is room again: reopen the database, because LevelDB
 * keeps failing every write after a failed log write or compaction until it is reopened. Its sublevels
 * are reopened with it, so everyone keeps their handles. Returns whether it reopened.
 */
export async function recoverStore(db: Store, dir: string): Promise<boolean> {
  if (freeBytes(dir) < RECOVER_MIN_FREE_BYTES) return false;
  if (db.status === 'open') await db.close();
  await db.open();
  for (const sub of sublevels.get(db) ?? []) if (sub.status !== 'open') await sub.open();
  return true;
}

function freeBytes(dir: string): number {
  try {
    const fs = statfsSync(dir);
    return fs.bavail * fs.bsize;
  } catch {
    return 0;
  }
}

function holderPid(dir: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(path.join(dir, PID_FILE), 'utf8'), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Whether the file system holding `dir` (or its nearest existing parent) has no blocks left for us. */
function noSpaceLeft(dir: string): boolean {
  for (let at = path.resolve(dir); ; at = path.dirname(at)) {
    try {
      const fs = statfsSync(at);
      return fs.bavail === 0;
    } catch {
      if (path.dirname(at) === at) return false;
    }
  }
}
