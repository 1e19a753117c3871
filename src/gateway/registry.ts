import type { Logger } from 'pino';
import type { SessionRegistry } from './options.js';
import { describePeer, peerKey, type Peer } from './peer.js';
import { Session } from './session.js';
import type { DiscardReason } from './stats.js';
import type { TimerWheel } from './wheel.js';

/** Sessions keyed by client id, reachable by address: one place that keeps both maps in step. */
export class Sessions implements SessionRegistry {
  private readonly byId = new Map<string, Session>();
  private readonly byAddress = new Map<string, Session>();
  /**
   * A session bound at each port, of those reached directly (no forwarder): finds a datagram's sender
   * without building its key string per datagram. Only ever a session byAddress holds at its key;
   * another session at the same port (another IP) is found through its key.
   */
  private readonly byPort = new Map<number, Session>();
  /** Sessions by the IP address they last spoke from (bound or not), for the per-address bound. */
  private readonly byIp = new Map<string, Set<Session>>();
  /**
   * Disconnected or lost sessions whose client never did anything but CONNECT, oldest first (a Set
   * keeps insertion order): what a full table evicts to make room for a new device.
   */
  private readonly idleDetached = new Set<Session>();

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

  /** byPeer(peerKey(address, port)): the session bound at a direct sender's address. */
  atAddress(address: string, port: number): Session | undefined {
    const session = this.byPort.get(port);
    if (session !== undefined && session.peer.address === address) return session;
    return this.byAddress.get(peerKey(address, port));
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
    this.bindAt(session);
    this.trackIp(session, peer.address);
    return session;
  }

  /** Sessions that last spoke from this IP address (bound or not). */
  countAt(ip: string): number {
    return this.byIp.get(ip)?.size ?? 0;
  }

  /** Keeps the eviction order in step with the session's state and idleness (call after changes). */
  noteState(session: Session): void {
    this.idleDetached.delete(session);
    if (session.idle && (session.state === 'disconnected' || session.state === 'lost'))
      this.idleDetached.add(session);
  }

  /** The oldest disconnected or lost session that never did anything (at this IP, if given). */
  oldestIdleDetached(ip?: string): Session | undefined {
    for (const session of this.idleDetached)
      if (ip === undefined || session.peer.address === ip) return session;
    return undefined;
  }

  rebind(session: Session, peer: Peer): void {
    this.unbind(session);
    const previous = this.byAddress.get(peer.key);
    if (previous && previous !== session) this.unbind(previous);
    this.untrackIp(session);
    session.peer = peer;
    this.trackIp(session, peer.address);
    session.log = this.log.child({ clientId: session.clientId, address: describePeer(peer) });
    this.bindAt(session);
  }

  unbind(session: Session): void {
    if (this.byAddress.get(session.peer.key) !== session) return;
    this.byAddress.delete(session.peer.key);
    if (this.byPort.get(session.peer.port) === session) this.byPort.delete(session.peer.port);
  }

  /** Binds the session at its peer's address (in both indexes). */
  private bindAt(session: Session): void {
    const peer = session.peer;
    this.byAddress.set(peer.key, session);
    if (peer.wirelessNodeId === undefined) this.byPort.set(peer.port, session);
  }

  remove(session: Session, reason: DiscardReason = 'clean_session'): void {
    this.unbind(session);
    this.wheel.cancel(session.supervision);
    this.wheel.cancel(session.retry);
    if (this.byId.get(session.clientId) === session) this.byId.delete(session.clientId);
    this.untrackIp(session);
    this.idleDetached.delete(session);
    this.onRemoved(session, reason);
  }

  private trackIp(session: Session, ip: string): void {
    if (ip === '') return; // restored without a known address
    let sessions = this.byIp.get(ip);
    if (!sessions) this.byIp.set(ip, (sessions = new Set()));
    sessions.add(session);
  }

  private untrackIp(session: Session): void {
    const sessions = this.byIp.get(session.peer.address);
    if (sessions?.delete(session) && sessions.size === 0) this.byIp.delete(session.peer.address);
  }

  all(): IterableIterator<Session> {
    return this.byId.values();
  }
}
