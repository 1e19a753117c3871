import { isIPv6 } from 'node:net';
import { ReturnCode } from '../codec/constants.js';
import type { MsgIdPacket, TopicAckPacket } from '../codec/types.js';
import {
  isLoaded,
  sizeOf,
  type DownlinkMessage,
  type DownlinkRef,
  type QueuedDownlink,
} from '../store/downlink.js';
import type { DownlinkQueueStore } from '../store/ports.js';
import type { Logger } from 'pino';
import type { RateLimitedWarn } from '../log/rate-limit.js';
import type { Clock } from './clock.js';
import { describePeer, type Send } from './peer.js';
import type { Session } from './session.js';
import type { DiscardReason, GatewayStats } from './stats.js';
import type { TimerWheel } from './wheel.js';
import { downlinkProblem } from './representable.js';

export interface DeliveryOptions {
  /** T_retry: how long to wait for the device's answer before resending (DUP set). */
  retryMs: number;
  /** N_retry: resends before the client is considered lost. */
  maxRetries: number;
  /** Most messages queued per device; beyond that `policy` applies. */
  maxQueuedPerClient: number;
  /** Most bytes queued per device (stored record sizes); beyond that `policy` applies. */
  maxBytesPerClient?: number;
  /** Most bytes queued for all devices together; beyond that new messages are dropped. */
  maxBytes?: number;
  policy: 'drop-oldest' | 'reject';
  /** Largest datagram sent to a device (MQTT-SN's own maximum, 65535, when unset). */
  maxPacketSize?: number;
}

export const DEFAULT_DOWNLINK_MAX_BYTES_PER_CLIENT = 1024 * 1024;
export const DEFAULT_DOWNLINK_MAX_BYTES = 256 * 1024 * 1024;

/** What delivery needs around it; the lifecycle answers the two state changes delivery causes. */
export interface DeliveryHost {
  readonly stats: GatewayStats;
  readonly warn: RateLimitedWarn;
  readonly log: Logger;
  readonly clock: Clock;
  readonly send: Send;
  /** The device did not answer N_retry times: it is lost. */
  lose(session: Session, reason: string): void;
  /** An awake device has had all its buffered messages: it may sleep again. */
  drained(session: Session): void;
}

/** Why a queued downlink message was dropped for room (see GatewayStats.downlinkDroppedFor). */
type DropReason = 'queue_full' | 'client_bytes' | 'total_bytes';

/**
 * Delivery of broker messages to one device at a time per device (§6.6): a FIFO per session, one
 * QoS 1/2 exchange in flight, a REGISTER before a topic the device has no id for in this connection,
 * retransmission with DUP after T_retry, the client lost after N_retry. The durable copy of a QoS 1/2
 * message is deleted only when the device has acknowledged it.
 */
export class Delivery {
  /** Bytes queued for all devices (stored record sizes), against `maxBytes`; kept in the stats. */
  private get totalBytes(): number {
    return this.ctx.stats.downlinkQueuedBytes;
  }
  private set totalBytes(bytes: number) {
    this.ctx.stats.downlinkQueuedBytes = bytes;
  }
  /** Messages dropped for the global byte cap since it last had room (one warning per episode). */
  private totalEpisode = 0;

  constructor(
    private readonly ctx: DeliveryHost,
    private readonly store: DownlinkQueueStore,
    private readonly wheel: TimerWheel,
    private readonly options: DeliveryOptions,
  ) {}

  /** Bytes queued for all devices now. */
  get queuedBytes(): number {
    return this.totalBytes;
  }

