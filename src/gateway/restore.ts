import type { Socket } from 'node:dgram';
import type { Logger } from 'pino';
import type { RateLimitedWarn } from '../log/rate-limit.js';
import type { DownlinkRef } from '../store/ports.js';
import type { DownlinkQueueStore, SessionRecordStore } from '../store/ports.js';
import type { SessionSnapshot } from '../store/ports.js';
import { brokerFilterProblem, brokerTopicProblem, clientIdProblem } from '../topics/names.js';
import type { BrokerSubscriptions } from './options.js';
import type { Peer } from './peer.js';
import type { SessionPersistence } from './persistence.js';
import type { Sessions } from './registry.js';
import type { Session } from './session.js';
import type { GatewayStats } from './stats.js';
import type { SubscriptionIndex } from './subscriptions.js';

export interface RestoreParts {
  sessionStore: SessionRecordStore;
  downlinkStore: DownlinkQueueStore;
  sessions: Sessions;
  subscriptions: SubscriptionIndex;
  persistence: SessionPersistence;
  broker: BrokerSubscriptions;
  /** Gives a restored session its stored queue (references; payloads stay on disk). */
  restoreQueue(session: Session, refs: DownlinkRef[]): void;
  /** Puts a restored session in its state (asleep or disconnected) with its supervision. */
  restored(session: Session, asleep: boolean): void;
  /** The socket a restored session is pinned to until its device speaks again. */
  socket: Socket;
  stats: GatewayStats;
  warn: RateLimitedWarn;
  log: Logger;
}

/**
 * After a restart: CleanSession=0 sessions come back with their subscriptions (re-subscribed at the
 * broker), will and queued downlink messages; sleepers keep their sleep supervision. What an older
 * version stored that the broker would refuse is dropped, counted and logged, never sent upstream.
 */
export async function restoreSessions(parts: RestoreParts): Promise<void> {
  const [snapshots, queued] = await Promise.all([
    parts.sessionStore.loadAll(),
    parts.downlinkStore.loadAll(),
  ]);
  let messages = 0;
  for (const snapshot of snapshots) {
    // Written by an older version that let a client id the broker refuses through: forget it.
    const problem = clientIdProblem(snapshot.clientId, 0xffff);
    if (problem) {
      dropRestored(parts, { clientId: snapshot.clientId, problem }, 'persisted session');
      parts.sessionStore.delete(snapshot.clientId);
      continue;
    }
    const session = restoreSession(parts, snapshot);
    parts.restoreQueue(session, queued.get(snapshot.clientId) ?? []);
    messages += session.outgoing.length;
    queued.delete(snapshot.clientId);
  }
  for (const [clientId, orphaned] of queued) parts.downlinkStore.deleteAll(clientId, orphaned);
  for (const filter of parts.subscriptions.filters()) parts.broker.subscribe(filter);
  if (snapshots.length > 0)
    parts.log.info({ sessions: snapshots.length, queuedMessages: messages }, 'persistent sessions restored');
}

function restoreSession(parts: RestoreParts, snapshot: SessionSnapshot): Session {
  const { clientId } = snapshot;
  // No address until the device speaks again; the placeholder is never sent to.
  const peer: Peer = {
    socket: parts.socket,
    // Where it last spoke from: only for the per-address bound, never sent to while unbound.
    address: snapshot.address ?? '',
    port: 0,
    key: `restored|${clientId}`,
  };
  const session = parts.sessions.create(clientId, peer);
  parts.sessions.unbind(session);
  session.cleanSession = false;
  session.idle = snapshot.idle === true;
  session.keepAliveMs = snapshot.keepAliveMs;
  session.sleepMs = snapshot.sleepMs;
  let dropped = false;
  // A refused filter would drop the uplink on every re-subscribe, a refused will topic on publish.
  if (snapshot.will) {
    const problem = brokerTopicProblem(snapshot.will.topic);
    if (problem) {
      dropRestored(parts, { clientId, problem }, 'persisted will');
      dropped = true;
    } else session.will = { ...snapshot.will, payload: Buffer.from(snapshot.will.payload, 'base64') };
  }
  for (const sub of snapshot.subscriptions ?? []) {
    const problem = brokerFilterProblem(sub.filter);
    if (problem) {
      dropRestored(parts, { clientId, problem }, 'persisted subscription');
      // Stored one key each: forget this one (the rest of the session is saved again below).
      parts.sessionStore.deleteSubscription(clientId, sub.filter);
      dropped = true;
      continue;
    }
    // Retained messages re-sent on re-subscribe were delivered before the restart.
    parts.subscriptions.add(session, { ...sub, retainedSeen: null });
  }
  // After the adds: they are on disk already and need no second write.
  session.persisted = true;
  parts.restored(session, snapshot.asleep);
  if (dropped) parts.persistence.persist(session);
  return session;
}

function dropRestored(parts: RestoreParts, context: Record<string, unknown>, what: string): void {
  parts.stats.restoreDropped++;
  parts.warn.warn(`restore-invalid|${what}`, context, `${what} invalid for the broker: dropped at restore`);
}
