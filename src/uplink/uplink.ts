/**
 * The broker connection. Owns reconnects (MQTT.js's are off): every cycle tries the brokers in order,
 * primary first; after a round where all failed it waits an exponentially growing, fully jittered delay;
 * a successful connection resets the backoff. While connected, a Drain streams the outbox at link speed.
 */
import { EventEmitter } from 'node:events';
import type { IPublishPacket } from 'mqtt';
import type { QoS } from 'mqtt-packet';
import type { Logger } from 'pino';
import type { Outbox } from '../store/outbox.js';
import { backoffDelay } from './backoff.js';
import { connectOnce, type Connected, type MessageHandler } from './connect.js';
import { newCounters, type UplinkCounters } from './counters.js';
import { BrokerLink } from './link.js';
import { resolveUplinkOptions, type ResolvedUplinkOptions, type UplinkOptions } from './options.js';

export type { UplinkOptions } from './options.js';

export type UplinkState = 'connecting' | 'connected' | 'disconnected';

/** A link that lasted this long counts as healthy: the next loss starts the pause from initialMs again. */
const STABLE_LINK_MS = 10_000;

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
}

export interface UplinkStats extends UplinkCounters {
  state: UplinkState;
  /** URL of the connected broker, or null. */
  broker: string | null;
  /** PUBLISHes awaiting PUBACK on the current connection. */
  inflight: number;
  /** Window in force on the current connection (configured, capped by the broker's receive maximum). */
  window: number;
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
    };
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

  async subscribe(filter: string, qos: QoS = 1): Promise<void> {
    this.subscriptions.set(filter, qos);
    await this.link?.subscribe(filter, qos);
  }

  async unsubscribe(filter: string): Promise<void> {
    this.subscriptions.delete(filter);
    await this.link?.unsubscribe(filter);
  }

  private async run(): Promise<void> {
    let failedRounds = 0;
    let quickLosses = 0;
    let connectedBefore = false;
    const { initialMs, maxMs } = this.options.reconnect;
    while (!this.stopping) {
      this.setState('connecting', {});
      const connected = await this.connectToFirstAvailable();
      if (connected === undefined) {
        if (this.stopping) break;
        failedRounds++;
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
      const connectedAt = performance.now();
      const reason = await this.runLink(connected);
      if (this.stopping) break;
      // A short jittered pause before reconnecting, growing while links keep dying young, so a broker
      // that accepts us and then drops us (or refuses our messages) is not hammered.
      quickLosses = performance.now() - connectedAt < STABLE_LINK_MS ? quickLosses + 1 : 0;
      const delay = backoffDelay(Math.max(1, quickLosses), initialMs, maxMs, this.options.random);
      this.setState('disconnected', {
        broker: connected.url,
        reason: `${reason}; reconnecting in ${delay} ms`,
      });
      await this.pause(delay);
    }
    this.setState('disconnected', { reason: 'stopped' });
  }

  private async runLink(connected: Connected & { url: string }): Promise<string> {
    const link = new BrokerLink(connected.url, connected.client, connected.connack, {
      outbox: this.outbox,
      options: this.options,
      counters: this.counters,
      highestSent: this.highestSent,
      subscriptions: this.subscriptions,
      logger: this.logger,
    });
    this.link = link;
    this.setState('connected', { broker: connected.url });
    link.start();
    const reason = await link.closed;
    this.link = undefined;
    return reason;
  }

  /** One round over the brokers, primary first; undefined when all failed (or stop() was called). */
  private async connectToFirstAvailable(): Promise<(Connected & { url: string }) | undefined> {
    const failures: string[] = [];
    for (const url of this.options.brokers) {
      if (this.stopping) return undefined;
      try {
        const connected = await connectOnce(
          url,
          this.options,
          this.abortConnect.signal,
          this.onBrokerMessage,
        );
        if (failures.length > 0)
          this.logger.warn({ failures, broker: url }, 'uplink: connected after failures');
        return { ...connected, url };
      } catch (err) {
        if (this.stopping) return undefined;
        this.counters.connectFailures++;
        failures.push(`${url}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    this.logger.warn({ failures }, 'uplink: no broker reachable');
    return undefined;
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