  /**
   * Queues a message (already stored if durable) and sends it if the device can receive now. Past a
   * bound (messages or bytes per device: `policy`; bytes for all devices: the new one) a message is
   * dropped, counted, and warned about once per episode.
   */
  enqueue(session: Session, message: DownlinkMessage): void {
    const size = sizeOf(message);
    const maxBytes = this.options.maxBytes ?? DEFAULT_DOWNLINK_MAX_BYTES;
    const perClient = this.options.maxBytesPerClient ?? DEFAULT_DOWNLINK_MAX_BYTES_PER_CLIENT;
    let madeRoom = false;
    for (;;) {
      const reason: DropReason | undefined =
        session.outgoing.length >= this.options.maxQueuedPerClient
          ? 'queue_full'
          : session.queuedBytes + size > perClient
            ? 'client_bytes'
            : undefined;
      if (!reason) break;
      const victim =
        this.options.policy === 'reject' || size > perClient ? undefined : this.oldestNotInFlight(session);
      if (!victim) {
        if (message.seq > 0) this.store.delete(session.clientId, message.seq);
        this.dropped(session, reason);
        return;
      }
      this.remove(session, victim);
      this.dropped(session, reason);
      madeRoom = true;
    }
    if (this.totalBytes + size > maxBytes) {
      // Never another device's messages: the newcomer is what does not fit.
      if (message.seq > 0) this.store.delete(session.clientId, message.seq);
      this.dropped(session, 'total_bytes');
      return;
    }
    // It fitted without dropping anything: an episode of drops (if any) is over.
    if (!madeRoom) this.endEpisodes(session);
    // A device that cannot receive now keeps only a reference: the payload waits on disk.
    const entry: QueuedDownlink =
      message.seq > 0 && !(session.state === 'active' || session.state === 'awake')
        ? { seq: message.seq, size }
        : message;
    session.outgoing.push(entry);
    session.queuedBytes += size;
    this.totalBytes += size;
    this.pump(session);
  }

  /** After a restart: the stored queue, as references (payloads are read when delivered). */
  restoreQueue(session: Session, refs: DownlinkRef[]): void {
    session.outgoing = refs;
    for (const ref of refs) session.queuedBytes += ref.size;
    this.totalBytes += session.queuedBytes;
  }

  /** Sends what can be sent: nothing while asleep; at most one exchange in flight. */
  pump(session: Session): void {
    while (!session.inflight && (session.state === 'active' || session.state === 'awake')) {
      const entry = session.outgoing[0];
      if (!entry) {
        this.endEpisodes(session);
        if (session.state === 'awake') {
          // All buffered messages delivered: PINGRESP lets the device sleep again (§6.14).
          this.ctx.drained(session);
        }
        return;
      }
      if (!isLoaded(entry)) {
        this.load(session, entry);
        return;
      }
      this.start(session, entry);
    }
  }

  /** Reads the head's payload from disk, then goes on delivering (other devices are not held up). */
  private load(session: Session, ref: DownlinkRef): void {
    if (session.loadingHead) return;
    session.loadingHead = true;
    this.store.read(session.clientId, ref).then(
      (message) => {
        session.loadingHead = false;
        if (session.outgoing[0] !== ref) return; // dropped or discarded meanwhile
        if (message) session.outgoing[0] = message;
        else {
          // The record is gone (it cannot be delivered): forget the reference, count it.
          this.remove(session, ref);
          this.ctx.stats.downlinkDropped++;
          this.ctx.warn.warn(
            'downlink-missing',
            { clientId: session.clientId, seq: ref.seq },
            'queued downlink message missing on disk: skipped',
          );
        }
        this.pump(session);
      },
      (err: unknown) => {
        // Left queued: the next wake-up or message tries again.
        session.loadingHead = false;
        this.ctx.warn.warn(
          'downlink-read',
          { clientId: session.clientId, seq: ref.seq, err },
          'reading a queued downlink message failed; will retry',
        );
      },
    );
  }

  /** Takes an entry out of the queue (and its bytes out of the counts); the stored copy goes too. */
  private remove(session: Session, entry: QueuedDownlink): void {
    const at = session.outgoing[0] === entry ? 0 : session.outgoing.indexOf(entry);
    if (at < 0) return;
    session.outgoing.splice(at, 1);
    const size = sizeOf(entry);
    session.queuedBytes -= size;
    this.totalBytes -= size;
    if (entry.seq > 0) this.store.delete(session.clientId, entry.seq);
  }

