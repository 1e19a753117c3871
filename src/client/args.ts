import { parseArgs } from 'node:util';
import type { QoS } from '../codec/constants.js';
import type { WillOptions } from './client.js';
import type { RetryPolicy } from './exchange.js';
import { hasWildcard, isShortTopicName, topicRefForName, type TopicRef } from './topics.js';

/** Wrong command line: exit code 1 with the message and a pointer to --help. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** What pub and sub share: where the gateway is and how to talk to it. */
export interface SessionOptions {
  host: string;
  port: number;
  clientId: string;
  keepAliveSeconds: number;
  cleanSession: boolean;
  will: WillOptions | undefined;
  /** -e: sleep duration in seconds. */
  sleepSeconds: number | undefined;
  retry: RetryPolicy;
  debug: boolean;
}

export type PayloadSource =
  | { from: 'message'; data: Uint8Array }
  | { from: 'stdin' }
  | { from: 'lines' }
  | { from: 'file'; path: string }
  | { from: 'null' };

export interface PubOptions extends SessionOptions {
  topic: TopicRef;
  qos: QoS;
  retain: boolean;
  payload: PayloadSource;
}

export interface SubOptions extends SessionOptions {
  topics: TopicRef[];
  qos: 0 | 1 | 2;
  /** -C: exit after this many messages. */
  count: number | undefined;
  verbose: boolean;
  /** Sleeping subscriber: seconds between wake-ups (defaults to the sleep duration). */
  wakeIntervalSeconds: number | undefined;
}

/** Either --help was asked for, or the options to run with. */
export type Parsed<T> = { help: true } | { help: false; options: T };

const sessionFlags = {
  host: { type: 'string', short: 'h' },
  port: { type: 'string', short: 'p' },
  'client-id': { type: 'string', short: 'i' },
  topic: { type: 'string', short: 't', multiple: true },
  'topic-id': { type: 'string', short: 'T', multiple: true },
  short: { type: 'boolean' },
  qos: { type: 'string', short: 'q' },
  keepalive: { type: 'string', short: 'k' },
  'no-clean': { type: 'boolean', short: 'c' },
  'will-topic': { type: 'string' },
  'will-message': { type: 'string' },
  'will-qos': { type: 'string' },
  'will-retain': { type: 'boolean' },
  sleep: { type: 'string', short: 'e' },
  timeout: { type: 'string' },
  retries: { type: 'string' },
  debug: { type: 'boolean', short: 'd' },
  help: { type: 'boolean' },
} as const;

const pubFlags = {
  ...sessionFlags,
  retain: { type: 'boolean', short: 'r' },
  message: { type: 'string', short: 'm' },
  stdin: { type: 'boolean', short: 's' },
  lines: { type: 'boolean', short: 'l' },
  file: { type: 'string', short: 'f' },
  null: { type: 'boolean', short: 'n' },
} as const;

const subFlags = {
  ...sessionFlags,
  count: { type: 'string', short: 'C' },
  verbose: { type: 'boolean', short: 'v' },
  'wake-interval': { type: 'string' },
} as const;

type SessionValues = ReturnType<typeof parseFlags<typeof sessionFlags>>;

export function parsePubArgs(argv: string[]): Parsed<PubOptions> {
  const values = parseFlags(argv, pubFlags);
  if (values.help) return { help: true };
  const qos = parseQos(values.qos ?? '0', [-1, 0, 1, 2]);
  const topics = parseTopics(values);
  if (topics.length !== 1) throw new UsageError('give one topic: -t NAME or -T ID');
  const topic = topics[0]!;
  const session = parseSession(values);
  if (qos === -1) {
    if (topic.type === 'normal') {
      throw new UsageError('QoS -1 needs a predefined topic id (-T) or a short, two-character topic (-t)');
    }
    if (session.will || session.sleepSeconds !== undefined) {
      throw new UsageError('QoS -1 publishes without connecting: --will-* and -e do not apply');
    }
  }
  return {
    help: false,
    options: { ...session, topic, qos, retain: values.retain ?? false, payload: parsePayloadSource(values) },
  };
}

export function parseSubArgs(argv: string[]): Parsed<SubOptions> {
  const values = parseFlags(argv, subFlags);
  if (values.help) return { help: true };
  const topics = parseTopics(values);
  if (topics.length === 0) {
    throw new UsageError('give at least one topic: -t NAME or -T ID (each may repeat)');
  }
  const session = parseSession(values);
  const wakeInterval = values['wake-interval'];
  if (wakeInterval !== undefined && session.sleepSeconds === undefined) {
    throw new UsageError('--wake-interval needs -e (the sleep duration)');
  }
  const wakeIntervalSeconds =
    wakeInterval === undefined
      ? session.sleepSeconds
      : parseNumber(wakeInterval, '--wake-interval', 0.001, 65_535);
  if (wakeIntervalSeconds !== undefined && wakeIntervalSeconds > session.sleepSeconds!) {
    throw new UsageError(
      '--wake-interval must not exceed the sleep duration (-e), or the gateway gives up on us',
    );
  }
  return {
    help: false,
    options: {
      ...session,
      topics,
      qos: parseQos(values.qos ?? '0', [0, 1, 2]) as 0 | 1 | 2,
      count:
        values.count === undefined
          ? undefined
          : parseInteger(values.count, '-C/--count', 1, Number.MAX_SAFE_INTEGER),
      verbose: values.verbose ?? false,
      wakeIntervalSeconds,
    },
  };
}

