/**
 * The broker connection. Owns reconnects (MQTT.js's are off): every cycle tries the brokers in order,
 * primary first; after a round where all failed it waits an exponentially growing, fully jittered delay;
 * a successful connection resets the backoff. While connected, a Drain streams the outbox at link speed.
 */
import { EventEmitter } from 'node:events';
import type { IPublishPacket } from 'mqtt';
import type { QoS } from 'mqtt-packet';
import type { Logger } from 'pino';
import { RateLimitedWarn } from '../observe/rate-limit.js';
import type { Outbox, OutboxEntry } from '../store/outbox.js';
import { backoffDelay } from './backoff.js';
import {
  connectOnce,
  droppedByGateway,
  refusedProtocolVersion,
  type Connected,
  type MessageHandler,
} from './connect.js';
import { newCounters, type UplinkCounters } from './counters.js';
import type { Refusal } from './drain.js';
import { HeadOfLine, YOUNG_LINK_MS } from './head-of-line.js';
import { BrokerLink, type LinkEnd } from './link.js';
import { publishPacketSize, userPropertyBytes } from './packet-size.js';
import { resolveUplinkOptions, type ResolvedUplinkOptions, type UplinkOptions } from './options.js';

export type { UplinkOptions } from './options.js';

export type UplinkState = 'connecting' | 'connected' | 'disconnected';

/** A link that lasted this long counts as healthy: the next loss starts the pause from initialMs again. */
const STABLE_LINK_MS = 10_000;
/**
 * MQTT 3.1.1 has no DISCONNECT from the broker, and Mosquitto 2.0 sends none on a takeover with MQTT 5
 * either: it just closes the old connection. This many links in a row that the broker closed cleanly
 * (no socket error), young, with no message to blame, each followed by a successful reconnect, are
 * taken for a takeover.
 */
const SUSPECTED_TAKEOVER_CLOSES = 2;
/** A takeover is still reported (healthz) until a link has lasted this long without one. */
const TAKEOVER_CLEAR_MS = 5 * 60_000;
/**
 * RabbitMQ keeps a persistent session's subscription queue on the node the session was made on; with
 * that node gone, every reconnect with our client id is accepted and then dropped at SUBSCRIBE, on any
 * node, clean session or not (the queue is named after the client id). This many such links in a row
 * and the next connection is a clean session under a client id of its own.
 */
const SESSION_LOOP_DROPS = 2;
/** Appended to the client id for the clean-session fallback: a name no broker holds state for. */
export const CLEAN_FALLBACK_SUFFIX = '-clean';
/**
 * A broker that turned down MQTT 5 is asked for 3.1.1 directly on reconnects for this long, then for
 * MQTT 5 again: an upgraded broker (RabbitMQ 3.13 speaks MQTT 5) gets it back without a gateway
 * restart, for one extra CONNECT per reconnect after this long against one that still cannot.
 */
export const MQTT5_RETRY_MS = 10 * 60_000;

/** Refused by the broker: SUBACK reason code >= 0x80. */
export class SubscriptionRefusedError extends Error {
  constructor(
    readonly filter: string,
    readonly reasonCode: number,
  ) {
    super(`broker refused the subscription to ${filter} (SUBACK 0x${reasonCode.toString(16)})`);
  }
}

export interface UplinkStateDetail {
  /** The broker connected to, or the one just lost. */
  broker?: string;
  /** Why the link went down, or why the next attempt waits. */
  reason?: string;
}

export interface UplinkEvents {
  state: [state: UplinkState, detail: UplinkStateDetail];
  /** A message from the broker on a subscribed filter (downlink). */
  message: [topic: string, payload: Buffer, packet: IPublishPacket];
  /**
   * The broker refused a filter (SUBACK >= 0x80), at subscribe() (`direct`: its caller also hears of it
   * by SubscriptionRefusedError) or when it was re-applied after a reconnect; the uplink has dropped it
   * and does not ask for it again. The uplink counts it and logs nothing: whoever knows which devices
   * held the filter says so, once (wiring/adapters.ts, gateway/handlers/subscribe.ts).
   */
  subscriptionRefused: [filter: string, reasonCode: number, direct: boolean];
}

