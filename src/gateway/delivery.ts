import { ReturnCode } from '../codec/constants.js';
import type { MsgIdPacket, TopicAckPacket } from '../codec/types.js';
import type { DownlinkMessage, DownlinkStore } from '../store/downlink.js';
import type { GatewayContext } from './context.js';
import { describePeer } from './peer.js';
import type { Session } from './session.js';
import type { DiscardReason } from './stats.js';
import type { TimerWheel } from './wheel.js';

export interface DeliveryOptions {
  /** T_retry: how long to wait for the device's answer before resending (DUP set). */
  retryMs: number;
  /** N_retry: resends before the client is considered lost. */
  maxRetries: number;
  /** Most messages queued per device; beyond that `policy` applies. */
  maxQueuedPerClient: number;
  policy: 'drop-oldest' | 'reject';
}

/**
 * Delivery of broker messages to one device at a time per device (§6.6): a FIFO per session, one
 * QoS 1/2 exchange in flight, a REGISTER before a topic the device has no id for in this connection,
 * retransmission with DUP after T_retry, the client lost after N_retry. The durable copy of a QoS 1/2
 * message is deleted only when the device has acknowledged it.
 */
export class Delivery {
  constructor(
    private readonly ctx: GatewayContext,
    private readonly store: DownlinkStore,
    private readonly wheel: TimerWheel,
    private readonly options: DeliveryOptions,
  ) {}

  /** Queues a message (already stored if durable) and sends it if the device can receive now. */
  enqueue(session: Session, message: DownlinkMessage): void {
    if (session.outgoing.length >= this.options.maxQueuedPerClient) {
      const victim = this.options.policy === 'reject' ? message : this.oldestNotInFlight(session);
      if (victim) {
        this.ctx.stats.downlinkDropped++;
        if (victim !== message) session.outgoing.splice(session.outgoing.indexOf(victim), 1);
        if (victim.seq > 0) this.store.delete(session.clientId, victim.seq);
        this.ctx.warn.warn(
          `downlink-full|${session.clientId}`,
          { clientId: session.clientId, max: this.options.maxQueuedPerClient, policy: this.options.policy },
          'downlink queue full: message dropped',
        );
        if (victim === message) return;
      }
    }
    session.outgoing.push(message);
    this.pump(session);
  }

  /** Sends what can be sent: nothing while asleep; at most one exchange in flight. */
  pump(session: Session): void {
    while (!session.inflight && (session.state === 'active' || session.state === 'awake')) {
      const message = session.outgoing[0];
      if (!message) {
        if (session.state === 'awake') {
          // All buffered messages delivered: PINGRESP lets the device sleep again (§6.14).
          this.ctx.send(session.peer, { type: 'PINGRESP' });
          this.ctx.setState(session, 'asleep');
        }
        return;
      }
      this.start(session, message);
    }
  }

  private start(session: Session, message: DownlinkMessage): void {
    let topicId = message.topicId;
    if (message.topicIdType === 'normal') {
      const name = this.deviceTopicName(session, message.topic);
      const known = session.topics.idOf(name);
      if (known === undefined || !session.knownTopicIds.has(known)) {
        const id = known ?? session.topics.register(name);
        if (id === undefined) {
          this.ctx.warn.warn(
            `downlink-topics-full|${session.clientId}`,
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
    if (session.outgoing[0] === message) session.outgoing.shift();
    else session.outgoing.splice(session.outgoing.indexOf(message), 1);
    if (message.seq > 0) this.store.delete(session.clientId, message.seq);
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
      session.log.warn(
        { topic: message.topic, returnCode: packet.returnCode },
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
      session.log.warn(
        { topic: message.topic, returnCode: packet.returnCode },
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
    session.inflight = undefined;
    this.wheel.cancel(session.retry);
  }

  private oldestNotInFlight(session: Session): DownlinkMessage | undefined {
    return session.outgoing.find((m) => m !== session.inflight?.message);
  }
}
