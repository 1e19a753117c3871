/**
 * One established broker connection: announces presence, re-applies downlink subscriptions, runs the
 * drain, and reports (once) when the connection is gone. A link is never reconnected: MQTT.js's own
 * copies of unacknowledged PUBLISHes die with it, so only the outbox decides what is sent again.
 */
import type { IConnackPacket, MqttClient } from 'mqtt';
import type { QoS } from 'mqtt-packet';
import type { Logger } from 'pino';
import type { Outbox } from '../store/outbox.js';
import type { UplinkCounters } from './counters.js';
import { Drain, type DrainOptions } from './drain.js';
import type { LinkDrop } from './head-of-line.js';
import type { ResolvedUplinkOptions } from './options.js';
import type { PacketIds } from './packet-ids.js';

export interface LinkContext {
  outbox: Outbox;
  options: ResolvedUplinkOptions;
  counters: UplinkCounters;
  highestSent: { seq: number };
  subscriptions: ReadonlyMap<string, QoS>;
  /** The connection's packet ids (shared with MQTT.js). */
  packetIds: PacketIds;
  logger: Logger;
  /** Drain hooks: dead letters, head-of-line attribution, stall tracking. */
  drain: Pick<DrainOptions, 'probeSeq' | 'onRefused' | 'onSettled' | 'onProgress'>;
  /** The broker refused a subscription (SUBACK reason code >= 0x80) while re-subscribing. */
  onSubscriptionRefused: (filter: string, reasonCode: number) => void;
}

/** MQTT 5 DISCONNECT reason code: another connection took over our session (same client id). */
export const SESSION_TAKEN_OVER = 0x8e;

/** How a link ended, for head-of-line attribution and takeover detection. */
export interface LinkEnd extends LinkDrop {
  reason: string;
  /** The broker said DISCONNECT 0x8E (MQTT 5). */
  takenOver: boolean;
  /** Closed without a socket error (a FIN from the broker, not a reset or a timeout). */
  clean: boolean;
}

export class BrokerLink {
  /** Resolves with the reason once the connection is gone (never rejects). */
  readonly closed: Promise<string>;
  /** Set once the connection is gone. */
  end: LinkEnd | undefined;
  /** The broker's Maximum Packet Size (MQTT 5 CONNACK), if it announced one. */
  readonly maxPacketSize: number | undefined;
  /** Most PUBLISHes in flight: the configured window capped by the broker's receive maximum. */
  readonly window: number;
  private drain: Drain | undefined;
  private done = false;
  private lastError: Error | undefined;
  private resolveClosed!: (reason: string) => void;
  private presenceTimer: NodeJS.Timeout | undefined;
  private takenOver = false;
  private readonly startedAt: number;

  constructor(
    readonly url: string,
    private readonly client: MqttClient,
    connack: IConnackPacket,
    private readonly context: LinkContext,
  ) {
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    this.startedAt = context.options.now();
    const receiveMaximum = connack.properties?.receiveMaximum ?? Number.POSITIVE_INFINITY;
    this.window = Math.max(1, Math.min(context.options.window, receiveMaximum));
    this.maxPacketSize = connack.properties?.maximumPacketSize;
    client.on('error', (err) => {
      this.lastError = err;
    });
    client.on('disconnect', (packet) => {
      const code = packet.reasonCode ?? 0;
      if (code === SESSION_TAKEN_OVER) this.takenOver = true;
      this.lastError = new Error(`broker sent DISCONNECT (reason code 0x${code.toString(16)})`);
    });
    client.on('close', () =>
      this.terminate(`connection closed${this.lastError ? `: ${this.lastError.message}` : ''}`, true),
    );
  }

  get inflight(): number {
    return this.drain?.inflightCount ?? 0;
  }