  /** Counts a message dropped for room; the first of an episode is warned about. */
  private dropped(session: Session, reason: DropReason): void {
    this.ctx.stats.downlinkDropped++;
    this.ctx.stats.downlinkDroppedFor[reason]++;
    const global = reason === 'total_bytes';
    if ((global ? this.totalEpisode++ : session.dropEpisode++) > 0) return;
    this.ctx.warn.warn(
      global ? 'downlink-full|total' : `downlink-full|${session.clientId}`,
      {
        clientId: session.clientId,
        address: describePeer(session.peer),
        reason,
        maxQueuedPerClient: this.options.maxQueuedPerClient,
        maxBytesPerClient: this.options.maxBytesPerClient ?? DEFAULT_DOWNLINK_MAX_BYTES_PER_CLIENT,
        maxBytes: this.options.maxBytes ?? DEFAULT_DOWNLINK_MAX_BYTES,
        policy: this.options.policy,
      },
      global
        ? 'downlink queues full (all devices): new messages dropped until there is room'
        : 'downlink queue full: messages dropped until there is room',
    );
  }

  /** The queue has room again: one line saying how many were dropped in the episode. */
  private endEpisodes(session: Session): void {
    if (session.dropEpisode > 0) {
      session.log.warn(
        { dropped: session.dropEpisode },
        'downlink queue has room again; messages were dropped',
      );
      session.dropEpisode = 0;
    }
    if (this.totalEpisode > 0 && this.totalBytes < (this.options.maxBytes ?? DEFAULT_DOWNLINK_MAX_BYTES)) {
      this.ctx.log.warn(
        { dropped: this.totalEpisode },
        'downlink queues have room again; messages were dropped',
      );
      this.totalEpisode = 0;
    }
  }

  /**
   * Why `message` cannot be sent to this device (too large for a datagram or for the device's limit),
   * or null. Checked before storing, and again before sending: copies stored by an older version, or
   * a device that moved behind a forwarder, must not throw out of a delivery and wedge its queue.
   */
  unrepresentable(
    session: Session,
    message: Pick<DownlinkMessage, 'topic' | 'topicIdType' | 'payload'>,
  ): string | null {
    return downlinkProblem(message, this.deviceTopicName(session, message.topic), {
      maxPacketSize: this.options.maxPacketSize ?? 0xffff,
      wirelessNodeIdLength: session.peer.wirelessNodeId?.length ?? 0,
      // A restored session has no address yet: IPv4's smaller limit is the safe guess.
      ipv6: isIPv6(session.peer.address),
    });
  }

  /** Counts and logs a message dropped because the device cannot be sent it. */
  dropUnrepresentable(session: Session, topic: string, problem: string): void {
    this.ctx.stats.downlinkDropped++;
    this.ctx.stats.downlinkUnrepresentable++;
    this.ctx.warn.warn(
      'downlink-unrepresentable',
      { clientId: session.clientId, topic: topic.slice(0, 200), problem },
      'broker message cannot be sent to the device: dropped',
    );
  }

  private start(session: Session, message: DownlinkMessage): void {
    const problem = this.unrepresentable(session, message);
    if (problem) {
      this.dropUnrepresentable(session, message.topic, problem);
      this.finish(session, message);
      return;
    }
    let topicId = message.topicId;
    if (message.topicIdType === 'normal') {
      const name = this.deviceTopicName(session, message.topic);
      const known = session.topics.idOf(name);
      if (known === undefined || !session.knownTopicIds.has(known)) {
        const id = known ?? session.topics.register(name);
        if (id === undefined) {
          this.ctx.warn.warn(
            'downlink-topics-full',
            { clientId: session.clientId, topic: message.topic },
            'no topic id left for a downlink message: dropped',
          );
          this.finish(session, message);
          return;
        }
        this.begin(session, {
          message,
          phase: 'register',
          msgId: session.nextMsgId(),
          topicId: id,
          attempts: 0,
        });
        this.ctx.send(session.peer, {
          type: 'REGISTER',
          topicId: id,
          msgId: session.inflight!.msgId,
          topicName: name,
        });
        return;
      }
      topicId = known;
    }
    this.sendPublish(session, message, topicId, false);
  }

