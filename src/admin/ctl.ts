/**
 * `mqttsn-bridge ctl …`: a command line over the admin API (api.ts). Finds the server and the token
 * the way the gateway does (flags, environment, config file), and turns the API's answers and
 * failures (connection refused, 401, 404) into one clear line each.
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../config/load.js';
import type { DeviceDetail, DeviceSummary } from '../gateway/control.js';
import type { TracedPacket } from '../gateway/trace.js';
import { CTL_HELP } from './ctl-help.js';

/** A wrong command line (exit 2). */
class UsageError extends Error {}
/** The gateway refused or could not be reached (exit 1). */
class RequestError extends Error {}

interface Target {
  url: string;
  token: string;
}

interface Output {
  out: (text: string) => void;
  err: (text: string) => void;
}

const stdio: Output = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
};

export async function runCtl(argv: string[], env = process.env, io: Output = stdio): Promise<number> {
  try {
    const { values, positionals } = parseCommandLine(argv);
    if (values.help || positionals.length === 0) {
      (values.help ? io.out : io.err)(CTL_HELP);
      return values.help ? 0 : 2;
    }
    const request = toRequest(positionals, values.will === true);
    const target = await findTarget(values, env);
    const body = await call(target, request);
    io.out(values.json ? `${JSON.stringify(body, null, 2)}\n` : request.show(body));
    return 0;
  } catch (err) {
    if (err instanceof UsageError || err instanceof ConfigError) {
      io.err(`mqttsn-bridge ctl: ${err.message}\n(see mqttsn-bridge ctl --help)\n`);
      return 2;
    }
    if (err instanceof RequestError) {
      io.err(`mqttsn-bridge ctl: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

function parseCommandLine(argv: string[]) {
  try {
    return parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        url: { type: 'string' },
        metrics: { type: 'string' },
        'token-file': { type: 'string' },
        config: { type: 'string', short: 'c' },
        will: { type: 'boolean' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
}

interface ApiRequest {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  path: string;
  body?: unknown;
  show(body: unknown): string;
}

function toRequest(positionals: string[], will: boolean): ApiRequest {
  const [command, ...args] = positionals;
  const one = (what: string): string => {
    if (args.length !== 1) throw new UsageError(`${what} takes one client id`);
    return args[0]!;
  };
  const session = (id: string): string => `/admin/sessions/${encodeURIComponent(id)}`;
  const trace = (id: string): string => `/admin/traces/${encodeURIComponent(id)}`;
  switch (command) {
    case 'list':
      if (args.length > 0) throw new UsageError('list takes no arguments');
      return { method: 'GET', path: '/admin/sessions', show: showList };
    case 'show':
      return { method: 'GET', path: session(one('show')), show: showDetail };
    case 'kick': {
      const id = one('kick');
      return {
        method: 'POST',
        path: `${session(id)}/kick`,
        body: { publishWill: will },
        show: (b) =>
          `kicked ${id}${(b as { willPublished: boolean }).willPublished ? ': will published' : ''}\n`,
      };
    }
    case 'forget': {
      const id = one('forget');
      return {
        method: 'DELETE',
        path: session(id),
        show: (b) => {
          const { queuedMessages, subscriptions } = b as { queuedMessages: number; subscriptions: number };
          return `forgot ${id}: ${subscriptions} subscriptions, ${queuedMessages} queued messages dropped\n`;
        },
      };
    }
    case 'trace':
      return traceRequest(args, trace);
    default:
      throw new UsageError(`unknown command ${JSON.stringify(command)}: list, show, kick, forget or trace`);
  }
}

function traceRequest(args: string[], path: (id: string) => string): ApiRequest {
  const [sub, id, ...rest] = args;
  if (sub === 'list' && id === undefined) return { method: 'GET', path: '/admin/traces', show: showTraces };
  if (id === undefined || rest.length > 0)
    throw new UsageError('expected trace list, or trace on|off|show ID');
  switch (sub) {
    case 'on':
      return { method: 'PUT', path: path(id), show: () => `tracing ${id}\n` };
    case 'off':
      return { method: 'DELETE', path: path(id), show: () => `not tracing ${id}\n` };
    case 'show':
      return { method: 'GET', path: path(id), show: showPackets };
    default:
      throw new UsageError(`unknown trace command ${JSON.stringify(sub)}: list, on, off or show`);
  }
}

/** Flags, then the environment, then the config file: the same order the gateway reads them in. */
async function findTarget(
  values: { url?: string; metrics?: string; 'token-file'?: string; config?: string },
  env: NodeJS.ProcessEnv,
): Promise<Target> {
  // Through the gateway's own loader: the config file and MQTTSN_BRIDGE_* mean what they mean to it.
  const config = await loadConfig({
    commandLine: { command: 'run', configFile: values.config, flags: new Map() },
    env,
  });
  const url = values.url ?? urlOf(values.metrics ?? config.metrics);
  if (url === undefined)
    throw new UsageError(
      'where is the gateway? give --url, --metrics HOST:PORT or -c CONFIG (its metrics setting)',
    );
  const tokenFile =
    values['token-file'] ?? (config.admin.token === undefined ? config.admin.tokenFile : undefined);
  let token = config.admin.token;
  if (tokenFile !== undefined) {
    try {
      token = (await readFile(tokenFile, 'utf8')).trim();
    } catch (err) {
      throw new UsageError(
        `cannot read the token file ${tokenFile} (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
      );
    }
  }
  if (!token)
    throw new UsageError('no admin token: give --token-file, MQTTSN_BRIDGE_ADMIN_TOKEN_FILE or -c CONFIG');
  return { url: url.replace(/\/+$/, ''), token };
}

function urlOf(metrics: string | undefined): string | undefined {
  if (metrics === undefined) return undefined;
  const match = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(metrics);
  if (!match) throw new UsageError(`expected HOST:PORT, got ${JSON.stringify(metrics)}`);
  let host = match[1] ?? match[2] ?? '';
  // A gateway listening on every address is reached on this host's loopback.
  if (host === '' || host === '0.0.0.0') host = '127.0.0.1';
  if (host === '::') host = '::1';
  return `http://${host.includes(':') ? `[${host}]` : host}:${match[3]}`;
}

async function call(target: Target, request: ApiRequest): Promise<unknown> {
  let response: Response;
  try {
    response = await fetch(target.url + request.path, {
      method: request.method,
      headers: {
        Authorization: `Bearer ${target.token}`,
        ...(request.body === undefined ? {} : { 'Content-Type': 'application/json' }),
      },
      body: request.body === undefined ? undefined : JSON.stringify(request.body),
      signal: AbortSignal.timeout(10_000),
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name;
    const hint =
      cause === 'ECONNREFUSED'
        ? ': is the gateway running, with --metrics at this address?'
        : cause === 'TimeoutError'
          ? ': no answer within 10 s'
          : '';
    throw new RequestError(`cannot reach ${target.url} (${cause})${hint}`);
  }
  const text = await response.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new RequestError(
      `${target.url} answered ${response.status} but not with JSON: is it an mqttsn-bridge?`,
    );
  }
  if (response.ok) return body;
  const message = (body as { error?: string }).error ?? `HTTP ${response.status}`;
  if (response.status === 401)
    throw new RequestError(
      `the gateway refused the token (401: ${message}): is it the one in its --admin-token-file?`,
    );
  throw new RequestError(`${response.status}: ${message}`);
}

function showList(body: unknown): string {
  const { now, sessions } = body as { now: number; sessions: DeviceSummary[] };
  if (sessions.length === 0) return 'no sessions\n';
  const rows = [...sessions]
    .sort((a, b) => (a.clientId < b.clientId ? -1 : a.clientId > b.clientId ? 1 : 0))
    .map((s) => [
      s.clientId,
      s.state,
      s.address || '-',
      s.cleanSession ? 'yes' : 'no',
      String(s.subscriptions),
      `${s.queuedMessages} (${s.queuedBytes} B)`,
      s.lastSeen === 0 ? '-' : `${Math.max(0, Math.round((now - s.lastSeen) / 1000))} s ago`,
      s.traced ? 'traced' : '',
    ]);
  return table(['CLIENT ID', 'STATE', 'ADDRESS', 'CLEAN', 'SUBS', 'QUEUED', 'LAST SEEN', ''], rows);
}

function showDetail(body: unknown): string {
  const d = body as DeviceDetail;
  const lines = [
    `client id:     ${d.clientId}`,
    `state:         ${d.state}`,
    `address:       ${d.address || '-'}`,
    `clean session: ${d.cleanSession ? 'yes' : 'no'}`,
    `keep-alive:    ${d.keepAliveSeconds} s${d.sleepSeconds > 0 ? `, sleeps ${d.sleepSeconds} s` : ''}`,
    `will:          ${d.hasWill ? 'yes' : 'no'}`,
    `queued:        ${d.queuedMessages} messages, ${d.queuedBytes} bytes`,
    `traced:        ${d.traced ? 'yes' : 'no'}`,
    `subscriptions: ${d.subscriptionList.length === 0 ? '-' : ''}`,
    ...d.subscriptionList.map((s) => `  ${s.filter} (QoS ${s.qos})`),
  ];
  return `${lines.join('\n')}\n`;
}

function showTraces(body: unknown): string {
  const { max, traced } = body as {
    max: number;
    traced: Array<{ clientId: string; configured: boolean; packets: number }>;
  };
  if (traced.length === 0) return `no device traced (at most ${max})\n`;
  return table(
    ['CLIENT ID', 'PACKETS KEPT', 'FROM'],
    traced.map((t) => [t.clientId, String(t.packets), t.configured ? '--trace-client' : 'admin API']),
  );
}

function showPackets(body: unknown): string {
  const { packets } = body as { packets: TracedPacket[] };
  if (packets.length === 0) return 'no datagrams yet\n';
  return packets
    .map(
      (p) =>
        `${new Date(p.time).toISOString()} ${p.direction === 'in' ? '<-' : '->'} ${p.address} ${p.type} ` +
        `${p.length} B ${p.hex}\n    ${JSON.stringify(p.packet)}\n`,
    )
    .join('');
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return `${[header, ...rows].map(line).join('\n')}\n`;
}