export interface UplinkStats extends UplinkCounters {
  state: UplinkState;
  /** URL of the connected broker, or null. */
  broker: string | null;
  /** PUBLISHes awaiting PUBACK on the current connection. */
  inflight: number;
  /** Window in force on the current connection (configured, capped by the broker's receive maximum). */
  window: number;
  /** The broker's Maximum Packet Size (last CONNACK that had one), or null. */
  maxPacketSize: number | null;
  /** Ms since the outbox last moved (an answer from the broker) while it had work; 0 when caught up. */
  stalledForMs: number;
  /** 0 while connected, ms since the last link ended otherwise, null if never connected. */
  disconnectedForMs: number | null;
  /** The broker gave our session to another connection recently (see TAKEOVER_CLEAR_MS). */
  sessionTakenOver: boolean;
  /** Dead letters on disk. */
  deadLettersKept: number;
}

export class Uplink extends EventEmitter<UplinkEvents> {
  private readonly options: ResolvedUplinkOptions;
  private readonly counters = newCounters();
  private readonly highestSent = { seq: 0 };
  private readonly subscriptions = new Map<string, QoS>();
  private currentState: UplinkState = 'disconnected';
  private link: BrokerLink | undefined;
  private running: Promise<void> | undefined;
  private stopping = false;
  private readonly abortConnect = new AbortController();
  private cancelPause: (() => void) | undefined;
  private readonly headOfLine = new HeadOfLine();
  private progressAt: number;
  private caughtUp = false;
  private lastLinkEndAt: number | undefined;
  private lastMaxPacketSize: number | undefined;
  /** fixedPropertyBytes, made on first use. */
  private fixedProperties: number | undefined;
  private takenOver = false;
  /** Brokers that turned down MQTT 5 and took 3.1.1, and when (options.now()): see MQTT5_RETRY_MS. */
  private readonly mqtt311Brokers = new Map<string, number>();
  /** The next connection falls back to a clean session (see SESSION_LOOP_DROPS). */
  private cleanFallbackNext = false;
  /** One line per device and reason per 10 s: a device publishing to a denied topic cannot flood the log. */
  private readonly deadLetterLog: RateLimitedWarn;
  /** One clean-session fallback line per broker per 10 minutes. */
  private readonly sessionLoopLog: RateLimitedWarn;

  private messageHandler: MessageHandler = (_topic, _payload, _packet, done) => done();
  private readonly onBrokerMessage: MessageHandler = (topic, payload, packet, done) => {
    this.emit('message', topic, payload, packet);
    this.messageHandler(topic, payload, packet, done);
  };

  constructor(
    options: UplinkOptions,
    private readonly outbox: Outbox,
    private readonly logger: Logger,
  ) {
    super();
    this.options = resolveUplinkOptions(options);
    this.progressAt = this.options.now();
    this.deadLetterLog = new RateLimitedWarn(logger, 10_000, this.options.now);
    this.sessionLoopLog = new RateLimitedWarn(logger, 600_000, this.options.now);
  }

  get state(): UplinkState {
    return this.currentState;
  }

  get stats(): UplinkStats {
    return {
      ...this.counters,
      state: this.currentState,
      broker: this.link?.url ?? null,
      inflight: this.link?.inflight ?? 0,
      window: this.link?.window ?? 0,
      maxPacketSize: this.lastMaxPacketSize ?? null,
      stalledForMs: this.caughtUp ? 0 : Math.max(0, this.options.now() - this.progressAt),
      disconnectedForMs:
        this.link !== undefined
          ? 0
          : this.lastLinkEndAt === undefined
            ? null
            : this.options.now() - this.lastLinkEndAt,
      sessionTakenOver: this.takenOver,
      deadLettersKept: this.options.deadLetters?.count ?? 0,
    };
  }