  /** Re-apply subscriptions, publish presence, then start draining the outbox. */
  start(): void {
    const { subscriptions, options, logger } = this.context;
    if (subscriptions.size > 0) {
      const filters = Object.fromEntries([...subscriptions].map(([filter, qos]) => [filter, { qos }]));
      this.client.subscribe(filters, (err, granted, packet) => {
        if (!err) return;
        const codes = (packet as { granted?: number[] } | undefined)?.granted;
        let refused = 0;
        // Refused filters are dropped, so that the next reconnect does not ask for them again.
        (granted ?? []).forEach((sub, i) => {
          const code = codes?.[i] ?? 0;
          if ((code & 0x80) === 0) return;
          refused++;
          this.context.onSubscriptionRefused(sub.topic, code);
        });
        if (refused === 0) logger.error({ err, broker: this.url }, 'uplink: re-subscribing failed');
      });
    }
    const { presence } = options;
    if (presence === undefined) {
      this.startDrain();
      return;
    }
    // Presence first, alone: it takes a slot of the broker's receive maximum until acknowledged.
    this.presenceTimer = setTimeout(
      () => this.terminate('no PUBACK for the presence message'),
      options.keepaliveSeconds * 1000,
    ).unref();
    this.client.publish(presence.topic, presence.online, { qos: 1, retain: true }, (err) => {
      clearTimeout(this.presenceTimer);
      if (this.done) return;
      if (err) logger.warn({ err, broker: this.url }, 'uplink: presence message refused');
      this.startDrain();
    });
  }

  subscribe(filter: string, qos: QoS): Promise<void> {
    return this.client.subscribeAsync(filter, { qos }).then(() => undefined);
  }

  unsubscribe(filter: string): Promise<void> {
    return this.client.unsubscribeAsync(filter).then(() => undefined);
  }

  /** Drop the connection now; in-flight messages stay in the outbox and are sent again on the next one. */
  terminate(reason: string, byPeer = false): void {
    if (this.done) return;
    this.done = true;
    const now = this.context.options.now();
    const oldest = this.drain?.oldestInflight();
    this.end = {
      reason,
      byPeer,
      clean: this.lastError === undefined,
      takenOver: this.takenOver,
      linkAgeMs: now - this.startedAt,
      oldest: oldest && { seq: oldest.seq, sentAgoMs: now - oldest.sentAt, inflight: oldest.inflight },
    };
    clearTimeout(this.presenceTimer);
    this.drain?.stop();
    this.client.end(true);
    this.resolveClosed(reason);
  }

  /**
   * Clean stop: send nothing new, wait (bounded) for outstanding PUBACKs, publish presence offline
   * (a DISCONNECT discards the will), then disconnect.
   */
  async shutdown(timeoutMs: number): Promise<void> {
    if (this.done) return;
    const { now } = this.context.options;
    const deadline = now() + timeoutMs;
    const remaining = (): number => Math.max(0, deadline - now());
    this.drain?.stopReading();
    if (this.drain !== undefined) await withTimeout(this.drain.drained(), remaining());
    const { presence } = this.context.options;
    if (presence !== undefined && !this.done) {
      const published = this.client.publishAsync(presence.topic, presence.offline, { qos: 1, retain: true });
      await withTimeout(published, remaining()).catch(() => undefined);
    }
    if (!this.done) {
      this.done = true;
      this.end = { reason: 'stopped', byPeer: false, clean: true, takenOver: false, linkAgeMs: 0 };
      clearTimeout(this.presenceTimer);
      this.drain?.stop();
      const ended = new Promise<void>((resolve) => this.client.end(false, {}, () => resolve()));
      if (!(await withTimeout(ended, Math.max(remaining(), 500)))) {
        // end(true) does nothing while a clean end is under way, and that waits for the FIN to be
        // written, which a half-open (blackholed) link never does: destroy the socket itself.
        this.client.end(true);
        this.client.stream?.destroy();
      }
      this.resolveClosed('stopped');
    }
  }

  private startDrain(): void {
    if (this.done) return;
    const { outbox, options, counters, highestSent, logger, packetIds } = this.context;
    this.drain = new Drain(this.client, outbox, {
      window: this.window,
      readChunk: options.readChunk,
      ackTimeoutMs: options.keepaliveSeconds * 1000,
      userProperties: options.protocolVersion === 5,
      protocolVersion: options.protocolVersion,
      packetIds,
      highestSent,
      counters,
      logger,
      now: options.now,
      onFailure: (reason) => this.terminate(reason),
      maxPacketSize: this.maxPacketSize,
      ...this.context.drain,
    });
  }
}

/** Resolves true if `promise` settled within `ms`, false otherwise (rejections count as settled). */
async function withTimeout(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([
      promise.then(
        () => true,
        () => true,
      ),
      timedOut,
    ]);
  } finally {
    clearTimeout(timer);
  }
}
