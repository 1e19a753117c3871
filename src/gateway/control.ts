import { describePeer } from './peer.js';
import type { Session, SessionState } from './session.js';
import type { PacketTrace, TracedPacket, TraceOutcome } from './trace.js';

/** One device as the admin API lists it. */
export interface DeviceSummary {
  clientId: string;
  state: SessionState;
  /** host:port (host:port/node behind a forwarder); '' while no address is known (restored, not back yet). */
  address: string;
  cleanSession: boolean;
  subscriptions: number;
  queuedMessages: number;
  queuedBytes: number;
  /** Wall-clock ms of its last datagram; 0 when not heard from since the gateway started. */
  lastSeen: number;
  traced: boolean;
}

export interface DeviceDetail extends DeviceSummary {
  keepAliveSeconds: number;
  sleepSeconds: number;
  hasWill: boolean;
  subscriptionList: Array<{ filter: string; qos: number }>;
}

export type KickResult =
  | { outcome: 'kicked'; willPublished: boolean }
  | { outcome: 'unknown' }
  | { outcome: 'not-connected'; state: SessionState };

export type ForgetResult =
  { outcome: 'forgotten'; queuedMessages: number; subscriptions: number } | { outcome: 'unknown' };

/**
 * What the admin API may do to devices: a narrow interface over the gateway's parts, so observe/
 * and admin/ never reach into sessions, delivery or the stores themselves.
 */
export interface DeviceControl {
  list(): DeviceSummary[];
  get(clientId: string): DeviceDetail | undefined;
  /** DISCONNECT to the device and the connection ended; its will published only when asked. */
  kick(clientId: string, options: { publishWill: boolean }): KickResult;
  /** Deletes the session, its downlink queue and its broker subscriptions (persistent ones too). */
  forget(clientId: string): ForgetResult;
  trace: {
    set(clientId: string, on: boolean): TraceOutcome | 'off' | 'not-traced';
    recent(clientId: string): TracedPacket[] | undefined;
    list(): ReturnType<PacketTrace['list']>;
    readonly maxClients: number;
    /** Trace log lines left out by the per-device rate limit. */
    readonly suppressedLines: number;
  };
}

/** The gateway parts control acts through: the sessions to read, the lifecycle to act. */
export interface ControlParts {
  readonly sessions: {
    byClientId(clientId: string): Session | undefined;
    all(): IterableIterator<Session>;
  };
  readonly lifecycle: {
    kick(session: Session, options: { publishWill: boolean }): boolean;
    forget(clientId: string): boolean;
  };
}

/** States in which the device is (or may be) at its address and can be told DISCONNECT. */
const CONNECTED = new Set<SessionState>(['connecting', 'active', 'awake', 'asleep']);

export function deviceControl(parts: ControlParts, trace: PacketTrace): DeviceControl {
  const summary = (session: Session): DeviceSummary => ({
    clientId: session.clientId,
    state: session.state,
    address: session.peer.port === 0 ? '' : describePeer(session.peer),
    cleanSession: session.cleanSession,
    subscriptions: session.subscriptions.size,
    queuedMessages: session.outgoing.length,
    queuedBytes: session.queuedBytes,
    lastSeen: session.lastSeenWall,
    traced: trace.isTraced(session.clientId),
  });

  return {
    list: () => [...parts.sessions.all()].map(summary),

    get(clientId) {
      const session = parts.sessions.byClientId(clientId);
      if (!session) return undefined;
      return {
        ...summary(session),
        keepAliveSeconds: session.keepAliveMs / 1000,
        sleepSeconds: session.sleepMs / 1000,
        hasWill: session.will !== undefined,
        subscriptionList: [...session.subscriptions.values()].map(({ filter, qos }) => ({ filter, qos })),
      };
    },

    kick(clientId, { publishWill }) {
      const session = parts.sessions.byClientId(clientId);
      if (!session) return { outcome: 'unknown' };
      if (!CONNECTED.has(session.state)) return { outcome: 'not-connected', state: session.state };
      const willPublished = parts.lifecycle.kick(session, { publishWill });
      session.log.info({ publishWill, willPublished }, 'kicked through the admin API');
      return { outcome: 'kicked', willPublished };
    },

    forget(clientId) {
      const session = parts.sessions.byClientId(clientId);
      if (!session) return { outcome: 'unknown' };
      const result = {
        outcome: 'forgotten' as const,
        queuedMessages: session.outgoing.length,
        subscriptions: session.subscriptions.size,
      };
      parts.lifecycle.forget(clientId);
      session.log.info(result, 'session forgotten through the admin API');
      return result;
    },

    trace: {
      set(clientId, on) {
        if (on) return trace.on(clientId);
        return trace.off(clientId) ? 'off' : 'not-traced';
      },
      recent: (clientId) => trace.recent(clientId),
      list: () => trace.list(),
      get maxClients() {
        return trace.maxClients;
      },
      get suppressedLines() {
        return trace.suppressedLines;
      },
    },
  };
}