  /**
   * Whether a device message fits the broker's Maximum Packet Size (MQTT 5), as the PUBLISH the
   * uplink will send (user properties included). Counts the ones that do not: the edge refuses them.
   */
  fits(message: { clientId: string; topic: string; payload: Uint8Array }): boolean {
    const max = this.lastMaxPacketSize;
    if (max === undefined) return true;
    // Only the device's id varies among the user properties: the rest is summed once, not built per message.
    const properties =
      this.options.protocolVersion === 5
        ? this.fixedPropertyBytes + Buffer.byteLength(message.clientId)
        : undefined;
    if (publishPacketSize(message.topic, message.payload.byteLength, properties) <= max) return true;
    this.counters.tooLarge++;
    return false;
  }

  /**
   * The user properties fits() counts, but the device's id: the largest `mqttsn-id` the outbox can write,
   * `mqttsn-received` (always 24 characters) and the name `mqttsn-client`.
   */
  private get fixedPropertyBytes(): number {
    this.fixedProperties ??=
      userPropertyBytes('mqttsn-id', `${this.options.clientId}:9007199254740991`) +
      userPropertyBytes('mqttsn-client', '') +
      userPropertyBytes('mqttsn-received', '2000-01-01T00:00:00.000Z');
    return this.fixedProperties;
  }

  start(): void {
    if (this.running !== undefined || this.stopping) return;
    this.running = this.run().catch((err: unknown) => {
      this.logger.fatal({ err }, 'uplink: connection loop crashed');
    });
  }

  /** Stop sending, wait (bounded) for outstanding PUBACKs, publish presence offline, disconnect. */
  async stop(): Promise<void> {
    if (this.stopping) return this.running;
    this.stopping = true;
    this.abortConnect.abort();
    this.cancelPause?.();
    await this.link?.shutdown(this.options.stopTimeoutMs);
    await this.running;
  }

  /** Subscribe on the broker now (if connected) and again after every reconnect. */
  /**
   * Who takes broker messages. `done` tells the broker the message is delivered (PUBACK / PUBREC):
   * call it once the message is safe. Without a handler messages are acknowledged at once.
   */
  handleMessages(handler: MessageHandler): void {
    this.messageHandler = handler;
  }

  /** Rejects with SubscriptionRefusedError when the broker refuses it; the filter is then dropped. */
  async subscribe(filter: string, qos: QoS = 1): Promise<void> {
    this.subscriptions.set(filter, qos);
    try {
      await this.link?.subscribe(filter, qos);
    } catch (err) {
      const code = (err as { packet?: { granted?: number[] } }).packet?.granted?.[0];
      if (code === undefined || (code & 0x80) === 0) throw err;
      this.subscriptionRefused(filter, code, true);
      throw new SubscriptionRefusedError(filter, code);
    }
  }

  private subscriptionRefused(filter: string, reasonCode: number, direct: boolean): void {
    this.subscriptions.delete(filter);
    this.counters.subscribeRefused++;
    this.emit('subscriptionRefused', filter, reasonCode, direct);
  }

  async unsubscribe(filter: string): Promise<void> {
    this.subscriptions.delete(filter);
    await this.link?.unsubscribe(filter);
  }

