import type { Logger } from 'pino';
import type { SessionRegistry } from './context.js';
import { describePeer, type Peer } from './peer.js';
import { Session } from './session.js';
import type { DiscardReason } from './stats.js';
import type { TimerWheel } from './wheel.js';

/** Sessions keyed by client id, reachable by address: one place that keeps both maps in step. */
export class Sessions implements SessionRegistry {
  private readonly byId = new Map<string, Session>();
  private readonly byAddress = new Map<string, Session>();

  constructor(
    private readonly log: Logger,
    private readonly wheel: TimerWheel,
    private readonly prefixFor: (clientId: string) => string,
    private maxTopics: number,
    private readonly onSupervisionExpired: (session: Session, now: number) => void,
    private readonly onRetryDue: (session: Session, now: number) => void,
    /** Cleans up what hangs off a session (subscriptions, queued messages, its stored snapshot). */
    private readonly onRemoved: (session: Session, reason: DiscardReason) => void,
  ) {}

  /** Topic table size for sessions created from now on. */
  setMaxTopics(maxTopics: number): void {
    this.maxTopics = maxTopics;
  }

  get size(): number {
    return this.byId.size;
  }

  byClientId(clientId: string): Session | undefined {
    return this.byId.get(clientId);
  }

  byPeer(key: string): Session | undefined {
    return this.byAddress.get(key);
  }

  create(clientId: string, peer: Peer): Session {
    const log = this.log.child({ clientId, address: describePeer(peer) });
    const session = new Session(
      clientId,
      peer,
      this.prefixFor(clientId),
      this.maxTopics,
      log,
      this.onSupervisionExpired,
      this.onRetryDue,
    );
    this.byId.set(clientId, session);
    this.byAddress.set(peer.key, session);
    return session;
  }

  rebind(session: Session, peer: Peer): void {
    if (this.byAddress.get(session.peer.key) === session) this.byAddress.delete(session.peer.key);
    const previous = this.byAddress.get(peer.key);
    if (previous && previous !== session) this.byAddress.delete(peer.key);
    session.peer = peer;
    session.log = this.log.child({ clientId: session.clientId, address: describePeer(peer) });
    this.byAddress.set(peer.key, session);
  }

  unbind(session: Session): void {
    if (this.byAddress.get(session.peer.key) === session) this.byAddress.delete(session.peer.key);
  }

  remove(session: Session, reason: DiscardReason = 'clean_session'): void {
    this.unbind(session);
    this.wheel.cancel(session.supervision);
    this.wheel.cancel(session.retry);
    if (this.byId.get(session.clientId) === session) this.byId.delete(session.clientId);
    this.onRemoved(session, reason);
  }

  all(): IterableIterator<Session> {
    return this.byId.values();
  }
}
