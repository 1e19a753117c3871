import type { TestContext } from 'node:test';
import pino from 'pino';
import { openStore, type Store } from '../../src/store/db.js';
import { Outbox } from '../../src/store/outbox.js';
import { Uplink, type UplinkOptions } from '../../src/uplink/uplink.js';

export const silent = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

export interface OutboxStore {
  store: Store;
  outbox: Outbox;
  /** Close the outbox and the store (idempotent). Stop uplinks first. */
  close(): Promise<void>;
}

/** A real LevelDB outbox in `dir`, closed after the test. */
export async function openOutboxStore(t: TestContext, dir: string): Promise<OutboxStore> {
  const store = await openStore(dir);
  const outbox = await Outbox.open(store, { gatewayId: 'test-gw', logger: silent });
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => (closing ??= outbox.close().then(() => store.close()));
  t.after(close);
  return { store, outbox, close };
}

/** A started uplink with fast timings for tests (MQTT 5 unless overridden), stopped after the test. */
export function startUplink(
  t: TestContext,
  outbox: Outbox,
  options: Partial<UplinkOptions> & { brokers: string[] },
): Uplink {
  const uplink = new Uplink(
    {
      clientId: 'test-gw',
      protocolVersion: 5,
      keepaliveSeconds: 2,
      connectTimeoutMs: 1000,
      reconnect: { initialMs: 50, maxMs: 400 },
      ...options,
    },
    outbox,
    silent,
  );
  t.after(() => uplink.stop());
  uplink.start();
  return uplink;
}
