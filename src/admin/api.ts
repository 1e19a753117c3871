/**
 * The admin API, mounted by observe/server.ts under /admin when a token is configured:
 *   GET    /admin/sessions              every session, summarised
 *   GET    /admin/sessions/:id          one session with its subscriptions
 *   POST   /admin/sessions/:id/kick     DISCONNECT it; body {"publishWill": true} publishes its will
 *   DELETE /admin/sessions/:id          forget it: session, downlink queue, broker subscriptions
 *   GET    /admin/traces                the traced devices
 *   PUT    /admin/traces/:id            trace a device (also before it connects)
 *   GET    /admin/traces/:id            its recent datagrams, oldest first
 *   DELETE /admin/traces/:id            stop tracing it
 * Every request needs `Authorization: Bearer <token>`; ids are percent-encoded path segments.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { DeviceControl } from '../gateway/control.js';
import { RateLimitedWarn } from '../log/rate-limit.js';
import type { AdminAuth } from './auth.js';

export type AdminOutcome =
  'ok' | 'unauthorized' | 'bad_request' | 'not_found' | 'conflict' | 'method_not_allowed' | 'too_large';

/** Counters for /metrics (mqttsn_admin_*). */
export class AdminStats {
  readonly requests: Record<AdminOutcome, number> = {
    ok: 0,
    unauthorized: 0,
    bad_request: 0,
    not_found: 0,
    conflict: 0,
    method_not_allowed: 0,
    too_large: 0,
  };
  readonly actions = { kick: 0, forget: 0, trace_on: 0, trace_off: 0 };
}

export interface AdminApiOptions {
  control: DeviceControl;
  auth: AdminAuth;
  log: Logger;
  /** Monotonic ms (the log rate limit) and wall ms (`now` in the listing, for ages). */
  clock: { now(): number; wallNow(): number };
}

export interface AdminApi {
  readonly stats: AdminStats;
  /** Answers one request whose path starts with /admin. */
  handle(req: IncomingMessage, res: ServerResponse, path: string): Promise<void>;
}

/** A kick body is a few bytes: anything much larger is not one. */
const MAX_BODY_BYTES = 1024;

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly outcome: AdminOutcome,
    message: string,
  ) {
    super(message);
  }
}

type Handler = (req: IncomingMessage, clientId: string) => Promise<unknown> | unknown;
type Methods = Partial<Record<'GET' | 'PUT' | 'POST' | 'DELETE', Handler>>;