function parseFlags<F extends typeof sessionFlags>(argv: string[], flags: F) {
  try {
    return parseArgs({ args: joinNegativeQos(argv), options: flags, strict: true, allowPositionals: false })
      .values;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** `-q -1` as mqtt-sn-tools users type it (parseArgs would take -1 for an option). */
function joinNegativeQos(argv: string[]): string[] {
  const joined: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const next = argv[i + 1];
    if ((arg === '-q' || arg === '--qos') && next !== undefined && /^-\d+$/.test(next)) {
      joined.push(`--qos=${next}`);
      i++;
    } else {
      joined.push(arg);
    }
  }
  return joined;
}

function parseSession(values: SessionValues): SessionOptions {
  const timeoutSeconds = parseNumber(values.timeout ?? '3', '--timeout', 0.001, 3600);
  return {
    host: values.host ?? '127.0.0.1',
    port: parseInteger(values.port ?? '1883', '-p/--port', 1, 65_535),
    clientId: values['client-id'] ?? `mqttsn-${process.pid}`,
    keepAliveSeconds: parseInteger(values.keepalive ?? '60', '-k/--keepalive', 0, 65_535),
    cleanSession: !(values['no-clean'] ?? false),
    will: parseWill(values),
    sleepSeconds:
      values.sleep === undefined ? undefined : parseInteger(values.sleep, '-e/--sleep', 1, 65_535),
    retry: {
      intervalMs: Math.round(timeoutSeconds * 1000),
      retries: parseInteger(values.retries ?? '3', '--retries', 0, 100),
    },
    debug: values.debug ?? false,
  };
}

function parseWill(values: SessionValues): WillOptions | undefined {
  const topic = values['will-topic'];
  if (topic === undefined) {
    if (values['will-message'] !== undefined || values['will-qos'] !== undefined || values['will-retain']) {
      throw new UsageError('--will-message, --will-qos and --will-retain need --will-topic');
    }
    return undefined;
  }
  return {
    topic,
    message: new TextEncoder().encode(values['will-message'] ?? ''),
    qos: parseQos(values['will-qos'] ?? '0', [0, 1, 2]) as 0 | 1 | 2,
    retain: values['will-retain'] ?? false,
  };
}

function parseTopics(values: SessionValues): TopicRef[] {
  const names = values.topic ?? [];
  const forceShort = values.short ?? false;
  const byName = names.map((name): TopicRef => {
    if (name === '') throw new UsageError('empty topic name');
    if (!forceShort) return topicRefForName(name);
    if (!isShortTopicName(name) || hasWildcard(name)) {
      throw new UsageError(
        `--short: ${JSON.stringify(name)} is not a short topic (exactly 2 bytes, no wildcard)`,
      );
    }
    return { type: 'short', name };
  });
  const byId = (values['topic-id'] ?? []).map((id): TopicRef => ({
    type: 'predefined',
    id: parseInteger(id, '-T/--topic-id', 1, 0xfffe),
  }));
  return [...byName, ...byId];
}

function parsePayloadSource(values: ReturnType<typeof parseFlags<typeof pubFlags>>): PayloadSource {
  const sources: PayloadSource[] = [];
  if (values.message !== undefined) {
    sources.push({ from: 'message', data: new TextEncoder().encode(values.message) });
  }
  if (values.stdin) sources.push({ from: 'stdin' });
  if (values.lines) sources.push({ from: 'lines' });
  if (values.file !== undefined) sources.push({ from: 'file', path: values.file });
  if (values.null) sources.push({ from: 'null' });
  if (sources.length !== 1) {
    throw new UsageError('give exactly one message source: -m TEXT, -s, -l, -f FILE or -n');
  }
  return sources[0]!;
}

function parseQos(text: string, allowed: QoS[]): QoS {
  const qos = Number(text);
  if (!allowed.includes(qos as QoS)) {
    throw new UsageError(`QoS must be one of ${allowed.join(', ')}, not ${text}`);
  }
  return qos as QoS;
}

function parseInteger(text: string, flag: string, min: number, max: number): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < min || value > max) {
    throw new UsageError(`${flag} must be an integer from ${min} to ${max}, not ${JSON.stringify(text)}`);
  }
  return value;
}

function parseNumber(text: string, flag: string, min: number, max: number): number {
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || value < min || value > max) {
    throw new UsageError(
      `${flag} must be a number of seconds from ${min} to ${max}, not ${JSON.stringify(text)}`,
    );
  }
  return value;
}
