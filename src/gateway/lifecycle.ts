import { ReturnCode } from '../codec/constants.js';
import type { RateLimitedWarn } from '../log/rate-limit.js';
import type { Clock } from './clock.js';
import { DEFAULT_IDLE_SESSION_EXPIRY_MS, type GatewayOptions, type MessageSink } from './options.js';
import { describePeer, type Send } from './peer.js';
import type { Sessions } from './registry.js';
import { Session, type SessionState, type Will } from './session.js';
import type { GatewayStats } from './stats.js';
import type { TimerWheel } from './wheel.js';

/** How long a client may take over the CONNECT will flow before it is dropped. */
const WILL_FLOW_TIMEOUT_MS = 60_000;

/** What the lifecycle asks of the downlink side when a session's state changes. */
export interface LifecycleDelivery {
  /** A new connection: topic ids are confirmed again, an unanswered exchange starts over. */
  onConnect(session: Session): void;
  /** The device stopped listening: nothing in flight, payloads back to disk. */
  suspend(session: Session): void;
  /** Sends what can be sent now. */
  pump(session: Session): void;
}

/** What the lifecycle asks of the rest when a session ends for good. */
export interface LifecycleParts {
  delivery: LifecycleDelivery;
  /** Saves (CleanSession=0) or forgets (CleanSession=1) the session's durable snapshot. */
  persist(session: Session): void;
  /** CleanSession=1 on a new connection: the subscriptions and the queued messages go. */
  cleanSlate(session: Session): void;
}

/**
 * The session state machine (§6.14, the table in the spec's "Sleeping clients"), in one place:
 *
 *   (new) ─CONNECT──▶ connecting ─(will flow done)─▶ active ─DISCONNECT(d)─▶ asleep ─PINGREQ─▶ awake
 *   active/awake ─keep-alive expiry─▶ lost      asleep ─sleep expiry─▶ lost     awake ─drained─▶ asleep
 *   any ─DISCONNECT─▶ disconnected     disconnected/lost ─expiry─▶ (removed)   asleep/awake ─CONNECT─▶ active
 *
 * Each state sets the session's one supervision deadline; handlers ask for transitions, never set
 * `state` themselves.
 */
export class Lifecycle {
  constructor(
    private readonly settings: { readonly current: GatewayOptions },
    private readonly clock: Clock,
    private readonly wheel: TimerWheel,
    private readonly stats: GatewayStats,
    private readonly warn: RateLimitedWarn,
    private readonly send: Send,
    private readonly sessions: Sessions,
    /** Where a lost client's will goes (the outbox). */
    private readonly sink: MessageSink,
    private readonly parts: LifecycleParts,
    private readonly onStateChange?: (session: Session, previous: SessionState) => void,
  ) {}

  /**
   * CONNECT from a client whose session is bound to `session.peer`: a wake-up for a sleeper (its
   * CleanSession flag is ignored, paho#122), else a new connection. With a will, the will flow starts.
   */
  connect(session: Session, packet: { cleanSession: boolean; duration: number; will: boolean }): void {
    const wakeUp = session.state === 'asleep' || session.state === 'awake';
    this.parts.delivery.onConnect(session);
    if (!wakeUp) {
      if (packet.cleanSession) {
        session.clear();
        this.parts.cleanSlate(session);
      }
      session.cleanSession = packet.cleanSession;
    } else if (packet.cleanSession !== session.cleanSession) {
      session.log.debug(
        { cleanSession: packet.cleanSession, kept: session.cleanSession },
        'wake-up CONNECT: CleanSession flag ignored',
      );
    }
    session.keepAliveMs = packet.duration * 1000;
    if (packet.will) {
      session.willFlow = 'topic';
      session.pendingWillTopic = undefined;
      this.setState(session, 'connecting');
      this.send(session.peer, { type: 'WILLTOPICREQ' });
      return;
    }
    this.connected(session);
  }

  /** The end of CONNECT, directly or after the will flow: active, CONNACK, and the waiting queue. */
  connected(session: Session, will?: Will | null): void {
    if (will !== undefined) session.will = will ?? undefined;
    session.willFlow = 'none';
    session.pendingWillTopic = undefined;
    this.setState(session, 'active');
    this.stats.connects++;
    // Debug, not info: one line per CONNECT is a log flood a device can cause at will.
    session.log.debug(
      { keepAlive: session.keepAliveMs / 1000, cleanSession: session.cleanSession, will: !!session.will },
      'client connected',
    );
    this.parts.persist(session);
    this.send(session.peer, { type: 'CONNACK', returnCode: ReturnCode.ACCEPTED });
    // Whatever waited while it was away or asleep goes now (paho#122).
    this.parts.delivery.pump(session);
  }

  /** The will flow failed (an invalid will topic): the CONNECT is refused and the session ends. */
  refuseConnect(session: Session): void {
    session.willFlow = 'none';
    session.pendingWillTopic = undefined;
    this.setState(session, 'disconnected');
    this.sessions.unbind(session);
    if (session.cleanSession) this.sessions.remove(session);
  }

  /** DISCONNECT(duration): asleep, buffered for, supervised by the sleep duration. */
  sleep(session: Session, durationMs: number): void {
    session.sleepMs = durationMs;
    this.setState(session, 'asleep');
    this.parts.persist(session);
    session.log.debug({ duration: durationMs / 1000 }, 'client asleep');
  }

  /** PINGREQ from a sleeper: awake until its buffer is delivered (then `drained`). */
  wake(session: Session): void {
    if (session.state === 'asleep') this.setState(session, 'awake');
    this.parts.delivery.pump(session);
  }

