import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { BatchWriter } from '../store/batch-writer.js';
import { recoverStore, type Store } from '../store/db.js';
import { DeadLetters } from '../store/dead-letter.js';
import { DownlinkStore } from '../store/downlink.js';
import { Outbox } from '../store/outbox.js';
import type { DownlinkQueueStore, SessionRecordStore } from '../store/ports.js';
import { SessionStore } from '../store/sessions.js';
import type { Clock } from '../time.js';

/** Tests put stores that fail on purpose (store/faulty.ts) around the real ones. */
export interface StoreWrappers {
  downlink?: (real: DownlinkQueueStore) => DownlinkQueueStore;
  sessions?: (real: SessionRecordStore) => SessionRecordStore;
}

/** Everything kept in the one LevelDB database, opened on it. */
export interface Stores {
  outbox: Outbox;
  deadLetters: DeadLetters;
  downlink: DownlinkQueueStore;
  sessions: SessionRecordStore;
  /** Writes sessions and downlink queues; stop waits for it before closing the database. */
  writer: BatchWriter;
}

/**
 * Opens the stores on an open database. `outboxId` prefixes every message's stable id (the uplink
 * client id, so the ids stay unique across a fleet).
 */
export async function openStores(
  db: Store,
  config: Config,
  {
    outboxId,
    clock,
    log,
    wrappers = {},
  }: { outboxId: string; clock: Clock; log: Logger; wrappers?: StoreWrappers },
): Promise<Stores> {
  const deadLetters = await DeadLetters.open(db, { maxEntries: config.outbox.maxDeadLetters });
  const outbox = await Outbox.open(db, {
    gatewayId: outboxId,
    logger: log.child({ component: 'outbox' }),
    maxMessages: config.outbox.maxMessages,
    maxBytes: config.outbox.maxBytes,
    ttlMs: config.outbox.ttlSeconds * 1000,
    whenFull: config.outbox.policy,
    clock,
    recover: async () => {
      if (await recoverStore(db, config.dataDir))
        log.warn({ dataDir: config.dataDir }, 'outbox: reopened the database after write failures');
    },
  });
  const writer = new BatchWriter(db);
  return {
    outbox,
    deadLetters,
    writer,
    downlink: wrap(wrappers.downlink, await DownlinkStore.open(db, writer)),
    sessions: wrap(wrappers.sessions, new SessionStore(db, writer)),
  };
}

function wrap<T>(wrapper: ((real: T) => T) | undefined, real: T): T {
  return wrapper === undefined ? real : wrapper(real);
}
