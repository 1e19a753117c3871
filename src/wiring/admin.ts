import type { Logger } from 'pino';
import { createAdminApi, type AdminApi } from '../admin/api.js';
import { AdminAuth, loadAdminToken } from '../admin/auth.js';
import type { Config } from '../config/schema.js';
import { deviceControl } from '../gateway/control.js';
import type { Gateway } from '../gateway/gateway.js';
import { PacketTrace } from '../gateway/trace.js';
import type { Clock } from '../time.js';

/** The per-device packet trace, with `--trace-client` applied. */
export function createTrace(config: Config, log: Logger, clock: Clock): PacketTrace {
  const trace = new PacketTrace(log.child({ component: 'trace' }), clock);
  applyTraceClients(trace, config.traceClients, log);
  return trace;
}

/** --trace-client at start-up and on SIGHUP; ids past the trace's bound are named, not silently lost. */
export function applyTraceClients(trace: PacketTrace, clientIds: readonly string[], log: Logger): void {
  const refused = trace.configure(clientIds);
  if (refused.length > 0)
    log.warn({ refused, max: trace.maxClients }, 'too many traced clients: these are not traced');
}

/** The admin API, only when a token is configured (read from its file first: a flag shows in ps). */
export async function createAdmin(
  config: Config,
  gateway: Gateway,
  trace: PacketTrace,
  { log, clock }: { log: Logger; clock: Clock },
): Promise<AdminApi | undefined> {
  const token = await loadAdminToken(config.admin);
  if (!token) return undefined;
  if (config.metrics === undefined)
    log.warn('an admin token is set but --metrics is not: the admin API has no server to listen on');
  return createAdminApi({
    control: deviceControl(gateway, trace),
    auth: new AdminAuth(token),
    log: log.child({ component: 'admin' }),
    clock,
  });
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}