  private sendPublish(session: Session, message: DownlinkMessage, topicId: number, dup: boolean): void {
    const msgId =
      message.qos === 0
        ? 0
        : session.inflight?.phase === 'publish'
          ? session.inflight.msgId
          : session.nextMsgId();
    this.ctx.send(session.peer, {
      type: 'PUBLISH',
      dup,
      qos: message.qos,
      retain: message.retain,
      topicIdType: message.topicIdType,
      topicId,
      msgId,
      data: message.payload,
    });
    session.messagesOut++;
    if (message.qos === 0) {
      this.ctx.stats.downlinkDelivered++;
      this.finish(session, message);
    } else if (!dup) {
      this.begin(session, { message, phase: 'publish', msgId, topicId, attempts: 0 });
    }
  }

  /** The device topic name of a broker topic: relative to its namespace, else the absolute topic. */
  private deviceTopicName(session: Session, topic: string): string {
    return session.prefix && topic.startsWith(session.prefix) ? topic.slice(session.prefix.length) : topic;
  }

  private begin(session: Session, inflight: NonNullable<Session['inflight']>): void {
    session.inflight = inflight;
    session.retry.deadline = this.ctx.clock.now() + this.options.retryMs;
    this.wheel.schedule(session.retry);
  }

  /** The head message is done (delivered, refused or dropped): forget it and move on. */
  private finish(session: Session, message: DownlinkMessage): void {
    this.remove(session, message);
    if (session.inflight?.message === message) {
      session.inflight = undefined;
      this.wheel.cancel(session.retry);
    }
  }

  onRegack(session: Session, packet: TopicAckPacket): boolean {
    const inflight = session.inflight;
    if (inflight?.phase !== 'register' || inflight.msgId !== packet.msgId) return false;
    const { message } = inflight;
    session.inflight = undefined;
    this.wheel.cancel(session.retry);
    if (packet.returnCode === ReturnCode.ACCEPTED) {
      session.knownTopicIds.add(inflight.topicId);
      this.sendPublish(session, message, inflight.topicId, false);
    } else {
      session.topics.forget(this.deviceTopicName(session, message.topic));
      this.ctx.warn.warn(
        'downlink-register-refused',
        { clientId: session.clientId, topic: message.topic, returnCode: packet.returnCode },
        'device refused REGISTER: message dropped',
      );
      this.ctx.stats.downlinkDropped++;
      this.finish(session, message);
    }
    this.pump(session);
    return true;
  }

  onPuback(session: Session, packet: TopicAckPacket): boolean {
    const inflight = session.inflight;
    if (inflight?.phase !== 'publish' || inflight.msgId !== packet.msgId) return false;
    const { message } = inflight;
    if (packet.returnCode === ReturnCode.INVALID_TOPIC_ID && message.topicIdType === 'normal') {
      // The device has forgotten the id (rebooted, new connection): register again, then resend.
      session.knownTopicIds.delete(inflight.topicId);
      session.inflight = undefined;
      this.wheel.cancel(session.retry);
      this.start(session, message);
      return true;
    }
    if (packet.returnCode === ReturnCode.ACCEPTED) this.ctx.stats.downlinkDelivered++;
    else {
      this.ctx.stats.downlinkDropped++;
      this.ctx.warn.warn(
        'downlink-publish-refused',
        { clientId: session.clientId, topic: message.topic, returnCode: packet.returnCode },
        'device refused a downlink PUBLISH: dropped',
      );
    }
    this.finish(session, message);
    this.pump(session);
    return true;
  }