export function createAdminApi({ control, auth, log, clock }: AdminApiOptions): AdminApi {
  const stats = new AdminStats();
  const warn = new RateLimitedWarn(log, 10_000, () => clock.now());

  const unknown = (clientId: string): never => {
    throw new HttpError(404, 'not_found', `no session for client id ${JSON.stringify(clientId)}`);
  };

  const session: Methods = {
    GET: (_req, clientId) => control.get(clientId) ?? unknown(clientId),
    DELETE: (_req, clientId) => {
      const result = control.forget(clientId);
      if (result.outcome === 'unknown') return unknown(clientId);
      stats.actions.forget++;
      return { clientId, ...result };
    },
  };

  const kick: Methods = {
    POST: async (req, clientId) => {
      const publishWill = parseKickBody(await readBody(req));
      const result = control.kick(clientId, { publishWill });
      if (result.outcome === 'unknown') return unknown(clientId);
      if (result.outcome === 'not-connected')
        throw new HttpError(
          409,
          'conflict',
          `${JSON.stringify(clientId)} is ${result.state}: nothing to kick (DELETE forgets its session)`,
        );
      stats.actions.kick++;
      return { clientId, ...result };
    },
  };

  const traced: Methods = {
    GET: (_req, clientId) => {
      const packets = control.trace.recent(clientId);
      if (!packets)
        throw new HttpError(404, 'not_found', `${JSON.stringify(clientId)} is not traced (PUT turns it on)`);
      return { clientId, packets };
    },
    PUT: (_req, clientId) => {
      const outcome = control.trace.set(clientId, true);
      if (outcome === 'full')
        throw new HttpError(
          409,
          'conflict',
          `already tracing ${control.trace.maxClients} devices: turn one off first`,
        );
      if (outcome === 'on') {
        stats.actions.trace_on++;
        log.info({ clientId }, 'packet trace on (admin API)');
      }
      return { clientId, traced: true };
    },
    DELETE: (_req, clientId) => {
      if (control.trace.set(clientId, false) === 'not-traced')
        throw new HttpError(404, 'not_found', `${JSON.stringify(clientId)} is not traced`);
      stats.actions.trace_off++;
      log.info({ clientId }, 'packet trace off (admin API)');
      return { clientId, traced: false };
    },
  };

  const collections: Record<string, Methods> = {
    sessions: { GET: () => ({ now: clock.wallNow(), sessions: control.list() }) },
    traces: { GET: () => ({ max: control.trace.maxClients, traced: control.trace.list() }) },
  };

  /** The handlers for a path below /admin, and the client id it names (if any). */
  const resolve = (segments: string[]): { methods: Methods; clientId: string } | undefined => {
    const [collection, id, action, ...rest] = segments;
    if (rest.length > 0 || collection === undefined) return undefined;
    if (id === undefined) {
      const methods = collections[collection];
      return methods && Object.hasOwn(collections, collection) ? { methods, clientId: '' } : undefined;
    }
    const clientId = decodeSegment(id);
    if (collection === 'sessions' && action === undefined) return { methods: session, clientId };
    if (collection === 'sessions' && action === 'kick') return { methods: kick, clientId };
    if (collection === 'traces' && action === undefined) return { methods: traced, clientId };
    return undefined;
  };

  return {
    stats,
    async handle(req, res, path) {
      const address = req.socket.remoteAddress;
      try {
        // Authentication first: without the token, nobody learns which admin paths exist.
        const verdict = auth.check(req.headers.authorization);
        if (verdict !== 'ok') {
          res.setHeader('WWW-Authenticate', 'Bearer realm="mqttsn-bridge admin"');
          warn.warn(
            `admin-auth|${verdict}`,
            { address, verdict, method: req.method, path },
            'admin API request refused: token missing or wrong',
          );
          throw new HttpError(
            401,
            'unauthorized',
            verdict === 'missing'
              ? 'missing Authorization: Bearer <token>'
              : verdict === 'malformed'
                ? 'malformed Authorization header: expected Bearer <token>'
                : 'wrong token',
          );
        }
        const segments = path.split('/').slice(2); // '', 'admin', …
        if (segments.at(-1) === '') segments.pop(); // /admin/sessions/ is /admin/sessions
        const route = resolve(segments);
        if (!route) throw new HttpError(404, 'not_found', `no admin route ${path}; see the README`);
        const handler = route.methods[req.method as keyof Methods];
        if (!handler) {
          res.setHeader('Allow', Object.keys(route.methods).join(', '));
          throw new HttpError(405, 'method_not_allowed', `${req.method ?? ''} not allowed on ${path}`);
        }
        const body = await handler(req, route.clientId);
        stats.requests.ok++;
        sendJson(res, 200, body);
      } catch (err) {
        if (!(err instanceof HttpError)) throw err;
        stats.requests[err.outcome]++;
        sendJson(res, err.status, { error: err.message });
      }
    },
  };
}

/** What /admin answers while no token is configured: off, and saying how to turn it on. */
export function answerAdminOff(res: ServerResponse): void {
  sendJson(res, 404, {
    error: 'the admin API is off: start the gateway with --admin-token-file (see the README, "Admin API")',
  });
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new HttpError(400, 'bad_request', 'malformed percent-encoding in the client id');
  }
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES)
      throw new HttpError(413, 'too_large', `request body over ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** `{"publishWill": true|false}`, or an empty body (no will). */
function parseKickBody(text: string): boolean {
  if (text.trim() === '') return false;
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new HttpError(400, 'bad_request', 'body is not JSON: expected {"publishWill": true|false}');
  }
  const publishWill = (body as { publishWill?: unknown } | null)?.publishWill;
  if (
    typeof body !== 'object' ||
    body === null ||
    (publishWill !== undefined && typeof publishWill !== 'boolean')
  )
    throw new HttpError(400, 'bad_request', 'expected {"publishWill": true|false}');
  return publishWill === true;
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = `${JSON.stringify(body)}\n`;
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Content-Length', Buffer.byteLength(text));
  res.end(text);
}
