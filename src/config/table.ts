import { z } from 'zod';
import { allowEntryProblem, rangeProblem } from '../gateway/allow-list.js';
import {
  DEFAULT_IDLE_SESSION_EXPIRY_MS,
  DEFAULT_MAX_BROKER_SUBSCRIPTIONS,
  DEFAULT_MAX_SESSIONS_PER_ADDRESS,
  DEFAULT_MAX_SUBSCRIPTIONS_PER_CLIENT,
  DEFAULT_MAX_TAKEOVER_PROBES,
  DEFAULT_TAKEOVER_PROBE_MS,
} from '../gateway/options.js';
import { OUTBOX_DEFAULTS } from '../store/outbox-defaults.js';
import { UPLINK_DEFAULTS } from '../uplink/options.js';
import { DEFAULT_NAMESPACE, namespaceTemplateProblem, siteNameProblem } from './text-formats.js';

/**
 * Every setting, once: its config-file key (the place in this tree), flag, help, what it accepts
 * and its default (the zod schema), and whether a SIGHUP applies it while running. The zod schema
 * (schema.ts), the flags and environment variables (load.ts), --help (help.ts) and the README's
 * table (`npm run docs:config`) are all derived from here, so none can drift from another.
 *
 * To add a setting: one `row({...})` in the right place of the tree (a new section: `group(...)`).
 * The environment variable is derived from the flag: MQTTSN_BRIDGE_ + the flag in upper snake case.
 */

export type SettingKind = 'string' | 'number' | 'boolean' | 'list' | 'predefined';
export type SettingSection = 'Device side' | 'Broker uplink' | 'Outbox' | 'Downlink' | 'Limits' | 'General';

export interface SettingRow<S extends z.ZodType = z.ZodType> {
  flag: string;
  /** How a flag or environment value (text) becomes the value the schema checks. */
  kind: SettingKind;
  /** Shown by --help and the README. */
  help: string;
  /** Placeholder in --help, e.g. URL. */
  arg?: string;
  section: SettingSection;
  /** What the setting accepts, and its default (`.default()`), or `.optional()` when it has none. */
  schema: S;
  /** A SIGHUP applies it without a restart. */
  live: boolean;
}

/** A nested section of the config file: always present (its keys take their defaults) or optional. */
export interface SettingGroup<
  R extends Record<string, SettingRow> = Record<string, SettingRow>,
  P extends 'always' | 'optional' = 'always' | 'optional',
> {
  presence: P;
  rows: R;
}

export type SettingEntry = SettingRow | SettingGroup;

function row<S extends z.ZodType>(setting: SettingRow<S>): SettingRow<S> {
  return setting;
}

function group<P extends 'always' | 'optional', R extends Record<string, SettingRow>>(
  presence: P,
  rows: R,
): SettingGroup<R, P> {
  return { presence, rows };
}

export function isGroup(entry: SettingEntry): entry is SettingGroup {
  return 'rows' in entry;
}

/** `HOST:PORT`, `[v6]:PORT` or `:PORT` (all interfaces). */
export function parseHostPort(text: string): { host: string; port: number } | undefined {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text);
  if (!match) return undefined;
  const port = Number(match[3]);
  if (port > 65535) return undefined;
  const host = match[1] ?? match[2] ?? '';
  return { host: host === '' ? '0.0.0.0' : host, port };
}

const hostPort = z.string().refine((s) => parseHostPort(s) !== undefined, {
  message: 'expected HOST:PORT, e.g. 0.0.0.0:1883 or [::]:1883',
});

const brokerUrl = z.string().refine((s) => /^(mqtt|mqtts|tcp|ssl|tls):\/\/[^/]+/.test(s), {
  message: 'expected an mqtt:// or mqtts:// URL, e.g. mqtt://broker.example:1883',
});

const predefinedTopic = z.object({
  id: z.coerce.number().int().min(1).max(0xfffe),
  topic: z.string().refine((t) => t.length > 0 && !t.includes('+') && !t.includes('#'), {
    message: 'expected an MQTT topic name without wildcards',
  }),
  /** Only for this client; all clients when absent. */
  clientId: z.string().min(1).optional(),
});

