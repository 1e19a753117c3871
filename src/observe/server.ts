/**
 * The observability HTTP server (node:http, nothing else):
 *   GET /metrics     Prometheus text format
 *   GET /healthz     200 "ok", or 503 with a one-line reason (rule: health.ts)
 *   GET /api/status  JSON for the status page
 *   GET /            the status page
 *   /admin/…         the admin API (admin/api.ts), only with a token; 404 without one
 * Everything is read from the BridgeView per request; nothing here runs on the message path.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { answerAdminOff, type AdminApi } from '../admin/api.js';
import { whenBound } from '../listen.js';
import { systemClock, type Clock } from '../time.js';
import { AckRate } from './ack-rate.js';
import { checkHealth, type OutboxQuota } from './health.js';
import type { History } from './history.js';
import { createMetrics } from './metrics.js';
import type { RecentWarnings } from './recent.js';
import { buildStatusReport } from './status-api.js';
import { STATUS_PAGE_CSP, STATUS_PAGE_HTML } from './status-page.js';
import type { BridgeView } from './view.js';

export interface ObserveServerOptions {
  host: string;
  port: number;
  view: BridgeView;
  history: Pick<History, 'samples' | 'intervalMs'>;
  recent: Pick<RecentWarnings, 'entries'>;
  log: Logger;
  /** Whether the gateway takes datagrams now (false before start and while shutting down). */
  gatewayAccepting: () => boolean;
  /** The outbox's configured limits, for /healthz and the page's fill gauge. */
  outboxQuota: OutboxQuota;
  /** /healthz: a connected uplink with messages waiting and no broker answer this long is stalled. */
  stallMs?: number;
  /** Export process metrics (RSS, CPU, event loop); default true. */
  processMetrics?: boolean;
  /** Time for rates (monotonic) and the status report (wall); default the system clock. */
  clock?: Clock;
  /** The admin API; undefined (no token configured) keeps every /admin path off. */
  admin?: AdminApi;
  /** Packet trace log lines left out by its rate limit, for /metrics. */
  traceSuppressedLines?: () => number;
}

export interface ObserveServer {
  address: { host: string; port: number };
  close(): Promise<void>;
}

type Route = (res: ServerResponse) => Promise<void> | void;

export async function startObserveServer(options: ObserveServerOptions): Promise<ObserveServer> {
  const { host, port, view, log } = options;
  const clock = options.clock ?? systemClock;
  const ackRate = new AckRate(
    () => view.outbox().acked,
    undefined,
    undefined,
    () => clock.now(),
  );
  const replayRate = (): number => ackRate.perSecond();
  const metrics = createMetrics({
    view,
    replayRate,
    outboxQuota: options.outboxQuota,
    processMetrics: options.processMetrics ?? true,
    now: () => clock.wallNow(),
    admin: options.admin?.stats,
    traceSuppressedLines: options.traceSuppressedLines,
  });

  const routes: Record<string, Route> = {
    '/metrics': async (res) => send(res, 200, metrics.contentType, await metrics.render()),
    '/healthz': (res) => {
      const health = checkHealth({
        accepting: options.gatewayAccepting(),
        uplink: view.uplink(),
        outbox: view.outbox(),
        quota: options.outboxQuota,
        stallMs: options.stallMs,
      });
      send(
        res,
        health.ok ? 200 : 503,
        'text/plain; charset=utf-8',
        health.ok ? 'ok\n' : `${health.reason}\n`,
      );
    },
    '/api/status': (res) => {
      const report = buildStatusReport({ ...options, replayRate, now: () => clock.wallNow() });
      send(res, 200, 'application/json; charset=utf-8', JSON.stringify(report));
    },
    '/': (res) => {
      res.setHeader('Content-Security-Policy', STATUS_PAGE_CSP);
      send(res, 200, 'text/html; charset=utf-8', STATUS_PAGE_HTML);
    },
  };

  const server = createServer((req, res) => {
    handle(routes, req, res, options.admin).catch((err: unknown) => {
      log.error({ err, url: req.url }, 'observe: request failed');
      if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', 'internal error\n');
      else res.destroy();
    });
  });
  const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  await whenBound(server, (bound) => server.listen(port, host, bound)).catch((err: NodeJS.ErrnoException) => {
    throw new Error(`cannot listen for HTTP (metrics, status page) on ${where}: ${err.code ?? err.message}`, {
      cause: err,
    });
  });
  server.on('error', (err) => log.error({ err }, 'observe: HTTP server error'));
  ackRate.start();

  const bound = server.address() as AddressInfo;
  const address = { host: bound.address, port: bound.port };
  const url = `http://${address.host.includes(':') ? `[${address.host}]` : address.host}:${address.port}/`;
  log.info({ url }, 'status page, /metrics and /healthz listening');

  let closing: Promise<void> | undefined;
  return {
    address,
    close() {
      closing ??= new Promise<void>((resolve) => {
        ackRate.stop();
        server.close(() => resolve());
        // A status page open in a browser holds a keep-alive connection: do not wait for it.
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

async function handle(
  routes: Record<string, Route>,
  req: IncomingMessage,
  res: ServerResponse,
  admin: AdminApi | undefined,
): Promise<void> {
  const path = new URL(req.url ?? '/', 'http://localhost').pathname;
  if (path === '/admin' || path.startsWith('/admin/'))
    return admin ? admin.handle(req, res, path) : answerAdminOff(res);
  const route = Object.hasOwn(routes, path) ? routes[path] : undefined;
  if (route === undefined) return send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('Allow', 'GET, HEAD');
    return send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
  }
  await route(res);
}

function send(res: ServerResponse, status: number, contentType: string, body: string): void {
  res.statusCode = status;
  res.setHeader('Content-Type', contentType);
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  // HEAD: same headers, no body (node:http drops the body of a HEAD response itself).
  res.end(body);
}