  private async run(): Promise<void> {
    let failedRounds = 0;
    let quickLosses = 0;
    let connectedBefore = false;
    let outage = false;
    let youngPeerCloses = 0;
    let takeovers = 0;
    let subscribeDrops = 0;
    const { initialMs, maxMs } = this.options.reconnect;
    while (!this.stopping) {
      this.setState('connecting', {});
      const connected = await this.connectToFirstAvailable();
      if (connected === undefined) {
        if (this.stopping) break;
        failedRounds++;
        outage = true;
        youngPeerCloses = 0; // the broker was away: its closes were not about our session
        const delay = backoffDelay(failedRounds, initialMs, maxMs, this.options.random);
        this.setState('disconnected', { reason: `no broker reachable, next round in ${delay} ms` });
        await this.pause(delay);
        continue;
      }
      if (this.stopping) {
        connected.client.end(true);
        break;
      }
      failedRounds = 0;
      if (connectedBefore) this.counters.reconnects++;
      connectedBefore = true;
      // After an outage the backlog has waited for the broker, not on it: the stall clock starts now.
      if (outage) this.progressAt = this.options.now();
      outage = false;
      const connectedAt = this.options.now();
      const { reason, end, droppedAtSubscribe } = await this.runLink(connected, () => (takeovers = 0));
      if (this.stopping) break;
      subscribeDrops = droppedAtSubscribe && !connected.cleanFallback ? subscribeDrops + 1 : 0;
      if (subscribeDrops >= SESSION_LOOP_DROPS) {
        subscribeDrops = 0;
        youngPeerCloses = 0;
        this.fallBackToCleanSession(connected.url);
      }
      const suspicious =
        !droppedAtSubscribe &&
        end !== undefined &&
        end.byPeer &&
        end.clean &&
        end.linkAgeMs < YOUNG_LINK_MS &&
        !HeadOfLine.attributable(end);
      youngPeerCloses = suspicious ? youngPeerCloses + 1 : 0;
      // Once taken over, the next clean close by the broker is the other connection again.
      const again = this.takenOver && end !== undefined && end.byPeer && end.clean;
      if (end?.takenOver === true || again || youngPeerCloses >= SUSPECTED_TAKEOVER_CLOSES) {
        youngPeerCloses = 0;
        takeovers++;
        await this.backOffFromTakeover(connected.url, takeovers, end?.takenOver === true);
        continue;
      }
      if (end !== undefined) await this.blameLinkDrop(end);
      // A short jittered pause before reconnecting, growing while links keep dying young, so a broker
      // that accepts us and then drops us (or refuses our messages) is not hammered.
      quickLosses = this.options.now() - connectedAt < STABLE_LINK_MS ? quickLosses + 1 : 0;
      const delay = backoffDelay(Math.max(1, quickLosses), initialMs, maxMs, this.options.random);
      this.setState('disconnected', {
        broker: connected.url,
        reason: `${reason}; reconnecting in ${delay} ms`,
      });
      await this.pause(delay);
    }
    this.setState('disconnected', { reason: 'stopped' });
  }

  private async runLink(
    connected: BrokerConnection,
    onStable: () => void,
  ): Promise<{ reason: string; end: LinkEnd | undefined; droppedAtSubscribe: boolean }> {
    const subscribes = watchSubscribes(connected.client);
    const link = new BrokerLink(connected.url, connected.client, connected.connack, {
      outbox: this.outbox,
      options: connected.options,
      counters: this.counters,
      highestSent: this.highestSent,
      subscriptions: this.subscriptions,
      packetIds: connected.packetIds,
      logger: this.logger,
      drain: {
        probeSeq: this.headOfLine.probeSeq((seq) => this.outbox.isLive(seq)),
        onRefused: (entry, refusal) => this.deadLetter(entry, refusal, 1),
        onSettled: (seq) => this.headOfLine.settled(seq),
        onProgress: (idle) => {
          this.progressAt = this.options.now();
          this.caughtUp = idle;
        },
      },
      onSubscriptionRefused: (filter, code) => this.subscriptionRefused(filter, code, false),
    });
    this.link = link;
    this.caughtUp = false;
    if (link.maxPacketSize !== undefined) this.lastMaxPacketSize = link.maxPacketSize;
    const stable = setTimeout(() => {
      this.takenOver = false;
      onStable();
    }, TAKEOVER_CLEAR_MS).unref();
    this.setState('connected', { broker: connected.url });
    link.start();
    const reason = await link.closed;
    clearTimeout(stable);
    this.link = undefined;
    this.lastLinkEndAt = this.options.now();
    // Only the broker's own drops count: the gateway ends a link itself when it cannot store a broker
    // message, and a redelivery can come while the SUBSCRIBEs of the new link are still unanswered.
    const droppedAtSubscribe =
      link.end?.byPeer === true && !droppedByGateway.has(connected.client) && subscribes.pending() > 0;
    return { reason, end: link.end, droppedAtSubscribe };
  }

