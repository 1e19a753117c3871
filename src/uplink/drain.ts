/**
 * Streams the outbox to one broker connection: reads entries in sequence order in chunks, keeps at most
 * `window` PUBLISHes awaiting PUBACK, refills on every PUBACK, and wakes when new entries are committed.
 * A watchdog fails the link when the oldest PUBLISH has waited longer than `ackTimeoutMs` (half-open
 * links: TCP looks fine, nothing comes back).
 *
 * One Drain per connection. It starts at the oldest live entry, so after an outage everything that was
 * in flight is sent again, in order (at-least-once).
 *
 * PUBLISHes do not go through MQTT.js's publish(): the drain writes the bytes stored at append to the
 * socket (publish-writer.ts, wire.ts), with packet ids from the allocator it shares with MQTT.js
 * (packet-ids.ts), and takes the PUBACKs from MQTT.js's 'packetreceive' event. MQTT.js keeps everything
 * else: connect, TLS, auth, keep-alive, subscriptions, the downlink, and its own presence PUBLISH.
 */
import { ReasonCodes, type MqttClient, type Packet } from 'mqtt';
import type { Logger } from 'pino';
import type { Outbox, OutboxEntry } from '../store/outbox.js';
import { publishStringsProblem } from '../store/record.js';
import type { UplinkCounters } from './counters.js';
import type { PacketIds } from './packet-ids.js';
import { PublishWriter } from './publish-writer.js';
import { wireFormOf, wireSize, type WireForm } from './wire.js';

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
  /** The connection's MQTT version: 3.1.1 PUBLISHes carry no properties. */
  protocolVersion: 4 | 5;
  /** The connection's packet ids, shared with MQTT.js (its messageIdProvider). */
  packetIds: PacketIds;
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
/** PUBACK 0x10 (no matching subscribers) is a success, as MQTT.js counts it. */
const NO_MATCHING_SUBSCRIBERS = 0x10;

export class Drain {
  private cursor = 0;
  private buffer: OutboxEntry[] = [];
  private bufferPos = 0;
  /** seq -> send time (ms), in send order: the first entry is the oldest PUBLISH awaiting PUBACK. */
  private readonly inflight = new Map<number, number>();
  /** Packet id -> the entry sent under it, until its PUBACK. */
  private readonly byId = new Map<number, OutboxEntry>();
  private readonly form: WireForm;
  private readonly writer: PublishWriter;
  private readonly onPacket = (packet: Packet): void => {
    if (packet.cmd === 'puback' && packet.messageId !== undefined)
      this.onPuback(packet.messageId, packet.reasonCode);
  };
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
    this.form = wireFormOf(options.protocolVersion, options.userProperties);
    if (client.stream === undefined) throw new Error('uplink: the connection has no stream');
    this.writer = new PublishWriter(client.stream, this.form, () => this.pump());
    // Before MQTT.js's own handling of the packet, which ignores a PUBACK for an id it did not send.
    client.on('packetreceive', this.onPacket);
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
    this.client.off('packetreceive', this.onPacket);
    this.inflight.clear();
    this.byId.clear();
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
    let outOfIds = false;
    while (this.inflight.size < window && this.bufferPos < this.buffer.length && !this.writer.blocked) {
      const entry = this.buffer[this.bufferPos]!;
      // Dropped (quota, TTL) since it was read: nothing to send.
      if (this.outbox.isLive(entry.seq) && !this.publish(entry, sentAt)) {
        outOfIds = true; // sent on a later refill, once a PUBACK frees an id
        break;
      }
      this.bufferPos++;
      this.cursor = entry.seq;
    }
    this.writer.flush(); // the whole refill: one socket write
    // Backpressure: the writer calls pump() again once the socket has drained.
    if (this.inflight.size >= window || this.writer.blocked || outOfIds) return;
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

  /** Send `entry`, or refuse it for good; false (nothing done) when no packet id is free. */
  private publish(entry: OutboxEntry, sentAt: number): boolean {
    const { counters, highestSent, maxPacketSize } = this.options;
    // Belt and braces behind the gateway's own checks: an entry the broker would refuse makes it drop
    // the link on every replay, stalling every device. Never send it: keep it with the dead letters.
    // Records written by this version were checked when stored (format 4); older ones are checked here.
    const problem = entry.checked ? null : publishStringsProblem(entry);
    if (problem) {
      this.refused(entry, { reason: `not a valid MQTT string for the broker: ${problem}` }, 'invalidDropped');
      return true;
    }
    const size = wireSize(entry, this.form);
    if (maxPacketSize !== undefined && size > maxPacketSize) {
      // The broker would close the link on it, on every reconnect: refuse it here instead.
      this.refused(entry, {
        reason: `PUBLISH of ${size} bytes exceeds the broker's maximum packet size of ${maxPacketSize}`,
      });
      return true;
    }
    // Null only if MQTT.js holds hundreds of ids itself while the window is near its 65,000 maximum.
    const id = this.options.packetIds.allocate();
    if (id === null) return false;
    this.byId.set(id, entry);
    this.inflight.set(entry.seq, sentAt);
    counters.published++;
    // Sent before by this process (an earlier link): a re-send, counted, with DUP as MQTT asks of a
    // re-delivery. Stored by an earlier process, which may have sent it before it stopped: DUP as well,
    // since nothing on disk says whether it did (DUP only means "might be a re-delivery").
    const resent = entry.seq <= highestSent.seq;
    if (resent) counters.resent++;
    else highestSent.seq = entry.seq;
    const dup = resent || entry.seq <= this.outbox.lastSeqAtOpen;
    this.writer.add(entry, id, dup, size);
    return true;
  }

  /** A PUBACK: ours when the id is one the drain sent (MQTT.js's own are left to it). */
  private onPuback(id: number, reasonCode: number | undefined): void {
    const entry = this.byId.get(id);
    if (this.stopped || entry === undefined) return;
    this.byId.delete(id);
    this.options.packetIds.deallocate(id);
    if (!this.inflight.delete(entry.seq)) return;
    // As MQTT.js judged it: 0 and 0x10 are successes, anything else a refusal with that code.
    if (reasonCode !== undefined && reasonCode > 0 && reasonCode !== NO_MATCHING_SUBSCRIBERS) {
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
      const text = ReasonCodes[reasonCode as keyof typeof ReasonCodes] ?? `reason code ${counted}`;
      this.refused(entry, { reason: `PUBACK ${counted} Publish error: ${text}`, reasonCode });
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