  /** An awake device has everything: PINGRESP lets it sleep again for the same duration (§6.14). */
  drained(session: Session): void {
    this.send(session.peer, { type: 'PINGRESP' });
    this.setState(session, 'asleep');
  }

  /** A clean DISCONNECT: no will; a CleanSession=1 session is forgotten, a kept one persisted. */
  disconnect(session: Session): void {
    this.end(session);
    session.log.debug('client disconnected');
  }

  /** The client is gone without a clean DISCONNECT: its will is published, its address forgotten. */
  lose(session: Session, reason: string): void {
    this.stats.sessionsLost++;
    this.warn.warn(
      'client-lost',
      { clientId: session.clientId, address: describePeer(session.peer), reason, will: !!session.will },
      'client lost',
    );
    this.setState(session, 'lost');
    this.sessions.unbind(session);
    this.publishWill(session);
    if (session.cleanSession) this.sessions.remove(session, 'lost');
    else this.parts.persist(session);
  }

  /** The supervision deadline passed: a live client is lost, a detached kept session forgotten. */
  expired(session: Session): void {
    if (session.state === 'disconnected' || session.state === 'lost') {
      session.log.info({ queued: session.outgoing.length }, 'persistent session expired: forgotten');
      this.stats.sessionsExpired++;
      this.sessions.remove(session, 'expired');
      return;
    }
    this.lose(
      session,
      session.state === 'asleep' ? 'did not wake within its sleep duration' : 'keep-alive expired',
    );
  }

  /**
   * An operator ends a session: DISCONNECT to the device (if it is reachable), the will published
   * or not, then as a clean DISCONNECT (a CleanSession=0 session stays, detached, with its queue).
   * The will is used up either way, as a clean disconnect discards it. True: a will was queued.
   */
  kick(session: Session, { publishWill }: { publishWill: boolean }): boolean {
    if (this.sessions.byPeer(session.peer.key) === session) this.send(session.peer, { type: 'DISCONNECT' });
    const published = publishWill && this.publishWill(session);
    session.will = undefined;
    this.end(session);
    return published;
  }

  /** Forgets a session entirely: its record, its downlink queue, its broker subscriptions. */
  forget(clientId: string): boolean {
    const session = this.sessions.byClientId(clientId);
    if (!session) return false;
    if (this.sessions.byPeer(session.peer.key) === session) this.send(session.peer, { type: 'DISCONNECT' });
    this.sessions.remove(session, 'forgotten');
    return true;
  }

  /** The client did something real: its session gets the normal expiry and is not evicted for room. */
  markUsed(session: Session): void {
    session.idle = false;
    this.sessions.noteState(session);
    if (!session.cleanSession) this.parts.persist(session);
  }

  /** After a restart: a kept session waits detached (or asleep, with its sleep supervision). */
  restored(session: Session, asleep: boolean): void {
    this.setState(session, asleep ? 'asleep' : 'disconnected');
  }

  /** Any packet from a connected client proves it alive: move its deadline (no timer work). */
  heardFrom(session: Session): void {
    session.lastSeenWall = this.clock.wallNow();
    if ((session.state === 'active' || session.state === 'awake') && session.keepAliveMs > 0) {
      session.supervision.deadline = this.clock.now() + Session.graceMs(session.keepAliveMs);
    }
  }

  private end(session: Session): void {
    this.setState(session, 'disconnected');
    this.sessions.unbind(session);
    if (session.cleanSession) this.sessions.remove(session);
    else this.parts.persist(session);
  }

  /** True when the session had a will and it was queued for the broker. */
  private publishWill(session: Session): boolean {
    const will = session.will;
    if (!will) return false;
    // Published once, like MQTT: the will is used up.
    session.will = undefined;
    this.stats.willsPublished++;
    const { topic, payload, retain, qos } = will;
    const outcome = this.sink.append({ clientId: session.clientId, topic, payload, retain, qos });
    if (outcome !== 'queued')
      this.warn.warn('will-not-queued', { clientId: session.clientId, outcome }, 'will could not be queued');
    return outcome === 'queued';
  }

  private setState(session: Session, state: SessionState): void {
    const previous = session.state;
    session.state = state;
    if (previous !== state) this.onStateChange?.(session, previous);
    const entry = session.supervision;
    const now = this.clock.now();
    switch (state) {
      case 'active':
      case 'awake':
        entry.deadline = session.keepAliveMs > 0 ? now + Session.graceMs(session.keepAliveMs) : Infinity;
        break;
      case 'connecting':
        entry.deadline = now + Math.max(Session.graceMs(session.keepAliveMs), WILL_FLOW_TIMEOUT_MS);
        break;
      case 'asleep':
        entry.deadline = now + Session.graceMs(session.sleepMs);
        break;
      default: {
        // Disconnected or lost: a kept (CleanSession=0) session is forgotten after the expiry; one
        // whose client never did anything after the short idle expiry (CONNECT floods).
        const expiry = this.expiryOf(session);
        entry.deadline = !session.cleanSession && expiry > 0 ? now + expiry : Infinity;
      }
    }
    this.wheel.schedule(entry);
    this.sessions.noteState(session);
    if (state === 'asleep' || state === 'disconnected' || state === 'lost')
      this.parts.delivery.suspend(session);
  }

  /** How long a disconnected session is kept: shorter while its client never did anything. */
  private expiryOf(session: Session): number {
    const { sessionExpiryMs, idleSessionExpiryMs } = this.settings.current;
    if (!session.idle) return sessionExpiryMs;
    const idle = idleSessionExpiryMs ?? DEFAULT_IDLE_SESSION_EXPIRY_MS;
    if (idle === 0) return sessionExpiryMs;
    return sessionExpiryMs > 0 ? Math.min(idle, sessionExpiryMs) : idle;
  }
}
