/**
 * The outbox quota when nothing sets it. The config table (src/config/table.ts) takes its defaults from
 * here, so the gateway and an Outbox opened on its own (tests, benches) hold the same bounds.
 * A module of its own so that --help can read it without loading the store.
 */
export const OUTBOX_DEFAULTS = {
  maxMessages: 1_000_000,
  maxBytes: 256 * 1024 * 1024,
} as const;
