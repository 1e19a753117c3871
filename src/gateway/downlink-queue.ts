import type { Logger } from 'pino';
import type { RateLimitedWarn } from '../log/rate-limit.js';
import { sizeOf, type DownlinkMessage, type DownlinkRef, type QueuedDownlink } from '../store/ports.js';
import type { DownlinkQueueStore } from '../store/ports.js';
import type { DeliveryOptions } from './options.js';
import { describePeer } from './peer.js';
import { unrepresentable } from './representable.js';
import type { Session } from './session.js';
import type { DiscardReason, GatewayStats } from './stats.js';

export const DEFAULT_DOWNLINK_MAX_BYTES_PER_CLIENT = 1024 * 1024;
export const DEFAULT_DOWNLINK_MAX_BYTES = 256 * 1024 * 1024;

/** Why a queued downlink message was dropped for room (see GatewayStats.downlinkDroppedFor). */
type DropReason = 'queue_full' | 'client_bytes' | 'total_bytes';

/**
 * The devices' downlink queues and their bounds: messages and bytes per device (past them `policy`
 * decides), bytes for all devices (past it the newcomer is dropped). Every drop is counted and
 * warned about once per episode; the stored copy of what leaves a queue is deleted with it.
 */
export class DownlinkQueues {
  /** Messages dropped for the global byte cap since it last had room (one warning per episode). */
  private totalEpisode = 0;

  constructor(
    private readonly store: DownlinkQueueStore,
    private readonly options: DeliveryOptions,
    private readonly stats: GatewayStats,
    private readonly warn: RateLimitedWarn,
    private readonly log: Logger,
  ) {}

  /** Bytes queued for all devices (stored record sizes), against `maxBytes`; kept in the stats. */
  get queuedBytes(): number {
    return this.stats.downlinkQueuedBytes;
  }

  private set totalBytes(bytes: number) {
    this.stats.downlinkQueuedBytes = bytes;
  }

  private get totalBytes(): number {
    return this.stats.downlinkQueuedBytes;
  }

  /** Appends a message (already stored if durable) within the bounds; returns whether it was queued. */
  admit(session: Session, message: DownlinkMessage): boolean {
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
        return false;
      }
      this.remove(session, victim);
      this.dropped(session, reason);
      madeRoom = true;
    }
    if (this.totalBytes + size > maxBytes) {
      // Never another device's messages: the newcomer is what does not fit.
      if (message.seq > 0) this.store.delete(session.clientId, message.seq);
      this.dropped(session, 'total_bytes');
      return false;
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
    return true;
  }

  /** After a restart: the stored queue, as references (payloads are read when delivered). */
  restore(session: Session, refs: DownlinkRef[]): void {
    session.outgoing = refs;
    for (const ref of refs) session.queuedBytes += ref.size;
    this.totalBytes += session.queuedBytes;
  }

  /** Reads the head's payload from disk, then `then` goes on delivering (other devices are not held up). */
  loadHead(session: Session, ref: DownlinkRef, then: (session: Session) => void): void {
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
          this.stats.downlinkDropped++;
          this.warn.warn(
            'downlink-missing',
            { clientId: session.clientId, seq: ref.seq },
            'queued downlink message missing on disk: skipped',
          );
        }
        then(session);
      },
      (err: unknown) => {
        // Left queued: the next wake-up or message tries again.
        session.loadingHead = false;
        this.warn.warn(
          'downlink-read',
          { clientId: session.clientId, seq: ref.seq, err },
          'reading a queued downlink message failed; will retry',
        );
      },
    );
  }

  /**
   * Drops (counted, logged) a message this device cannot be sent (see representable.ts): checked
   * before storing, and again before sending. Returns whether it was dropped.
   */
  refuseUnrepresentable(
    session: Session,
    message: Pick<DownlinkMessage, 'topic' | 'topicIdType' | 'payload'>,
  ): boolean {
    const problem = unrepresentable(session, message, this.options.maxPacketSize);
    if (!problem) return false;
    this.stats.downlinkDropped++;
    this.stats.downlinkUnrepresentable++;
    this.warn.warn(
      'downlink-unrepresentable',
      { clientId: session.clientId, topic: message.topic.slice(0, 200), problem },
      'broker message cannot be sent to the device: dropped',
    );
    return true;
  }

  /** Takes an entry out of the queue (and its bytes out of the counts); the stored copy goes too. */
  remove(session: Session, entry: QueuedDownlink): void {
    const at = session.outgoing[0] === entry ? 0 : session.outgoing.indexOf(entry);
    if (at < 0) return;
    session.outgoing.splice(at, 1);
    const size = sizeOf(entry);
    session.queuedBytes -= size;
    this.totalBytes -= size;
    if (entry.seq > 0) this.store.delete(session.clientId, entry.seq);
  }

  /** The queue has room again: one line saying how many were dropped in the episode. */
  endEpisodes(session: Session): void {
    if (session.dropEpisode > 0) {
      session.log.warn(
        { dropped: session.dropEpisode },
        'downlink queue has room again; messages were dropped',
      );
      session.dropEpisode = 0;
    }
    if (this.totalEpisode > 0 && this.totalBytes < (this.options.maxBytes ?? DEFAULT_DOWNLINK_MAX_BYTES)) {
      this.log.warn({ dropped: this.totalEpisode }, 'downlink queues have room again; messages were dropped');
      this.totalEpisode = 0;
    }
  }

  /**
   * CleanSession=1 or a forgotten session: its queued messages go (and their durable copies). Never
   * silent: counted by reason and logged at warn with the count.
   */
  discard(session: Session, reason: DiscardReason): void {
    const messages = session.outgoing.length;
    if (messages > 0) {
      this.stats.downlinkDiscarded[reason] += messages;
      this.warn.warn(
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
  }

  /** Counts a message dropped for room; the first of an episode is warned about. */
  private dropped(session: Session, reason: DropReason): void {
    this.stats.downlinkDropped++;
    this.stats.downlinkDroppedFor[reason]++;
    const global = reason === 'total_bytes';
    if ((global ? this.totalEpisode++ : session.dropEpisode++) > 0) return;
    this.warn.warn(
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

  private oldestNotInFlight(session: Session): QueuedDownlink | undefined {
    return session.outgoing.find((m) => m !== session.inflight?.message);
  }
}
