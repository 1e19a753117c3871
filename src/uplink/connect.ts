import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import mqtt, { type IClientOptions, type IConnackPacket, type IPublishPacket, type MqttClient } from 'mqtt';
import type { ResolvedUplinkOptions } from './options.js';
import { PacketIds } from './packet-ids.js';

/**
 * A broker message; call `done()` once it is safe for the broker to consider it delivered, or
 * `done(err)` when it could not be stored: then it is not acknowledged and the link is dropped, so the
 * broker sends it again on the next connection (its session keeps it).
 */
export type MessageHandler = (
  topic: string,
  payload: Buffer,
  packet: IPublishPacket,
  done: (err?: Error) => void,
) => void;

export interface Connected {
  client: MqttClient;
  connack: IConnackPacket;
  /** The connection's packet ids: MQTT.js's messageIdProvider, shared with the drain. */
  packetIds: PacketIds;
}

/** MQTT 3.1.1 CONNACK 0x01 and MQTT 5 CONNACK 0x84: the broker does not speak the version we asked for. */
const UNSUPPORTED_PROTOCOL = new Set([0x01, 0x84]);

/**
 * The broker turned down the MQTT version of the CONNECT: it said so in the CONNACK, or (RabbitMQ 3.10
 * with MQTT 5) closed the connection cleanly, without CONNACK and without an error. An unreachable
 * broker fails with a socket error instead, so this does not take an outage for a version refusal.
 */
export function refusedProtocolVersion(err: unknown): boolean {
  if (err instanceof ClosedBeforeConnackError) return true;
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'number' && UNSUPPORTED_PROTOCOL.has(code);
}

/**
 * Clients whose link the gateway itself ended (a broker message it could not store): the close that
 * follows is not the broker's doing, so it must not count as the broker dropping the link.
 */
export const droppedByGateway = new WeakSet<object>();

export class ClosedBeforeConnackError extends Error {
  constructor() {
    super('connection closed before CONNACK');
  }
}

/**
 * Mosquitto 2.0 answers a PUBLISH over its message_size_limit with PUBACK 0x95 (packet too large),
 * which MQTT 5 §3.4.2.1 does not list for PUBACK; mqtt-packet then fails the whole stream ("Invalid
 * puback reason code") and the link drops on every resend. Accepting every error reason code
 * (0x80..0xA2, §2.4) turns it into what it is: a refusal of that one message, handled by the drain.
 */
const mqttPacketConstants = createRequire(import.meta.url)('mqtt-packet/constants.js') as {
  MQTT5_PUBACK_PUBREC_CODES: Record<number, string>;
};
for (let code = 0x80; code <= 0xa2; code++) {
  mqttPacketConstants.MQTT5_PUBACK_PUBREC_CODES[code] ??= `reason code 0x${code.toString(16)}`;
}

/** MQTT.js options for one attempt: no automatic reconnect, no resubscribe — the Uplink owns both. */
export function clientOptions(options: ResolvedUplinkOptions): IClientOptions {
  const { presence, tls } = options;
  return {
    clientId: options.clientId,
    protocolVersion: options.protocolVersion,
    // A persistent session keeps the downlink subscriptions and queues messages for devices at the
    // broker while the gateway reconnects (MQTT 5 needs an expiry for that; 3.1.1 keeps it until cleared).
    clean: options.sessionExpirySeconds === 0,
    ...(options.protocolVersion === 5 && options.sessionExpirySeconds > 0
      ? { properties: { sessionExpiryInterval: options.sessionExpirySeconds } }
      : {}),
    keepalive: options.keepaliveSeconds,
    // Ping on a fixed schedule even while publishing, so a half-open link fails the ping in time.
    reschedulePings: false,
    reconnectPeriod: 0,
    resubscribe: false,
    connectTimeout: options.connectTimeoutMs,
    // MQTT.js formats a debug line per packet otherwise, a few % of the replay CPU even when disabled.
    log: () => {},
    username: options.username,
    password: options.password === undefined ? undefined : Buffer.from(options.password),
    ...(tls === undefined
      ? {}
      : { ca: tls.ca, cert: tls.cert, key: tls.key, rejectUnauthorized: tls.rejectUnauthorized ?? true }),
    ...(presence === undefined
      ? {}
      : { will: { topic: presence.topic, payload: Buffer.from(presence.offline), qos: 1, retain: true } }),
  };
}

