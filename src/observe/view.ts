import type { GatewayStats } from '../gateway/stats.js';
import type { SessionState } from '../gateway/session.js';
import type { OutboxStats } from '../store/outbox.js';
import type { UplinkStats } from '../uplink/uplink.js';

/** One device as an operator sees it. */
export interface DeviceView {
  clientId: string;
  state: SessionState;
  /** host:port (or host:port/node for a forwarded device). */
  address: string;
  /** Wall-clock ms of the last datagram from it. */
  lastSeen: number;
  /** Device PUBLISHes received in this session. */
  messagesIn: number;
  /** Downlink messages waiting for it (asleep, away, or one in flight). */
  queued: number;
}

/**
 * What observe/ reads from a running bridge: plain counters and snapshots, read at scrape time so
 * the hot paths pay nothing for metrics.
 */
export interface BridgeView {
  readonly startedAt: number;
  readonly version: string;
  gateway(): GatewayStats;
  devices(): Iterable<DeviceView>;
  outbox(): OutboxStats;
  uplink(): UplinkStats;
}
