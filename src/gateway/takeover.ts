import type { HandlerEnv } from './handlers/env.js';
import { describePeer, type Peer } from './peer.js';
import type { Session } from './session.js';

/** States in which a session is somewhere: connected, in its will flow, or asleep at an address. */
const PRESENT = new Set<Session['state']>(['connecting', 'active', 'awake', 'asleep']);

/**
 * A CONNECT or PINGREQ names a session that lives at another address. Unless that address is
 * silent, the session stays where it is (stolen sessions, issue 8 §5): probes the old address and
 * runs `proceed` (the move) on silence, `refuse` on a PINGRESP or when too many probes are waiting.
 * Returns false when no probe is needed (the session is not bound elsewhere): the caller goes on.
 */
export function guardTakeover(
  ctx: Pick<HandlerEnv, 'sessions' | 'probes' | 'stats' | 'warn'>,
  session: Session,
  newcomer: Peer,
  what: 'CONNECT' | 'PINGREQ',
  proceed: () => void,
  refuse: () => void,
): boolean {
  const old = session.peer;
  const boundElsewhere =
    old.key !== newcomer.key && PRESENT.has(session.state) && ctx.sessions.byPeer(old.key) === session;
  if (!boundElsewhere) return false;
  // A repeat (the newcomer retransmitting, or a third address) while a probe runs: that probe decides.
  if (ctx.probes.probing(session)) return true;
  const context = {
    clientId: session.clientId,
    address: describePeer(newcomer),
    sessionAddress: describePeer(old),
    type: what,
  };
  const started = ctx.probes.start(session, (outcome) => {
    if (outcome === 'silent') {
      session.log.info(
        { from: describePeer(old), to: describePeer(newcomer) },
        'old address silent: session moves',
      );
      proceed();
      return;
    }
    ctx.stats.takeoversRefused++;
    ctx.warn.warn(
      'takeover-refused',
      context,
      `${what} for a session alive at another address refused (its old address answered PINGREQ)`,
    );
    refuse();
  });
  if (!started) {
    ctx.stats.takeoverProbesFull++;
    ctx.warn.warn(
      'takeover-probes-full',
      context,
      `${what} taking over a session refused: too many probes under way`,
    );
    refuse();
  }
  return true;
}
