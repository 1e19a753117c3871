import { z } from 'zod';
import { DEFAULT_NAMESPACE, namespaceProblem, siteProblem } from '../topics/namespace.js';
import { allowEntryProblem, rangeProblem } from '../gateway/allow-list.js';

/**
 * Every setting, its default and what it accepts. The single source for the config file, the
 * environment, the flags, `check-config` and the README's table.
 */

const hostPort = z.string().refine((s) => parseHostPort(s) !== undefined, {
  message: 'expected HOST:PORT, e.g. 0.0.0.0:1883 or [::]:1883',
});

const brokerUrl = z.string().refine((s) => /^(mqtt|mqtts|tcp|ssl|tls):\/\/[^/]+/.test(s), {
  message: 'expected an mqtt:// or mqtts:// URL, e.g. mqtt://broker.example:1883',
});

const topicId = z.coerce.number().int().min(1).max(0xfffe);

const predefinedTopic = z.object({
  id: topicId,
  topic: z.string().refine((t) => t.length > 0 && !t.includes('+') && !t.includes('#'), {
    message: 'expected an MQTT topic name without wildcards',
  }),
  /** Only for this client; all clients when absent. */
  clientId: z.string().min(1).optional(),
});

export const configSchema = z.strictObject({
  listen: z.array(hostPort).min(1).default(['0.0.0.0:1883']),
  dataDir: z.string().min(1).default('./data'),
  gatewayId: z.number().int().min(0).max(255).default(1),
  namespace: z
    .string()
    .refine((t) => namespaceProblem(t) === null, {
      message: "expected a template ending in '/', e.g. mqttsn/{clientId}/",
    })
    .default(DEFAULT_NAMESPACE),
  /** Replaces {site} in the namespace: one topic level naming this gateway's site. */
  site: z
    .string()
    .refine((s) => siteProblem(s) === null, {
      message: "expected one topic level without '/', '+', '#' or a leading '$', e.g. plant-a",
    })
    .optional(),
  anonymousClientId: z.string().min(1).default('$anonymous'),
  predefined: z
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
    }),
  /** A CleanSession=0 device session disconnected or lost this long is forgotten; 0: never. */
  deviceSessionExpirySeconds: z
    .number()
    .int()
    .min(0)
    .default(7 * 86_400),
  /** A session whose client never did anything but CONNECT is forgotten this soon once disconnected; 0: as others. */
  idleSessionExpirySeconds: z.number().int().min(0).default(300),
  /** Client ids allowed to connect: exact ids or prefixes ending in '*'. Empty: everyone. */
  allowClients: z
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
    .default([]),
  /** With an allow-list: address ranges QoS −1 senders (no CONNECT) may publish from. */
  allowQosMinusOne: z
    .array(
      z.string().superRefine((range, ctx) => {
        const problem = rangeProblem(range);
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      }),
    )
    .default([]),
  /** How long a session's old address may take to answer PINGREQ before a new address takes it over. */
  takeoverProbeMs: z.number().int().min(50).max(60_000).default(1500),
  /**
   * Device presence published to the broker (retained, through the outbox): a topic template with
   * {clientId}, e.g. "mqttsn/{clientId}/$presence". Off when absent.
   */
  presenceTopic: z
    .string()
    .refine((t) => t.includes('{clientId}') && !/[+#]/.test(t), {
      message: 'expected a topic with {clientId} and no wildcards',
    })
    .optional(),
  /** Gateway statistics (JSON) published to this topic every statsIntervalSeconds. Off when absent. */
  statsTopic: z
    .string()
    .refine((t) => t.length > 0 && !/[+#]/.test(t), { message: 'expected a topic name without wildcards' })
    .optional(),
  statsIntervalSeconds: z.number().int().min(1).max(86_400).default(60),
  /** HTTP address for /metrics, /healthz and the status page; off when absent. */
  metrics: hostPort.optional(),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** auto: journal when stdout is journald's (JOURNAL_STREAM), pretty on a terminal, else json. */
  logFormat: z.enum(['auto', 'json', 'pretty', 'journal']).default('auto'),
  broker: z
    .strictObject({
      /** Several URLs: failover in order. Empty: the embedded broker on 127.0.0.1:1883. */
      urls: z.array(brokerUrl).default([]),
      clientId: z.string().min(1).optional(),
      protocolVersion: z.union([z.literal(4), z.literal(5)]).default(5),
      username: z.string().optional(),
      password: z.string().optional(),
      ca: z.string().optional(),
      cert: z.string().optional(),
      key: z.string().optional(),
      rejectUnauthorized: z.boolean().default(true),
      keepaliveSeconds: z.number().int().min(1).max(65535).default(30),
      window: z.number().int().min(1).max(65535).default(64),
      reconnectInitialMs: z.number().int().min(10).default(500),
      reconnectMaxMs: z.number().int().min(10).default(30_000),
      /** Broker session kept across disconnects (subscriptions, messages for devices); 0 = clean. */
      sessionExpirySeconds: z.number().int().min(0).max(0xffffffff).default(86_400),
      /** /healthz: connected (recently), messages waiting, no broker answer this long = stalled. */
      stallSeconds: z.number().int().min(1).default(60),
    })
    .prefault({}),
  limits: z
    .strictObject({
      maxClients: z.number().int().min(1).default(10_000),
      maxTopicsPerClient: z.number().int().min(1).max(0xfffd).default(256),
      maxPacketSize: z.number().int().min(16).max(0xffff).default(1024),
      maxClientIdLength: z.number().int().min(1).max(0xffff).default(23),
      /** Subscriptions per device: sensors hold a handful; 64 bounds a flood at 64 × --max-clients. */
      maxSubscriptions: z.number().int().min(1).max(100_000).default(64),
      /** Distinct broker filters for all devices (5 per device at the default --max-clients). */
      maxBrokerSubscriptions: z.number().int().min(1).default(50_000),
      /** Sessions per source IP: room for a forwarder's nodes, a small share of --max-clients. */
      maxSessionsPerAddress: z.number().int().min(1).default(256),
      /** Takeover probes waiting at once; more takeovers get CONNACK "congestion" until one ends. */
      maxTakeoverProbes: z.number().int().min(1).default(64),
    })
    .prefault({}),
  outbox: z
    .strictObject({
      maxMessages: z.number().int().min(1).default(1_000_000),
      maxBytes: z
        .number()
        .int()
        .min(1024)
        .default(256 * 1024 * 1024),
      /** 0: messages never expire. */
      ttlSeconds: z.number().int().min(0).default(0),
      policy: z.enum(['reject', 'drop-oldest']).default('reject'),
      /** Buffer QoS 0 / −1 messages while the uplink is down (else they are dropped and counted). */
      bufferQos0: z.boolean().default(true),
      /** Messages the broker will not take, kept in the dead letters (the oldest go past this). */
      maxDeadLetters: z.number().int().min(1).default(10_000),
    })
    .prefault({}),
  downlink: z
    .strictObject({
      /** T_retry: wait for a device's answer before resending (spec: 10–15 s). */
      retrySeconds: z.number().min(0.1).max(3600).default(10),
      /** N_retry: resends before the device is considered lost (spec: 3–5). */
      maxRetries: z.number().int().min(0).max(100).default(3),
      /** Messages queued per device (asleep or away); beyond that the policy applies. */
      maxQueuedPerClient: z.number().int().min(1).max(1_000_000).default(100),
      /** Bytes queued per device: 100 messages of 10 KB; beyond that the policy applies. */
      maxBytesPerClient: z
        .number()
        .int()
        .min(1024)
        .default(1024 * 1024),
      /** Bytes queued for all devices (on disk; RAM holds only an index): beyond, new ones are dropped. */
      maxBytes: z
        .number()
        .int()
        .min(1024)
        .default(256 * 1024 * 1024),
      policy: z.enum(['drop-oldest', 'reject']).default('drop-oldest'),
      /** Largest datagram sent to a device; larger broker messages are acknowledged and dropped. */
      maxPacketSize: z.number().int().min(16).max(0xffff).default(0xffff),
      /** Keep QoS 0 messages for sleeping devices (QoS 1/2 are always kept). */
      bufferQos0ForSleepers: z.boolean().default(true),
    })
    .prefault({}),
  advertise: z
    .strictObject({
      /** Where ADVERTISE goes, e.g. 255.255.255.255:1883 or a unicast address. Off when absent. */
      address: hostPort,
      intervalSeconds: z.number().int().min(1).max(65535).default(900),
    })
    .optional(),
});

export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;

export function parseHostPort(text: string): { host: string; port: number } | undefined {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text);
  if (!match) return undefined;
  const port = Number(match[3]);
  if (port > 65535) return undefined;
  const host = match[1] ?? match[2] ?? '';
  return { host: host === '' ? '0.0.0.0' : host, port };
}