  /**
   * Our persistent session is broken at the broker (see SESSION_LOOP_DROPS): connect once with a clean
   * session under a client id of its own, so the downlink subscriptions are made afresh. What the broker
   * queued for the old session is not delivered; the next reconnect tries the persistent session again.
   */
  private fallBackToCleanSession(broker: string): void {
    this.cleanFallbackNext = true;
    this.counters.cleanSessionFallbacks++;
    this.sessionLoopLog.warn(
      `clean-fallback:${broker}`,
      {
        clientId: this.options.clientId,
        fallbackClientId: this.options.clientId + CLEAN_FALLBACK_SUFFIX,
        broker,
        drops: SESSION_LOOP_DROPS,
      },
      'uplink: the broker accepts our persistent session but drops the link at SUBSCRIBE every time ' +
        '(its node holding the session is gone?); falling back to a clean session and subscribing again; ' +
        'commands queued in the old session are not delivered',
    );
  }

  /**
   * The options for one connection: MQTT 3.1.1 to a broker that turned down 5, and the clean-session
   * fallback when it is due (used by one connection only).
   */
  private connectionOptions(protocolVersion: 4 | 5): ResolvedUplinkOptions {
    if (!this.cleanFallbackNext && protocolVersion === this.options.protocolVersion) return this.options;
    return {
      ...this.options,
      protocolVersion,
      ...(this.cleanFallbackNext
        ? { clientId: this.options.clientId + CLEAN_FALLBACK_SUFFIX, sessionExpirySeconds: 0 }
        : {}),
    };
  }

