import type { DeadLetters } from '../store/dead-letter.js';

export interface TlsFiles {
  /** File contents, not paths: loading files is the caller's job. */
  ca?: Buffer | Buffer[];
  cert?: Buffer;
  key?: Buffer;
  rejectUnauthorized?: boolean;
}

export interface PresenceOptions {
  /** Retained status topic; the same topic carries the last will. */
  topic: string;
  /** Published retained on every connect (default 'online'). */
  online?: string;
  /** The last will, and published retained on a clean stop (default 'offline'). */
  offline?: string;
}

export interface ReconnectOptions {
  /** First backoff ceiling, doubled after every failed round over all brokers (default 500 ms). */
  initialMs?: number;
  /** Largest backoff ceiling (default 30 s). */
  maxMs?: number;
}

export interface UplinkOptions {
  /** Where entries the broker will not take are kept; without it they are dropped (and logged). */
  deadLetters?: DeadLetters;
  /** Monotonic ms (default performance.now): stall and takeover timing, injectable for tests. */
  now?: () => number;
  /** Wall-clock ms (default Date.now), for the dead letters' timestamps. */
  wallNow?: () => number;
  /** Pause after the broker gave our session to another connection: doubles per takeover (default 5 s .. 10 min). */
  takeoverBackoff?: ReconnectOptions;
  /** mqtt:// or mqtts:// URLs; several = failover in order, the first one being the primary. */
  brokers: string[];
  clientId: string;
  /** MQTT 3.1.1 (4) or 5 (default 5). User properties (message ids) are only sent with 5. */
  protocolVersion?: 4 | 5;
  username?: string;
  password?: string | Buffer;
  tls?: TlsFiles;
  /** MQTT keep-alive, also the longest wait for a PUBACK before the link is declared dead (default 30). */
  keepaliveSeconds?: number;
  /** Bound on TCP connect + CONNACK for one attempt (default 10 s). */
  connectTimeoutMs?: number;
  /** Most PUBLISHes awaiting PUBACK; also capped by the broker's receive maximum (default 64). */
  window?: number;
  /** Entries read from the outbox at a time (default 256). */
  readChunk?: number;
  reconnect?: ReconnectOptions;
  presence?: PresenceOptions;
  /** On stop(), how long to wait for outstanding PUBACKs before closing anyway (default 3 s). */
  stopTimeoutMs?: number;
  /** Randomness for backoff jitter (default Math.random), injectable for tests. */
  random?: () => number;
  /**
   * Keep the broker session (subscriptions, messages queued for the gateway) this long across
   * disconnects; 0 = clean session on every connect (default UPLINK_DEFAULTS.sessionExpirySeconds).
   */
  sessionExpirySeconds?: number;
}

export interface ResolvedUplinkOptions {
  deadLetters: DeadLetters | undefined;
  now: () => number;
  wallNow: () => number;
  takeoverBackoff: Required<ReconnectOptions>;
  brokers: string[];
  clientId: string;
  protocolVersion: 4 | 5;
  username: string | undefined;
  password: string | Buffer | undefined;
  tls: TlsFiles | undefined;
  keepaliveSeconds: number;
  connectTimeoutMs: number;
  window: number;
  readChunk: number;
  reconnect: Required<ReconnectOptions>;
  presence: Required<PresenceOptions> | undefined;
  stopTimeoutMs: number;
  random: () => number;
  sessionExpirySeconds: number;
}

/**
 * The uplink's settings when nothing sets them. The config table (src/config/table.ts) takes the
 * defaults of its broker settings from here, so the gateway and an Uplink built on its own (tests,
 * benches) behave alike.
 */
export const UPLINK_DEFAULTS = {
  protocolVersion: 5,
  keepaliveSeconds: 30,
  connectTimeoutMs: 10_000,
  window: 64,
  readChunk: 256,
  reconnect: { initialMs: 500, maxMs: 30_000 },
  stopTimeoutMs: 3000,
  takeoverBackoff: { initialMs: 5000, maxMs: 600_000 },
  sessionExpirySeconds: 86_400,
} as const;

/**
 * MQTT packet ids are 16 bits and MQTT.js allocates them sequentially, so an id comes back only after
 * 65,535 others: a window below that (with room for presence and SUBSCRIBEs) never reuses one in flight.
 */
const MAX_WINDOW = 65_000;

export function resolveUplinkOptions(options: UplinkOptions): ResolvedUplinkOptions {
  if (options.brokers.length === 0) throw new Error('uplink: at least one broker URL is required');
  for (const url of options.brokers) {
    const protocol = new URL(url).protocol;
    if (protocol !== 'mqtt:' && protocol !== 'mqtts:') {
      throw new Error(`uplink: broker URL must be mqtt:// or mqtts://, got ${url}`);
    }
  }
  const window = options.window ?? UPLINK_DEFAULTS.window;
  if (!Number.isInteger(window) || window < 1 || window > MAX_WINDOW) {
    throw new Error(`uplink: window must be an integer in 1..${MAX_WINDOW}, got ${window}`);
  }
  return {
    deadLetters: options.deadLetters,
    now: options.now ?? (() => performance.now()),
    wallNow: options.wallNow ?? Date.now,
    takeoverBackoff: {
      initialMs: options.takeoverBackoff?.initialMs ?? UPLINK_DEFAULTS.takeoverBackoff.initialMs,
      maxMs: options.takeoverBackoff?.maxMs ?? UPLINK_DEFAULTS.takeoverBackoff.maxMs,
    },
    brokers: [...options.brokers],
    clientId: options.clientId,
    protocolVersion: options.protocolVersion ?? UPLINK_DEFAULTS.protocolVersion,
    username: options.username,
    password: options.password,
    tls: options.tls,
    keepaliveSeconds: options.keepaliveSeconds ?? UPLINK_DEFAULTS.keepaliveSeconds,
    connectTimeoutMs: options.connectTimeoutMs ?? UPLINK_DEFAULTS.connectTimeoutMs,
    window,
    readChunk: options.readChunk ?? UPLINK_DEFAULTS.readChunk,
    reconnect: {
      initialMs: options.reconnect?.initialMs ?? UPLINK_DEFAULTS.reconnect.initialMs,
      maxMs: options.reconnect?.maxMs ?? UPLINK_DEFAULTS.reconnect.maxMs,
    },
    presence:
      options.presence === undefined
        ? undefined
        : {
            topic: options.presence.topic,
            online: options.presence.online ?? 'online',
            offline: options.presence.offline ?? 'offline',
          },
    stopTimeoutMs: options.stopTimeoutMs ?? UPLINK_DEFAULTS.stopTimeoutMs,
    random: options.random ?? Math.random,
    sessionExpirySeconds: options.sessionExpirySeconds ?? UPLINK_DEFAULTS.sessionExpirySeconds,
  };
}
