import { ReturnCode } from '../codec/constants.js';
import type { MsgIdPacket, TopicAckPacket } from '../codec/types.js';
import { isLoaded, sizeOf, type DownlinkMessage } from '../store/ports.js';
import type { DownlinkQueueStore } from '../store/ports.js';
import type { Logger } from 'pino';
import type { RateLimitedWarn } from '../log/rate-limit.js';
import type { Clock } from './clock.js';
import type { DeliveryOptions } from './options.js';
import type { Send } from './peer.js';
import type { Session } from './session.js';
import type { DiscardReason, GatewayStats } from './stats.js';
import type { TimerWheel } from './wheel.js';
import { DownlinkQueues } from './downlink-queue.js';
import { deviceTopicName } from './representable.js';

export type { DeliveryOptions } from './options.js';

export { DEFAULT_DOWNLINK_MAX_BYTES, DEFAULT_DOWNLINK_MAX_BYTES_PER_CLIENT } from './downlink-queue.js';

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

/**
 * Delivery of broker messages to one device at a time per device (§6.6): a FIFO per session, one
 * QoS 1/2 exchange in flight, a REGISTER before a topic the device has no id for in this connection,
 * retransmission with DUP after T_retry, the client lost after N_retry. The durable copy of a QoS 1/2
 * message is deleted only when the device has acknowledged it.
 */
export class Delivery {
  /** The queues and their bounds (restore and routing use them too); this class is the exchanges. */
  readonly queues: DownlinkQueues;

  constructor(
    private readonly ctx: DeliveryHost,
    store: DownlinkQueueStore,
    private readonly wheel: TimerWheel,
    private readonly options: DeliveryOptions,
  ) {
    this.queues = new DownlinkQueues(store, options, ctx.stats, ctx.warn, ctx.log);
  }

  /** Queues a message (already stored if durable) within the bounds, and sends it if it can go now. */
  enqueue(session: Session, message: DownlinkMessage): void {
    if (this.queues.admit(session, message)) this.pump(session);
  }

  /** The session is gone or clean: its queue goes, with the exchange in flight. */
  discard(session: Session, reason: DiscardReason): void {
    this.queues.discard(session, reason);
    session.inflight = undefined;
    this.wheel.cancel(session.retry);
  }

  private readonly pumpAgain = (session: Session): void => this.pump(session);

  /** Sends what can be sent: nothing while asleep; at most one exchange in flight. */
  pump(session: Session): void {
    while (!session.inflight && (session.state === 'active' || session.state === 'awake')) {
      const entry = session.outgoing[0];
      if (!entry) {
        this.queues.endEpisodes(session);
        if (session.state === 'awake') {
          // All buffered messages delivered: PINGRESP lets the device sleep again (§6.14).
          this.ctx.drained(session);
        }
        return;
      }
      if (!isLoaded(entry)) {
        this.queues.loadHead(session, entry, this.pumpAgain);
        return;
      }
      this.start(session, entry);
    }
  }

  private start(session: Session, message: DownlinkMessage): void {
    if (this.queues.refuseUnrepresentable(session, message)) {
      this.finish(session, message);
      return;
    }
    let topicId = message.topicId;
    if (message.topicIdType === 'normal') {
      const name = deviceTopicName(session, message.topic);
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

  private begin(session: Session, inflight: NonNullable<Session['inflight']>): void {
    session.inflight = inflight;
    session.retry.deadline = this.ctx.clock.now() + this.options.retryMs;
    this.wheel.schedule(session.retry);
  }

  /** The head message is done (delivered, refused or dropped): forget it and move on. */
  private finish(session: Session, message: DownlinkMessage): void {
    this.queues.remove(session, message);
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
      session.topics.forget(deviceTopicName(session, message.topic));
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
        topicName: deviceTopicName(session, inflight.message.topic),
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
}
