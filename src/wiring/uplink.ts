import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { DeadLetters } from '../store/dead-letter.js';
import type { Outbox } from '../store/outbox.js';
import type { Clock } from '../time.js';
import type { Namespace } from '../topics/namespace.js';
import type { TlsFiles } from '../uplink/options.js';
import { Uplink } from '../uplink/uplink.js';

export interface UplinkParts {
  brokerUrls: string[];
  clientId: string;
  namespace: Namespace;
  tls: TlsFiles | undefined;
  outbox: Outbox;
  deadLetters: DeadLetters;
  clock: Clock;
  log: Logger;
}

/** The gateway's own status topic: inside the namespace's root when it has one. */
export function gatewayStatusTopic(namespace: Namespace, clientId: string): string {
  return namespace.root ? `${namespace.root}$gateway/${clientId}/status` : `mqttsn-bridge/${clientId}/status`;
}

/** The broker side: one MQTT.js connection at QoS 1 reading the outbox from its oldest entry. */
export function createUplink(config: Config, parts: UplinkParts): Uplink {
  const { clock } = parts;
  return new Uplink(
    {
      brokers: parts.brokerUrls,
      clientId: parts.clientId,
      protocolVersion: config.broker.protocolVersion,
      username: config.broker.username,
      password: config.broker.password,
      tls: parts.tls,
      keepaliveSeconds: config.broker.keepaliveSeconds,
      // A connect attempt into a blackhole must not outlast the keep-alive we promise to detect it in.
      connectTimeoutMs: Math.min(30_000, Math.max(2_000, config.broker.keepaliveSeconds * 1000)),
      window: config.broker.window,
      reconnect: { initialMs: config.broker.reconnectInitialMs, maxMs: config.broker.reconnectMaxMs },
      presence: {
        topic: gatewayStatusTopic(parts.namespace, parts.clientId),
        online: 'online',
        offline: 'offline',
      },
      sessionExpirySeconds: config.broker.sessionExpirySeconds,
      deadLetters: parts.deadLetters,
      now: () => clock.now(),
      wallNow: () => clock.wallNow(),
    },
    parts.outbox,
    parts.log.child({ component: 'uplink' }),
  );
}
