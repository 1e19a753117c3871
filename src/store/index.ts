export { openStore, type Store } from './db.js';
export {
  Outbox,
  USER_PROPERTY_CLIENT,
  USER_PROPERTY_ID,
  USER_PROPERTY_RECEIVED,
  type AppendResult,
  type CommitCallback,
  type FullPolicy,
  type OutboxEntry,
  type OutboxMessage,
  type OutboxOptions,
  type OutboxStats,
} from './outbox.js';