  onPubrec(session: Session, packet: MsgIdPacket): boolean {
    const inflight = session.inflight;
    if (
      !inflight ||
      inflight.msgId !== packet.msgId ||
      (inflight.phase !== 'publish' && inflight.phase !== 'pubrel')
    )
      return false;
    inflight.phase = 'pubrel';
    inflight.attempts = 0;
    session.retry.deadline = this.ctx.clock.now() + this.options.retryMs;
    this.wheel.schedule(session.retry);
    this.ctx.send(session.peer, { type: 'PUBREL', msgId: packet.msgId });
    return true;
  }

  onPubcomp(session: Session, packet: MsgIdPacket): boolean {
    const inflight = session.inflight;
    if (inflight?.phase !== 'pubrel' || inflight.msgId !== packet.msgId) return false;
    this.ctx.stats.downlinkDelivered++;
    this.finish(session, inflight.message);
    this.pump(session);
    return true;
  }

  /** T_retry passed without an answer: resend with DUP, or give the client up after N_retry. */
  onRetryDue(session: Session): void {
    const inflight = session.inflight;
    if (!inflight || !(session.state === 'active' || session.state === 'awake')) return;
    if (inflight.attempts >= this.options.maxRetries) {
      session.inflight = undefined;
      this.ctx.lose(
        session,
        `no answer to ${inflight.phase.toUpperCase()} after ${this.options.maxRetries} retries`,
      );
      return;
    }
    inflight.attempts++;
    this.ctx.stats.downlinkRetransmissions++;
    session.retry.deadline = this.ctx.clock.now() + this.options.retryMs;
    this.wheel.schedule(session.retry);
    if (inflight.phase === 'register') {
      this.ctx.send(session.peer, {
        type: 'REGISTER',
        topicId: inflight.topicId,
        msgId: inflight.msgId,
        topicName: this.deviceTopicName(session, inflight.message.topic),
      });
    } else if (inflight.phase === 'pubrel') {
      this.ctx.send(session.peer, { type: 'PUBREL', msgId: inflight.msgId });
    } else {
      this.sendPublish(session, inflight.message, inflight.topicId, true);
    }
  }

  /** A new connection: ids must be confirmed again, and an unanswered exchange starts over. */
  onConnect(session: Session): void {
    session.knownTopicIds.clear();
    this.suspend(session);
  }

  /** The device stopped listening (asleep, gone): the message in flight is resent from scratch later. */
  suspend(session: Session): void {
    if (session.inflight) {
      session.inflight = undefined;
      this.wheel.cancel(session.retry);
    }
    // Stored payloads wait on disk while the device cannot receive.
    for (const [i, entry] of session.outgoing.entries())
      if (entry.seq > 0 && isLoaded(entry)) session.outgoing[i] = { seq: entry.seq, size: sizeOf(entry) };
  }

  /**
   * CleanSession=1 or a forgotten session: its queued messages go (and their durable copies). Never
   * silent: counted by reason and logged at warn with the count.
   */
  discard(session: Session, reason: DiscardReason): void {
    const messages = session.outgoing.length;
    if (messages > 0) {
      this.ctx.stats.downlinkDiscarded[reason] += messages;
      this.ctx.warn.warn(
        `downlink-discarded|${reason}`,
        { clientId: session.clientId, address: describePeer(session.peer), messages, reason },
        'queued downlink messages discarded with the session',
      );
    }
    this.store.deleteAll(session.clientId, session.outgoing);
    session.outgoing = [];
    this.totalBytes -= session.queuedBytes;
    session.queuedBytes = 0;
    session.dropEpisode = 0;
    session.inflight = undefined;
    this.wheel.cancel(session.retry);
  }

  private oldestNotInFlight(session: Session): QueuedDownlink | undefined {
    return session.outgoing.find((m) => m !== session.inflight?.message);
  }
}
