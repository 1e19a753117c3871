/**
 * Streams the outbox to one broker connection: reads entries in sequence order in chunks, keeps at most
 * `window` PUBLISHes awaiting PUBACK, refills on every PUBACK, and wakes when new entries are committed.
 * A watchdog fails the link when the oldest PUBLISH has waited longer than `ackTimeoutMs` (half-open
 * links: TCP looks fine, nothing comes back).
 *
 * One Drain per connection. It starts at the oldest live entry, so after an outage everything that was
 * in flight is sent again, in order (at-least-once).
 */
import type { MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import type { Outbox, OutboxEntry } from '../store/outbox.js';
import type { UplinkCounters } from './counters.js';
import { brokerTopicProblem } from '../topics/names.js';
import { mqttStringProblem } from '../topics/mqtt-string.js';
import { publishPacketSize } from './packet-size.js';

/** Why the broker will not take an entry, for the dead letters. */
export interface Refusal {
  reason: string;
  reasonCode?: number;
}

export interface DrainOptions {
  window: number;
  readChunk: number;
  ackTimeoutMs: number;
  /** Send user properties (MQTT 5 only). */
  userProperties: boolean;
  /** Highest sequence number sent by this process so far, across connections (to count re-sends). */
  highestSent: { seq: number };
  counters: UplinkCounters;
  logger: Logger;
  /** Monotonic ms (the uplink's clock): send times and the PUBACK timeout. */
  now: () => number;
  /** Called once when the link must be dropped (PUBACK timeout, transient broker refusal). */
  onFailure: (reason: string) => void;
  /** The broker's Maximum Packet Size (MQTT 5 CONNACK): larger entries are refused without sending. */
  maxPacketSize?: number;
  /** Send this entry alone (window 1) until the broker answers it: it is suspected of killing links. */
  probeSeq?: number;
  /** The broker refused an entry for good; it is no longer in flight. Not called after stop(). */
  onRefused?: (entry: OutboxEntry, refusal: Refusal) => void;
  /** The broker answered `seq` (any PUBACK). */
  onSettled?: (seq: number) => void;
  /** The queue moved: an entry was answered, or the drain caught up (idle) or has work again. */
  onProgress?: (idle: boolean) => void;
}

/** PUBACK reason codes worth retrying on a new connection rather than dropping the message. */
const TRANSIENT_REASON_CODES = new Set([0x91 /* packet id in use */, 0x97 /* quota exceeded */]);

export class Drain {
  private cursor = 0;
  private buffer: OutboxEntry[] = [];
  private bufferPos = 0;
  /** seq -> send time (ms), in send order: the first entry is the oldest PUBLISH awaiting PUBACK. */
  private readonly inflight = new Map<number, number>();
  private readInProgress = false;
  private pumpScheduled = false;
  private pumpWanted = false;
  private stopped = false;
  private reading = true;
  private readonly watchdog: NodeJS.Timeout;
  private readonly onCommitted = (): void => this.pump();
  private drainedWaiters: Array<() => void> = [];
  private idle = false;
  private probeSeq: number | undefined;

  constructor(
    private readonly client: MqttClient,
    private readonly outbox: Outbox,
    private readonly options: DrainOptions,
  ) {
    this.probeSeq = options.probeSeq;
    const checkEvery = Math.max(50, Math.min(1000, options.ackTimeoutMs / 4));
    this.watchdog = setInterval(() => this.checkAckTimeout(), checkEvery).unref();
    outbox.on('committed', this.onCommitted);
    this.pump();
  }

  get inflightCount(): number {
    return this.inflight.size;
  }

  /** The oldest PUBLISH awaiting PUBACK: its seq, when it was sent (options.now()), and how many are in flight. */
  oldestInflight(): { seq: number; sentAt: number; inflight: number } | undefined {
    const first = this.inflight.entries().next();
    if (first.done === true) return undefined;
    return { seq: first.value[0], sentAt: first.value[1], inflight: this.inflight.size };
  }

  /** Stop sending new messages; PUBACKs for those in flight are still processed. */
  stopReading(): void {
    this.reading = false;
    this.outbox.off('committed', this.onCommitted);
  }

  /** Resolves when nothing is in flight. */
  drained(): Promise<void> {
    if (this.inflight.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainedWaiters.push(resolve));
  }

  /** The connection is gone: forget everything; late callbacks from MQTT.js are ignored. */
  stop(): void {
    this.stopReading();
    this.stopped = true;
    clearInterval(this.watchdog);
    this.inflight.clear();
    this.buffer = [];
    this.wakeDrainedWaiters();
  }

  /** Fill the window: synchronously from entries already read, then with a read if room remains. */
  private pump(): void {
    if (!this.active()) return;
    // Gone by other means (TTL, quota): nothing left to probe.
    if (this.probeSeq !== undefined && !this.outbox.isLive(this.probeSeq)) this.probeSeq = undefined;
    // A suspect goes out alone, so that a link it kills is not blamed on the messages behind it.
    const window = this.probeSeq === undefined ? this.options.window : 1;
    const sentAt = this.options.now(); // one clock read per refill: the watchdog needs no finer grain
    while (this.inflight.size < window && this.bufferPos < this.buffer.length) {
      const entry = this.buffer[this.bufferPos++]!;
      this.cursor = entry.seq;
      // Dropped (quota, TTL) since it was read: nothing to send.
      if (this.outbox.isLive(entry.seq)) this.publish(entry, sentAt);
    }
    if (this.inflight.size >= window) return;
    if (this.readInProgress) {
      this.pumpWanted = true; // something was committed during the read: read again after it
      return;
    }
    this.readMore();
  }

  private readMore(): void {
    this.readInProgress = true;
    this.pumpWanted = false;
    this.outbox.read(this.cursor, this.options.readChunk).then(
      (entries) => {
        this.readInProgress = false;
        this.buffer = entries;
        this.bufferPos = 0;
        this.setIdle(entries.length === 0 && this.inflight.size === 0);
        if (entries.length > 0 || this.pumpWanted) this.pump();
      },
      (err: unknown) => {
        this.readInProgress = false;
        this.options.logger.error({ err }, 'uplink: reading the outbox failed');
        if (this.active()) this.options.onFailure('outbox read failed');
      },
    );
  }

  private active(): boolean {
    return this.reading && !this.stopped;
  }

  private setIdle(idle: boolean): void {
    if (idle === this.idle) return;
    this.idle = idle;
    this.options.onProgress?.(idle);
  }

  private publish(entry: OutboxEntry, sentAt: number): void {
    const { counters, highestSent, maxPacketSize } = this.options;
    // Belt and braces behind the gateway's own checks: an entry the broker would refuse (stored by an
    // older version) makes it drop the link on every replay, stalling every device. Never send it:
    // keep it with the dead letters.
    const problem = invalidForBroker(entry);
    if (problem) {
      this.refused(entry, { reason: `not a valid MQTT string for the broker: ${problem}` }, 'invalidDropped');
      return;
    }
    const properties = this.options.userProperties ? { userProperties: entry.userProperties } : undefined;
    if (maxPacketSize !== undefined) {
      const size = publishPacketSize(entry.topic, entry.payload.length, properties?.userProperties);
      if (size > maxPacketSize) {
        // The broker would close the link on it, on every reconnect: refuse it here instead.
        this.refused(entry, {
          reason: `PUBLISH of ${size} bytes exceeds the broker's maximum packet size of ${maxPacketSize}`,
        });
        return;
      }
    }
    this.inflight.set(entry.seq, sentAt);
    counters.published++;
    if (entry.seq <= highestSent.seq) counters.resent++;
    else highestSent.seq = entry.seq;
    this.client.publish(entry.topic, entry.payload, { qos: 1, retain: entry.retain, properties }, (err) =>
      this.onPuback(entry, err),
    );
  }

  private onPuback(entry: OutboxEntry, err: Error | null | undefined): void {
    if (this.stopped || !this.inflight.delete(entry.seq)) return;
    // MQTT.js reports success as null or undefined depending on the path.
    if (err) {
      const reasonCode = (err as Error & { code?: unknown }).code;
      if (typeof reasonCode !== 'number') {
        // MQTT.js gave up on it (connection closing): it must go out again, on a new connection.
        this.options.onFailure(`publish failed: ${err.message}`);
        return;
      }
      this.settled(entry.seq);
      const counted = `0x${reasonCode.toString(16).padStart(2, '0')}`;
      const { refusals } = this.options.counters;
      refusals[counted] = (refusals[counted] ?? 0) + 1;
      if (TRANSIENT_REASON_CODES.has(reasonCode)) {
        // Quota exceeded / id in use: an answer about now, not about the message. Retry it on a new
        // connection, after the uplink's backoff (which grows while links keep dying young).
        this.options.onFailure(`broker answered PUBACK with reason code ${counted}`);
        return;
      }
      // A permanent refusal (not authorized, bad topic, too large, ...) would block the queue forever.
      this.refused(entry, { reason: `PUBACK ${counted} ${err.message}`, reasonCode });
      return;
    }
    this.settled(entry.seq);
    this.options.counters.acked++;
    this.outbox.ack(entry.seq);
    this.options.onProgress?.(false);
    if (this.inflight.size === 0) this.wakeDrainedWaiters();
    this.schedulePump();
  }

  private settled(seq: number): void {
    if (seq === this.probeSeq) this.probeSeq = undefined;
    this.options.onSettled?.(seq);
  }

  /** The broker will not take `entry`: hand it over (dead letters) and go on with the next. */
  private refused(
    entry: OutboxEntry,
    refusal: Refusal,
    counter: 'brokerRejected' | 'invalidDropped' = 'brokerRejected',
  ): void {
    if (entry.seq === this.probeSeq) this.probeSeq = undefined;
    this.options.counters[counter]++;
    if (this.options.onRefused !== undefined) this.options.onRefused(entry, refusal);
    else {
      this.options.logger.error(
        { seq: entry.seq, topic: entry.topic, ...refusal, id: entry.userProperties['mqttsn-id'] },
        'uplink: broker refused a message, dropping it',
      );
      this.outbox.ack(entry.seq);
    }
    this.options.onProgress?.(false);
    if (this.inflight.size === 0) this.wakeDrainedWaiters();
    this.schedulePump();
  }

  /**
   * MQTT.js hands over each PUBACK of a TCP read in its own process.nextTick; refilling once after all
   * of them (a microtask runs after the tick queue) sends the refill as one socket write, not one each.
   */
  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    queueMicrotask(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  private checkAckTimeout(): void {
    const oldest = this.inflight.values().next();
    if (oldest.done === true) return;
    const waited = this.options.now() - oldest.value;
    if (waited > this.options.ackTimeoutMs) {
      this.options.counters.ackTimeouts++;
      this.options.onFailure(
        `no PUBACK for ${Math.round(waited)} ms (limit ${this.options.ackTimeoutMs} ms)`,
      );
    }
  }

  private wakeDrainedWaiters(): void {
    const waiters = this.drainedWaiters;
    this.drainedWaiters = [];
    for (const wake of waiters) wake();
  }
}

/** Why the broker would refuse this entry's topic or user properties, or null. */
function invalidForBroker(entry: OutboxEntry): string | null {
  const topic = brokerTopicProblem(entry.topic);
  if (topic) return topic;
  for (const [key, value] of Object.entries(entry.userProperties)) {
    for (const text of [key, ...(Array.isArray(value) ? value : [value])]) {
      const problem = mqttStringProblem(String(text));
      if (problem) return `user property ${problem}`;
    }
  }
  return null;
}
