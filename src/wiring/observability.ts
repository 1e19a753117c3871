import type { Logger } from 'pino';
import type { AdminApi } from '../admin/api.js';
import type { Config } from '../config/schema.js';
import { parseHostPort } from '../config/schema.js';
import type { Gateway } from '../gateway/gateway.js';
import { describePeer } from '../gateway/peer.js';
import { History } from '../observe/history.js';
import type { RecentWarnings } from '../observe/recent.js';
import { startObserveServer, type ObserveServer } from '../observe/server.js';
import type { BridgeView } from '../observe/view.js';
import type { Outbox } from '../store/outbox.js';
import type { Clock } from '../time.js';
import type { Uplink } from '../uplink/uplink.js';
import { isLoopback } from './admin.js';

export interface Observability {
  server: ObserveServer;
  history: History;
}

/** What the HTTP side reads, at scrape time, from plain counters: nothing runs on the message path. */
export function bridgeView(
  sources: { gateway: Gateway; outbox: Outbox; uplink: Uplink; clock: Clock },
  version: string,
): BridgeView {
  const { gateway, outbox, uplink, clock } = sources;
  return {
    startedAt: clock.wallNow(),
    version,
    gateway: () => gateway.stats,
    *devices() {
      for (const session of gateway.sessions.all()) {
        yield {
          clientId: session.clientId,
          state: session.state,
          address: session.peer.port === 0 ? '' : describePeer(session.peer),
          lastSeen: session.lastSeenWall,
          messagesIn: session.messagesIn,
          queued: session.outgoing.length,
        };
      }
    },
    outbox: () => outbox.stats,
    uplink: () => uplink.stats,
  };
}

/** /metrics, /healthz and the status page on `config.metrics`. */
export async function startObservability(
  config: Config & { metrics: string },
  sources: { gateway: Gateway; outbox: Outbox; uplink: Uplink; clock: Clock },
  {
    log,
    recent,
    version,
    admin,
    traceSuppressedLines,
  }: {
    log: Logger;
    recent?: RecentWarnings;
    version: string;
    /** The admin API (undefined without a token: every /admin path stays off). */
    admin?: AdminApi;
    traceSuppressedLines?: () => number;
  },
): Promise<Observability> {
  const view = bridgeView(sources, version);
  const history = new History(view, { now: () => sources.clock.wallNow() });
  history.start();
  const { host, port } = parseHostPort(config.metrics)!;
  try {
    const server = await startObserveServer({
      host,
      port,
      view,
      history,
      recent: recent ?? { entries: () => [] },
      log: log.child({ component: 'http' }),
      gatewayAccepting: () => sources.gateway.isAccepting,
      outboxQuota: { maxMessages: config.outbox.maxMessages, maxBytes: config.outbox.maxBytes },
      stallMs: config.broker.stallSeconds * 1000,
      clock: sources.clock,
      admin,
      traceSuppressedLines,
    });
    if (admin && !isLoopback(host))
      log.warn(
        { metrics: config.metrics },
        'the admin API listens on a non-loopback address over plain HTTP: bind --metrics to 127.0.0.1 or put TLS in front',
      );
    return { server, history };
  } catch (err) {
    history.stop();
    throw err;
  }
}
