import type { SessionState } from '../gateway/session.js';
import type { OutboxStats } from '../store/outbox.js';
import type { UplinkStats } from '../uplink/uplink.js';
import { checkHealth, outboxFill, type Health, type OutboxQuota } from './health.js';
import type { History, HistorySample } from './history.js';
import type { RecentEntry, RecentWarnings } from './recent.js';
import type { BridgeView, DeviceView } from './view.js';
import { systemClock } from '../time.js';

/** The body of GET /api/status, which the status page polls. */
export interface StatusReport {
  version: string;
  /** Server wall-clock ms: the page computes ages from it, not from the phone's clock. */
  now: number;
  uptimeSeconds: number;
  health: Health;
  uplink: UplinkStats & { replayRate: number };
  outbox: OutboxStats & { oldestAgeSeconds: number; quota: OutboxQuota; fill: number };
  history: { intervalSeconds: number; samples: HistorySample[] };
  devices: { total: number; shown: DeviceView[] };
  recent: RecentEntry[];
}

export interface StatusSources {
  view: BridgeView;
  history: Pick<History, 'samples' | 'intervalMs'>;
  recent: Pick<RecentWarnings, 'entries'>;
  gatewayAccepting: () => boolean;
  outboxQuota: OutboxQuota;
  stallMs?: number;
  replayRate: () => number;
  now?: () => number;
}

/** A page with thousands of rows helps nobody and costs the Pi; the metrics have the totals. */
export const MAX_DEVICES_SHOWN = 500;

/** Problems first, then by client id, so rows stay put from one poll to the next. */
const STATE_ORDER: Record<SessionState, number> = {
  lost: 0,
  disconnected: 1,
  connecting: 2,
  asleep: 3,
  awake: 4,
  active: 5,
};

export function buildStatusReport(sources: StatusSources): StatusReport {
  const { view, history, recent } = sources;
  const now = (sources.now ?? (() => systemClock.wallNow()))();
  const outbox = view.outbox();
  const uplink = view.uplink();
  const devices = [...view.devices()].sort(
    (a, b) => STATE_ORDER[a.state] - STATE_ORDER[b.state] || compare(a.clientId, b.clientId),
  );
  return {
    version: view.version,
    now,
    uptimeSeconds: Math.max(0, Math.round((now - view.startedAt) / 1000)),
    health: checkHealth({
      accepting: sources.gatewayAccepting(),
      uplink,
      outbox,
      quota: sources.outboxQuota,
      stallMs: sources.stallMs,
    }),
    uplink: { ...uplink, replayRate: sources.replayRate() },
    outbox: {
      ...outbox,
      oldestAgeSeconds:
        outbox.oldestReceivedAt === null ? 0 : Math.max(0, (now - outbox.oldestReceivedAt) / 1000),
      quota: sources.outboxQuota,
      fill: outboxFill(outbox, sources.outboxQuota),
    },
    history: { intervalSeconds: history.intervalMs / 1000, samples: history.samples() },
    devices: {
      total: devices.length,
      shown: devices
        .slice(0, MAX_DEVICES_SHOWN)
        .map(({ clientId, state, address, lastSeen, messagesIn, queued }) => ({
          clientId,
          state,
          address,
          lastSeen,
          messagesIn,
          queued,
        })),
    },
    recent: recent.entries(),
  };
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