/**
 * One connection attempt to one broker, bounded by `connectTimeoutMs` (TCP/TLS connect and CONNACK).
 * Resolves once the broker accepted the session; on failure the client is destroyed before rejecting.
 */
export function connectOnce(
  url: string,
  options: ResolvedUplinkOptions,
  signal: AbortSignal,
  onMessage: MessageHandler,
): Promise<Connected> {
  return new Promise((resolve, reject) => {
    const packetIds = new PacketIds();
    const client = mqtt.connect(url, { ...clientOptions(options), messageIdProvider: packetIds });
    // QoS 1/2 reach the handler before MQTT.js sends PUBACK / PUBREC, so the broker is acknowledged
    // only once the gateway has stored the message. Routing at PUBLISH time (not at PUBREL, where
    // MQTT.js hands QoS 2 over) also survives a link lost mid QoS 2 exchange. Set on the client, not
    // as an option (MQTT.js takes the option only for MQTT 5), before any packet can arrive: a
    // persistent session delivers queued messages right after CONNACK.
    client.options.customHandleAcks = (topic, message, packet, acknowledge) =>
      onMessage(topic, message as Buffer, packet, (err) => {
        if (err === undefined) return acknowledge(0);
        // MQTT.js sends no PUBACK / PUBREC for an error (it emits it on the client). The broker resends
        // an unacknowledged message only on a new connection: end this one.
        acknowledge(err);
        droppedByGateway.add(client);
        (client.stream as Socket | undefined)?.destroy();
      });
    client.handleMessage = (packet, callback) => {
      if (packet.qos === 0) onMessage(packet.topic, packet.payload as Buffer, packet, () => callback());
      else callback();
    };
    // Nagle would hold back small PUBLISHes behind unacknowledged ones (stalls of up to a delayed-ACK
    // timeout, 40 ms on Linux); MQTT.js leaves it on. The stream exists as soon as connect() returns.
    const socket = client.stream as Socket | undefined;
    socket?.setNoDelay?.(true);
    if (socket) coalesceWrites(socket);
    let settled = false;
    const finish = (err: Error | undefined, connack?: IConnackPacket): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      client.off('connect', onConnect);
      client.off('close', onClose);
      if (err !== undefined || connack === undefined) {
        client.end(true);
        reject(err ?? new ClosedBeforeConnackError());
      } else {
        resolve({ client, connack, packetIds });
      }
    };
    let lastError: Error | undefined;
    const onConnect = (connack: IConnackPacket): void => finish(undefined, connack);
    const onClose = (): void => finish(lastError ?? new ClosedBeforeConnackError());
    const onAbort = (): void => finish(new Error('connect aborted'));
    // MQTT.js has its own connect timeout; this one also covers a TLS handshake that never completes.
    const timer = setTimeout(
      () => finish(new Error(`no CONNACK within ${options.connectTimeoutMs} ms`)),
      options.connectTimeoutMs,
    );
    // Errors are reported through 'close'; the listener stays for the client's life so none is unhandled.
    client.on('error', (err) => {
      lastError = err;
    });
    client.once('connect', onConnect);
    client.once('close', onClose);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * mqtt-packet writes every field of a packet as its own chunk (10+ per PUBLISH); corked, they reach the
 * socket as one writev with hundreds of tiny buffers, which costs more CPU than the data. Joining them
 * first makes a refill of a few dozen PUBLISHes one contiguous write.
 */
function coalesceWrites(socket: Socket): void {
  const writev = socket._writev;
  if (writev === undefined) return;
  socket._writev = function (this: Socket, chunks, callback) {
    if (chunks.length < 2) return writev.call(this, chunks, callback);
    const buffers = new Array<Buffer>(chunks.length);
    for (let i = 0; i < chunks.length; i++) {
      const { chunk, encoding } = chunks[i]!;
      buffers[i] = typeof chunk === 'string' ? Buffer.from(chunk, encoding) : (chunk as Buffer);
    }
    return writev.call(this, [{ chunk: Buffer.concat(buffers), encoding: 'binary' }], callback);
  };
}