  /**
   * Another connection with our client id holds the session (a cloned installation, or a second
   * gateway configured with the same id). Fighting for it kicks both off in a loop and splits the
   * broker's queued messages between them: say so loudly, and wait longer every time.
   */
  private async backOffFromTakeover(broker: string, takeovers: number, certain: boolean): Promise<void> {
    this.counters.sessionTakeovers++;
    this.takenOver = true;
    const { initialMs, maxMs } = this.options.takeoverBackoff;
    const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(takeovers - 1, 30));
    // Half fixed, half jittered: never (almost) immediately back, and two gateways drift apart.
    const delay = Math.floor(ceiling / 2 + (this.options.random() * ceiling) / 2);
    this.logger.error(
      { clientId: this.options.clientId, broker, takeovers, retryInMs: delay, certain },
      `uplink: session taken over by another connection with client id ${this.options.clientId}` +
        (certain ? '' : ' (suspected: the broker keeps closing young links)') +
        '; set a unique --uplink-client-id on each gateway',
    );
    this.setState('disconnected', { broker, reason: `session taken over; reconnecting in ${delay} ms` });
    await this.pause(delay);
  }

  /** A link the broker closed right after one entry was sent: maybe that entry is the reason. */
  private async blameLinkDrop(end: LinkEnd): Promise<void> {
    const verdict = this.headOfLine.onLinkDropped(end);
    if (verdict.action === 'probe') {
      this.logger.warn(
        { seq: verdict.seq },
        'uplink: the broker keeps closing the link right after this message; sending it alone next',
      );
      return;
    }
    if (verdict.action !== 'give-up') return;
    const [entry] = await this.outbox.read(verdict.seq - 1, 1);
    if (entry === undefined || entry.seq !== verdict.seq) return;
    this.deadLetter(
      entry,
      { reason: `the broker closed the link each time it was sent (${end.reason})` },
      verdict.attempts,
    );
  }

  /** Out of the outbox into the dead letters (kept, counted, logged once), so the next one can go. */
  private deadLetter(entry: OutboxEntry, refusal: Refusal, attempts: number): void {
    this.headOfLine.settled(entry.seq);
    this.counters.deadLettered++;
    const store = this.options.deadLetters;
    const kept = store?.add(entry, { ...refusal, attempts }, this.options.wallNow()) ?? Promise.resolve();
    this.outbox.forget(entry.seq, kept);
    this.progressAt = this.options.now();
    this.deadLetterLog.warn(
      `dead-letter:${entry.clientId}:${refusal.reasonCode ?? (attempts > 1 ? 'link' : 'size')}`,
      {
        seq: entry.seq,
        id: entry.userProperties['mqttsn-id'],
        clientId: entry.clientId,
        topic: entry.topic,
        bytes: entry.payload.length,
        ...refusal,
        attempts,
      },
      store === undefined
        ? 'uplink: the broker will not take this message; dropped'
        : 'uplink: the broker will not take this message; moved to the dead letters',
    );
    kept.catch((err: unknown) =>
      this.logger.error(
        { err, seq: entry.seq },
        'uplink: writing a dead letter failed; kept in the outbox on disk',
      ),
    );
  }

  /** One round over the brokers, primary first; undefined when all failed (or stop() was called). */
  private async connectToFirstAvailable(): Promise<BrokerConnection | undefined> {
    const failures: string[] = [];
    for (const url of this.options.brokers) {
      if (this.stopping) return undefined;
      try {
        const connected = await this.connectTo(url);
        if (failures.length > 0)
          this.logger.warn({ failures, broker: url }, 'uplink: connected after failures');
        return connected;
      } catch (err) {
        if (this.stopping) return undefined;
        this.counters.connectFailures++;
        failures.push(`${url}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    this.logger.warn({ failures }, 'uplink: no broker reachable');
    return undefined;
  }

  /**
   * One attempt at one broker. A broker that turns down MQTT 5 (RabbitMQ 3.10, aedes) is asked again
   * at once with 3.1.1, and directly on reconnects for MQTT5_RETRY_MS: messages then go without user
   * properties (no `mqttsn-id`), which the log line says, once per broker.
   */
  private async connectTo(url: string): Promise<BrokerConnection> {
    const fellBackAt = this.mqtt311Brokers.get(url);
    const recent = fellBackAt !== undefined && this.options.now() - fellBackAt < MQTT5_RETRY_MS;
    const asked = recent ? 4 : this.options.protocolVersion;
    const attempt = async (version: 4 | 5): Promise<BrokerConnection> => {
      const options = this.connectionOptions(version);
      const connected = await connectOnce(url, options, this.abortConnect.signal, this.onBrokerMessage);
      this.cleanFallbackNext = false;
      return { ...connected, url, options, cleanFallback: options.clientId !== this.options.clientId };
    };
    try {
      const connected = await attempt(asked);
      // MQTT 5 again (an upgraded broker): a later fallback is news again.
      if (asked === 5) this.mqtt311Brokers.delete(url);
      return connected;
    } catch (err) {
      if (asked !== 5 || this.stopping || !refusedProtocolVersion(err)) throw err;
      const connected = await attempt(4);
      this.mqtt311Brokers.set(url, this.options.now());
      if (fellBackAt !== undefined) return connected; // still 3.1.1 only: counted and said already
      this.counters.protocolFallbacks++;
      this.logger.warn(
        { broker: url, err: err instanceof Error ? err.message : String(err) },
        'uplink: the broker turned down MQTT 5 and took 3.1.1; using 3.1.1 with it, asking for 5 again ' +
          'on reconnects every 10 minutes (messages carry no mqttsn-id user property: set ' +
          '--mqtt-version 4 to say so in the config)',
      );
      return connected;
    }
  }

  private pause(ms: number): Promise<void> {
    if (this.stopping) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.cancelPause = () => {
        this.cancelPause = undefined;
        done();
      };
    });
  }

  /** Emits 'state' on every change, and again when the same state comes with a new reason. */
  private setState(state: UplinkState, detail: UplinkStateDetail): void {
    if (state === this.currentState && detail.reason === undefined) return;
    this.currentState = state;
    const unexpected = state === 'disconnected' && detail.reason !== 'stopped';
    this.logger[unexpected ? 'warn' : 'info']({ ...detail }, `uplink ${state}`);
    this.emit('state', state, detail);
  }
}

/** A connection as the Uplink made it: to which broker, with which options (version, session). */
interface BrokerConnection extends Connected {
  url: string;
  options: ResolvedUplinkOptions;
  /** A clean session under the fallback client id (see SESSION_LOOP_DROPS). */
  cleanFallback: boolean;
}

/** Counts SUBSCRIBEs the broker has not answered yet on this client (it dies with the client). */
function watchSubscribes(client: Connected['client']): { pending(): number } {
  let pending = 0;
  client.on('packetsend', (packet) => {
    if (packet.cmd === 'subscribe') pending++;
  });
  client.on('packetreceive', (packet) => {
    if (packet.cmd === 'suback') pending = Math.max(0, pending - 1);
  });
  return { pending: () => pending };
}