/** Predefined topics; one topic id twice (for the same client, or for all) is a mistake. */
const predefinedTopics = z
  .array(predefinedTopic)
  .default([])
  .superRefine((entries, ctx) => {
    const seen = new Set<string>();
    for (const [i, entry] of entries.entries()) {
      const key = `${entry.clientId ?? '*'}:${entry.id}`;
      if (seen.has(key)) {
        ctx.addIssue({
          code: 'custom',
          path: [i, 'id'],
          message: `topic id ${entry.id} is defined twice${entry.clientId ? ` for client ${entry.clientId}` : ''}`,
        });
      }
      seen.add(key);
    }
  });

/** Client ids allowed to connect: exact ids or prefixes ending in '*', optionally @CIDR. Empty: everyone. */
const allowList = z
  .array(
    z
      .string()
      .min(1)
      .superRefine((entry, ctx) => {
        const problem = allowEntryProblem(entry);
        if (problem)
          ctx.addIssue({
            code: 'custom',
            message: `expected ID, PREFIX* or *, optionally @CIDR: ${problem}`,
          });
      }),
  )
  .default([]);

/** With an allow-list: address ranges QoS −1 senders (no CONNECT) may publish from. */
const addressRanges = z
  .array(
    z.string().superRefine((range, ctx) => {
      const problem = rangeProblem(range);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    }),
  )
  .default([]);

