/**
 * Broker-side helpers built on MQTT.js: collect what arrives on a topic filter, publish a message,
 * or open a plain client. All clients get unique ids and are closed forcibly (never hang a test).
 */
import { randomBytes } from 'node:crypto';
import mqtt, { type IClientOptions, type IPublishPacket, type MqttClient } from 'mqtt';

export type MqttQoS = 0 | 1 | 2;

let clientCounter = 0;

/** A client id unique across test processes, at most 23 characters (aedes' default limit). */
export function uniqueClientId(prefix = 'test'): string {
  return `${prefix.slice(0, 8)}-${randomBytes(4).toString('hex')}${(++clientCounter).toString(36)}`.slice(
    0,
    23,
  );
}

export interface ConnectClientOptions extends IClientOptions {
  /** MQTT 3.1.1 (4, default) or 5. aedes 1.x only speaks 3.1.1. */
  protocolVersion?: 4 | 5;
}

/**
 * Connect an MQTT.js client and wait for CONNACK. Defaults: unique clientId, clean session,
 * no automatic reconnect (reconnectPeriod 0), 5 s connect timeout. Rejects if the connection fails.
 */
export function connectClient(url: string, opts: ConnectClientOptions = {}): Promise<MqttClient> {
  return mqtt.connectAsync(
    url,
    { clientId: uniqueClientId(), reconnectPeriod: 0, connectTimeout: 5000, ...opts },
    false,
  );
}

export interface CollectedMessage {
  topic: string;
  payload: Buffer;
  qos: MqttQoS;
  /** With MQTT 3.1.1 true only for retained messages sent on subscribe; with v5 as published (rap). */
  retain: boolean;
  dup: boolean;
  /** MQTT 5 properties (protocolVersion 5 only). */
  properties?: IPublishPacket['properties'];
}

export interface CollectOptions {
  /** Subscription QoS (default 1). */
  qos?: MqttQoS;
  /** 4 (default) or 5. With 5 the subscription uses retain-as-published, so `retain` mirrors the publisher. */
  protocolVersion?: 4 | 5;
  clientId?: string;
  /** Clean session (default true). Use false with a fixed clientId to keep the session across reconnects. */
  clean?: boolean;
  /** Reconnect period in ms (default 100, so a collector survives a broker restart); 0 disables. */
  reconnectPeriod?: number;
}

export interface Collector {
  client: MqttClient;
  /** Every message received so far, in arrival order. */
  messages: CollectedMessage[];
  /**
   * Resolve with (a copy of) `messages` once at least `count` have arrived; reject after `timeoutMs`
   * (default 5000) with an error listing what did arrive.
   */
  waitFor(count: number, timeoutMs?: number): Promise<CollectedMessage[]>;
  /** Disconnect forcibly (no reconnects afterwards). Idempotent. */
  close(): Promise<void>;
}

/** Subscribe to `topicFilter` (one filter or several) and record every message that arrives. */
export async function collect(
  url: string,
  topicFilter: string | string[],
  opts: CollectOptions = {},
): Promise<Collector> {
  const { qos = 1, protocolVersion = 4, clean = true, reconnectPeriod = 100 } = opts;
  const client = await connectClient(url, {
    clientId: opts.clientId ?? uniqueClientId('collect'),
    protocolVersion,
    clean,
    reconnectPeriod,
    // MQTT 5 ends a session at disconnect unless it has an expiry: clean=false alone keeps nothing.
    ...(protocolVersion === 5 && !clean ? { properties: { sessionExpiryInterval: 3600 } } : {}),
  });
  const messages: CollectedMessage[] = [];
  const waiters = new Set<() => void>();
  client.on('message', (topic, payload, packet) => {
    messages.push({
      topic,
      payload,
      qos: packet.qos,
      retain: packet.retain,
      dup: packet.dup,
      ...(packet.properties ? { properties: packet.properties } : {}),
    });
    for (const wake of [...waiters]) wake();
  });
  // A broker outage must not crash the test process; reconnects are handled by MQTT.js.
  client.on('error', () => {});

  try {
    const granted = await client.subscribeAsync(topicFilter, {
      qos,
      ...(protocolVersion === 5 ? { rap: true } : {}),
    });
    const rejected = granted.filter((g) => Number(g.qos) >= 0x80); // 0x80 (v3) or a v5 failure reason code
    if (rejected.length > 0) throw new Error(`collect: subscription rejected: ${JSON.stringify(rejected)}`);
  } catch (err) {
    await client.endAsync(true);
    throw err;
  }

  const describe = (): string =>
    messages.length === 0
      ? 'none'
      : messages.map((m) => `${m.topic}=${JSON.stringify(m.payload.toString())}`).join(', ');

  return {
    client,
    messages,
    waitFor(count, timeoutMs = 5000) {
      return new Promise<CollectedMessage[]>((resolve, reject) => {
        const check = (): boolean => {
          if (messages.length < count) return false;
          clearTimeout(timer);
          waiters.delete(wake);
          resolve(messages.slice());
          return true;
        };
        const wake = (): void => void check();
        const timer = setTimeout(() => {
          waiters.delete(wake);
          reject(
            new Error(
              `collect(${JSON.stringify(topicFilter)}): expected ${count} message(s) within ${timeoutMs} ms, ` +
                `got ${messages.length}: ${describe()}`,
            ),
          );
        }, timeoutMs);
        if (!check()) waiters.add(wake);
      });
    },
    close: () => client.endAsync(true),
  };
}

export interface PublishToOptions {
  qos?: MqttQoS;
  retain?: boolean;
  protocolVersion?: 4 | 5;
  properties?: IPublishPacket['properties'];
  /** Give up (and throw) when the broker has not acknowledged within this long (default 10 s). */
  timeoutMs?: number;
}

/**
 * Connect, publish one message (awaiting PUBACK/PUBCOMP for QoS > 0), disconnect. Bounded: a broker
 * that never acknowledges (RabbitMQ routing to a queue on a dead node) fails the call instead of
 * hanging the test, and the client is closed without waiting for what it still has in flight.
 */
export async function publishTo(
  url: string,
  topic: string,
  payload: string | Buffer,
  opts: PublishToOptions = {},
): Promise<void> {
  const { qos = 0, retain = false, protocolVersion = 4, properties, timeoutMs = 10_000 } = opts;
  const client = await connectClient(url, { clientId: uniqueClientId('pub'), protocolVersion });
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      client.publishAsync(topic, payload, { qos, retain, ...(properties ? { properties } : {}) }),
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`publishTo ${url} ${topic}: no acknowledgement within ${timeoutMs} ms`)),
          timeoutMs,
        );
      }),
    ]);
    await client.endAsync();
  } finally {
    clearTimeout(timer);
    if (!client.disconnected) await client.endAsync(true);
  }
}
