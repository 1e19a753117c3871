import type { RateLimitedWarn } from '../../log/rate-limit.js';
import type { Clock } from '../clock.js';
import type { CommitTable } from '../commits.js';
import type { Delivery } from '../delivery.js';
import type { Discovery } from '../discovery.js';
import type { Lifecycle } from '../lifecycle.js';
import type { BrokerSubscriptions, MessageSink, Settings } from '../options.js';
import type { Send } from '../peer.js';
import type { SessionPersistence } from '../persistence.js';
import type { TakeoverProbes } from '../probes.js';
import type { Sessions } from '../registry.js';
import type { GatewayStats } from '../stats.js';
import type { SubscriptionIndex } from '../subscriptions.js';

/**
 * The parts a handler may call, built once by the gateway after the parts themselves (a plain
 * object: no getters, nothing refers back to the handlers). Each handler names the few it uses
 * with Pick<HandlerEnv, …>, so its signature says what it touches.
 */
export interface HandlerEnv {
  readonly settings: Readonly<Settings>;
  readonly clock: Clock;
  readonly warn: RateLimitedWarn;
  readonly stats: GatewayStats;
  readonly send: Send;
  readonly sessions: Sessions;
  readonly lifecycle: Lifecycle;
  readonly delivery: Delivery;
  readonly subscriptions: SubscriptionIndex;
  readonly persistence: SessionPersistence;
  readonly broker: BrokerSubscriptions;
  /** The outbox, behind the gateway's last check of the broker topic. */
  readonly sink: MessageSink;
  readonly commits: CommitTable;
  readonly probes: TakeoverProbes;
  readonly discovery: Discovery;
}