export const settingsTable = {
  listen: row({
    section: 'Device side',
    flag: 'listen',
    kind: 'list',
    arg: 'HOST:PORT',
    help: 'UDP address for MQTT-SN; repeat for several (e.g. [::]:1883 for IPv6)',
    schema: z.array(hostPort).min(1).default(['0.0.0.0:1883']),
    live: false,
  }),
  namespace: row({
    section: 'Device side',
    flag: 'namespace',
    kind: 'string',
    arg: 'TEMPLATE',
    help: 'broker topic prefix for device topics; {clientId}, {gatewayId} and {site} are replaced',
    schema: z
      .string()
      .refine((t) => namespaceTemplateProblem(t) === null, {
        message: "expected a template ending in '/', e.g. mqttsn/{clientId}/",
      })
      .default(DEFAULT_NAMESPACE),
    live: false,
  }),
  predefined: row({
    section: 'Device side',
    flag: 'predefined',
    kind: 'predefined',
    arg: '[CLIENT:]ID=TOPIC',
    help: 'predefined topic id mapped to an absolute broker topic; repeatable',
    schema: predefinedTopics,
    live: true,
  }),
  gatewayId: row({
    section: 'Device side',
    flag: 'gateway-id',
    kind: 'number',
    arg: 'N',
    help: 'gateway id 0..255 in GWINFO and ADVERTISE',
    schema: z.number().int().min(0).max(255).default(1),
    live: false,
  }),
  site: row({
    section: 'Device side',
    flag: 'site',
    kind: 'string',
    arg: 'NAME',
    help: "this gateway's site, one topic level; replaces {site} in --namespace (e.g. mqttsn/{site}/{clientId}/)",
    schema: z
      .string()
      .refine((s) => siteNameProblem(s) === null, {
        message: "expected one topic level without '/', '+', '#' or a leading '$', e.g. plant-a",
      })
      .optional(),
    live: false,
  }),
  anonymousClientId: row({
    section: 'Device side',
    flag: 'anonymous-client-id',
    kind: 'string',
    arg: 'ID',
    help: 'client id that names QoS -1 messages from senders without a session',
    schema: z.string().min(1).default('$anonymous'),
    live: false,
  }),
  allowClients: row({
    section: 'Device side',
    flag: 'allow-client',
    kind: 'list',
    arg: 'ID|PREFIX*',
    help: 'only these client ids may connect (repeatable; a trailing * matches a prefix; @CIDR binds them to addresses); default: all',
    schema: allowList,
    live: true,
  }),
  allowQosMinusOne: row({
    section: 'Device side',
    flag: 'allow-qos-minus-one',
    kind: 'list',
    arg: 'CIDR',
    help: 'with an allow-list, QoS -1 publishes (no CONNECT) are taken only from these ranges (or *@CIDR entries)',
    schema: addressRanges,
    live: true,
  }),
  takeoverProbeMs: row({
    section: 'Device side',
    flag: 'takeover-probe',
    kind: 'number',
    arg: 'MS',
    help: 'a session moves to a new address only if its old one does not answer PINGREQ within this',
    schema: z.number().int().min(50).max(60_000).default(DEFAULT_TAKEOVER_PROBE_MS),
    live: true,
  }),
  deviceSessionExpirySeconds: row({
    section: 'Device side',
    flag: 'device-session-expiry',
    kind: 'number',
    arg: 'S',
    help: 'forget a CleanSession=0 device session (subscriptions, queued messages) after this long without the device; 0: never',
    schema: z
      .number()
      .int()
      .min(0)
      .default(7 * 86_400),
    live: true,
  }),
  idleSessionExpirySeconds: row({
    section: 'Device side',
    flag: 'idle-session-expiry',
    kind: 'number',
    arg: 'S',
    help: 'the same for a session whose client never published, subscribed or registered; 0: as others',
    schema: z
      .number()
      .int()
      .min(0)
      .default(DEFAULT_IDLE_SESSION_EXPIRY_MS / 1000),
    live: true,
  }),
  advertise: group('optional', {
    address: row({
      section: 'Device side',
      flag: 'advertise',
      kind: 'string',
      arg: 'HOST:PORT',
      help: 'send ADVERTISE periodically to this address (off by default)',
      schema: hostPort,
      live: false,
    }),
    intervalSeconds: row({
      section: 'Device side',
      flag: 'advertise-interval',
      kind: 'number',
      arg: 'S',
      help: 'seconds between ADVERTISE messages',
      schema: z.number().int().min(1).max(65535).default(900),
      live: false,
    }),
  }),
  broker: group('always', {
    urls: row({
      section: 'Broker uplink',
      flag: 'broker',
      kind: 'list',
      arg: 'URL',
      help: 'MQTT broker (mqtt:// or mqtts://). Repeat for failover in order. None: an embedded broker on 127.0.0.1:1883',
      schema: z.array(brokerUrl).default([]),
      live: false,
    }),
    protocolVersion: row({
      section: 'Broker uplink',
      flag: 'mqtt-version',
      kind: 'number',
      arg: '4|5',
      help: 'MQTT protocol to the broker: 4 (3.1.1) or 5',
      schema: z.union([z.literal(4), z.literal(5)]).default(5),
      live: false,
    }),
    clientId: row({
      section: 'Broker uplink',
      flag: 'uplink-client-id',
      kind: 'string',
      arg: 'ID',
      help: 'client id towards the broker (default mqttsn-bridge-<hostname>-<8 hex>, generated once, kept in the data dir)',
      schema: z.string().min(1).optional(),
      live: false,
    }),
    username: row({
      section: 'Broker uplink',
      flag: 'username',
      kind: 'string',
      arg: 'NAME',
      help: 'broker user name',
      schema: z.string().optional(),
      live: false,
    }),
    password: row({
      section: 'Broker uplink',
      flag: 'password',
      kind: 'string',
      arg: 'SECRET',
      help: 'broker password (prefer the environment or the config file)',
      schema: z.string().optional(),
      live: false,
    }),
    ca: row({
      section: 'Broker uplink',
      flag: 'ca',
      kind: 'string',
      arg: 'FILE',
      help: 'CA certificate (PEM) to verify the broker',
      schema: z.string().optional(),
      live: false,
    }),
    cert: row({
      section: 'Broker uplink',
      flag: 'cert',
      kind: 'string',
      arg: 'FILE',
      help: 'client certificate (PEM) for mutual TLS',
      schema: z.string().optional(),
      live: false,
    }),
    key: row({
      section: 'Broker uplink',
      flag: 'key',
      kind: 'string',
      arg: 'FILE',
      help: 'client private key (PEM) for mutual TLS',
      schema: z.string().optional(),
      live: false,
    }),
    rejectUnauthorized: row({
      section: 'Broker uplink',
      flag: 'verify-broker',
      kind: 'boolean',
      help: 'verify the broker certificate (--no-verify-broker: do not; testing only)',
      schema: z.boolean().default(true),
      live: false,
    }),
    keepaliveSeconds: row({
      section: 'Broker uplink',
      flag: 'keepalive',
      kind: 'number',
      arg: 'S',
      help: 'MQTT keep-alive; a dead or half-open link is detected within it',
      schema: z.number().int().min(1).max(65535).default(UPLINK_DEFAULTS.keepaliveSeconds),
      live: false,
    }),
    window: row({
      section: 'Broker uplink',
      flag: 'window',
      kind: 'number',
      arg: 'N',
      help: "QoS 1 messages in flight to the broker (capped by the broker's receive maximum)",
      schema: z.number().int().min(1).max(65535).default(UPLINK_DEFAULTS.window),
      live: false,
    }),
    reconnectInitialMs: row({
      section: 'Broker uplink',
      flag: 'reconnect-initial',
      kind: 'number',
      arg: 'MS',
      help: 'first reconnect delay; doubles per failed round, with jitter',
      schema: z.number().int().min(10).default(UPLINK_DEFAULTS.reconnect.initialMs),
      live: false,
    }),
    reconnectMaxMs: row({
      section: 'Broker uplink',
      flag: 'reconnect-max',
      kind: 'number',
      arg: 'MS',
      help: 'longest reconnect delay',
      schema: z.number().int().min(10).default(UPLINK_DEFAULTS.reconnect.maxMs),
      live: false,
    }),
    stallSeconds: row({
      section: 'Broker uplink',
      flag: 'uplink-stall',
      kind: 'number',
      arg: 'S',
      help: '/healthz fails when the broker answered no waiting message this long while the uplink was connected',
      schema: z.number().int().min(1).default(60),
      live: false,
    }),
    sessionExpirySeconds: row({
      section: 'Broker uplink',
      flag: 'session-expiry',
      kind: 'number',
      arg: 'S',
      help: 'keep the broker session (and messages for devices) this long while the gateway is away; 0: clean session',
      schema: z.number().int().min(0).max(0xffffffff).default(UPLINK_DEFAULTS.sessionExpirySeconds),
      live: false,
    }),
  }),
  dataDir: row({
    section: 'Outbox',
    flag: 'data-dir',
    kind: 'string',
    arg: 'DIR',
    help: 'where the LevelDB outbox lives',
    schema: z.string().min(1).default('./data'),
    live: false,
  }),
  outbox: group('always', {
    maxMessages: row({
      section: 'Outbox',
      flag: 'outbox-max-messages',
      kind: 'number',
      arg: 'N',
      help: 'outbox quota in messages',
      schema: z.number().int().min(1).default(OUTBOX_DEFAULTS.maxMessages),
      live: false,
    }),
    maxBytes: row({
      section: 'Outbox',
      flag: 'outbox-max-bytes',
      kind: 'number',
      arg: 'BYTES',
      help: 'outbox quota in bytes',
      schema: z.number().int().min(1024).default(OUTBOX_DEFAULTS.maxBytes),
      live: false,
    }),
    ttlSeconds: row({
      section: 'Outbox',
      flag: 'outbox-ttl',
      kind: 'number',
      arg: 'S',
      help: 'drop buffered messages older than this (0: never)',
      schema: z.number().int().min(0).default(0),
      live: false,
    }),
    policy: row({
      section: 'Outbox',
      flag: 'outbox-policy',
      kind: 'string',
      arg: 'reject|drop-oldest',
      help: 'when full: refuse new messages (QoS 1 gets PUBACK "congestion") or drop the oldest',
      schema: z.enum(['reject', 'drop-oldest']).default('reject'),
      live: false,
    }),
    bufferQos0: row({
      section: 'Outbox',
      flag: 'buffer-qos0',
      kind: 'boolean',
      help: 'buffer QoS 0/-1 messages while the uplink is down (--no-buffer-qos0: drop them)',
      schema: z.boolean().default(true),
      live: false,
    }),
    maxDeadLetters: row({
      section: 'Outbox',
      flag: 'max-dead-letters',
      kind: 'number',
      arg: 'N',
      help: 'messages the broker refused, kept for `mqttsn-bridge dead-letters`; past this the oldest are deleted',
      schema: z.number().int().min(1).default(10_000),
      live: false,
    }),
  }),
  downlink: group('always', {
    // The spec suggests 10–15 s.
    retrySeconds: row({
      section: 'Downlink',
      flag: 'retry',
      kind: 'number',
      arg: 'S',
      help: 'T_retry: resend REGISTER / PUBLISH / PUBREL to a device after this long without an answer',
      schema: z.number().min(0.1).max(3600).default(10),
      live: true,
    }),
    // The spec suggests 3–5.
    maxRetries: row({
      section: 'Downlink',
      flag: 'max-retries',
      kind: 'number',
      arg: 'N',
      help: 'N_retry: resends before the device is considered lost (its will is published)',
      schema: z.number().int().min(0).max(100).default(3),
      live: true,
    }),
    maxQueuedPerClient: row({
      section: 'Downlink',
      flag: 'downlink-queue',
      kind: 'number',
      arg: 'N',
      help: 'messages kept per device while it sleeps or is away',
      schema: z.number().int().min(1).max(1_000_000).default(100),
      live: true,
    }),
    // 100 messages of 10 KB.
    maxBytesPerClient: row({
      section: 'Downlink',
      flag: 'downlink-queue-bytes',
      kind: 'number',
      arg: 'BYTES',
      help: 'bytes kept per device while it sleeps or is away (then --downlink-policy applies)',
      schema: z
        .number()
        .int()
        .min(1024)
        .default(1024 * 1024),
      live: true,
    }),
    // On disk; RAM holds only an index.
    maxBytes: row({
      section: 'Downlink',
      flag: 'downlink-max-bytes',
      kind: 'number',
      arg: 'BYTES',
      help: 'bytes kept for all devices together; beyond it new messages are dropped',
      schema: z
        .number()
        .int()
        .min(1024)
        .default(256 * 1024 * 1024),
      live: true,
    }),
    policy: row({
      section: 'Downlink',
      flag: 'downlink-policy',
      kind: 'string',
      arg: 'drop-oldest|reject',
      help: 'when a device queue is full: drop its oldest message or the new one',
      schema: z.enum(['drop-oldest', 'reject']).default('drop-oldest'),
      live: true,
    }),
    maxPacketSize: row({
      section: 'Downlink',
      flag: 'downlink-max-packet-size',
      kind: 'number',
      arg: 'BYTES',
      help: 'largest datagram sent to a device; a larger broker message is acknowledged and dropped (counted)',
      schema: z.number().int().min(16).max(0xffff).default(0xffff),
      live: true,
    }),
    bufferQos0ForSleepers: row({
      section: 'Downlink',
      flag: 'buffer-qos0-for-sleepers',
      kind: 'boolean',
      help: 'keep QoS 0 messages for sleeping devices too (QoS 1/2 always are)',
      schema: z.boolean().default(true),
      live: true,
    }),
  }),
  limits: group('always', {
    maxClients: row({
      section: 'Limits',
      flag: 'max-clients',
      kind: 'number',
      arg: 'N',
      help: 'sessions at once; more get CONNACK "congestion"',
      schema: z.number().int().min(1).default(10_000),
      live: true,
    }),
    maxTopicsPerClient: row({
      section: 'Limits',
      flag: 'max-topics',
      kind: 'number',
      arg: 'N',
      help: 'registered topics per client; more get REGACK "congestion"',
      schema: z.number().int().min(1).max(0xfffd).default(256),
      live: true,
    }),
    maxPacketSize: row({
      section: 'Limits',
      flag: 'max-packet-size',
      kind: 'number',
      arg: 'BYTES',
      help: 'largest datagram accepted; a larger PUBLISH gets PUBACK "not supported"',
      schema: z.number().int().min(16).max(0xffff).default(1024),
      live: true,
    }),
    maxClientIdLength: row({
      section: 'Limits',
      flag: 'max-client-id-length',
      kind: 'number',
      arg: 'N',
      help: 'longest client id in bytes (MQTT-SN says 23)',
      schema: z.number().int().min(1).max(0xffff).default(23),
      live: true,
    }),
    // Sensors hold a handful; 64 bounds a flood at 64 × --max-clients.
    maxSubscriptions: row({
      section: 'Limits',
      flag: 'max-subscriptions',
      kind: 'number',
      arg: 'N',
      help: 'subscriptions per client; more get SUBACK "congestion"',
      schema: z.number().int().min(1).max(100_000).default(DEFAULT_MAX_SUBSCRIPTIONS_PER_CLIENT),
      live: true,
    }),
    // Five per device at the default --max-clients.
    maxBrokerSubscriptions: row({
      section: 'Limits',
      flag: 'max-broker-subscriptions',
      kind: 'number',
      arg: 'N',
      help: 'distinct broker subscriptions for all clients together; more get SUBACK "congestion"',
      schema: z.number().int().min(1).default(DEFAULT_MAX_BROKER_SUBSCRIPTIONS),
      live: true,
    }),
    // Room for a forwarder's nodes, a small share of --max-clients.
    maxSessionsPerAddress: row({
      section: 'Limits',
      flag: 'max-sessions-per-address',
      kind: 'number',
      arg: 'N',
      help: 'sessions per source IP; a new one evicts its oldest idle disconnected session, else CONNACK "congestion"',
      schema: z.number().int().min(1).default(DEFAULT_MAX_SESSIONS_PER_ADDRESS),
      live: true,
    }),
    maxTakeoverProbes: row({
      section: 'Limits',
      flag: 'max-takeover-probes',
      kind: 'number',
      arg: 'N',
      help: 'takeover probes waiting at once; more takeovers get CONNACK "congestion"',
      schema: z.number().int().min(1).default(DEFAULT_MAX_TAKEOVER_PROBES),
      live: true,
    }),
  }),
  logLevel: row({
    section: 'General',
    flag: 'log-level',
    kind: 'string',
    arg: 'LEVEL',
    help: 'fatal, error, warn, info, debug, trace or silent',
    schema: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    live: true,
  }),
  logFormat: row({
    section: 'General',
    flag: 'log-format',
    kind: 'string',
    arg: 'auto|json|pretty|journal',
    help: 'auto: journal under systemd, pretty on a terminal (needs the optional pino-pretty), else json; journal: JSON lines with sd-daemon priority prefixes',
    schema: z.enum(['auto', 'json', 'pretty', 'journal']).default('auto'),
    live: false,
  }),
  metrics: row({
    section: 'General',
    flag: 'metrics',
    kind: 'string',
    arg: 'HOST:PORT',
    help: 'serve Prometheus /metrics, /healthz and the status page here (off by default), e.g. 0.0.0.0:18830',
    schema: hostPort.optional(),
    live: false,
  }),
  /** The admin API on the metrics server: off unless a token is set (the file is preferred). */
  admin: group('always', {
    tokenFile: row({
      section: 'General',
      flag: 'admin-token-file',
      kind: 'string',
      arg: 'FILE',
      help: 'turn on the admin API (/admin on the --metrics server, mqttsn-bridge ctl) with the token in this file',
      schema: z.string().min(1).optional(),
      live: false,
    }),
    token: row({
      section: 'General',
      flag: 'admin-token',
      kind: 'string',
      arg: 'TOKEN',
      help: 'the admin token itself, 16+ characters (prefer --admin-token-file: a flag shows in ps)',
      schema: z
        .string()
        .regex(/^\S{16,}$/, {
          message: 'expected at least 16 characters without spaces, e.g. openssl rand -hex 32',
        })
        .optional(),
      live: false,
    }),
  }),
  traceClients: row({
    section: 'General',
    flag: 'trace-client',
    kind: 'list',
    arg: 'ID',
    help: 'log every datagram to and from this client at info, decoded and in hex (repeatable; SIGHUP reloads)',
    schema: z.array(z.string().min(1)).default([]),
    live: true,
  }),
  presenceTopic: row({
    section: 'General',
    flag: 'presence-topic',
    kind: 'string',
    arg: 'TEMPLATE',
    help: 'publish device presence (online / asleep / offline / lost, retained) here, e.g. mqttsn/{clientId}/$presence',
    schema: z
      .string()
      .refine((t) => t.includes('{clientId}') && !/[+#]/.test(t), {
        message: 'expected a topic with {clientId} and no wildcards',
      })
      .optional(),
    live: false,
  }),
  statsTopic: row({
    section: 'General',
    flag: 'stats-topic',
    kind: 'string',
    arg: 'TOPIC',
    help: 'publish gateway statistics (JSON) here every --stats-interval seconds',
    schema: z
      .string()
      .refine((t) => t.length > 0 && !/[+#]/.test(t), { message: 'expected a topic name without wildcards' })
      .optional(),
    live: false,
  }),
  statsIntervalSeconds: row({
    section: 'General',
    flag: 'stats-interval',
    kind: 'number',
    arg: 'S',
    help: 'seconds between statistics messages',
    schema: z.number().int().min(1).max(86_400).default(60),
    live: false,
  }),
};
