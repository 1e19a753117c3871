import { PROTOCOL_ID, ReturnCode } from '../../codec/constants.js';
import type { ConnectPacket } from '../../codec/types.js';
import { clientIdProblem } from '../../topics/names.js';
import { allowListOf } from '../allow-list.js';
import { DEFAULT_MAX_SESSIONS_PER_ADDRESS } from '../options.js';
import { describePeer, type Peer } from '../peer.js';
import { sendConnack } from '../replies.js';
import type { Session } from '../session.js';
import { guardTakeover } from '../takeover.js';
import type { HandlerEnv } from './env.js';

type Env = Pick<HandlerEnv, 'send' | 'stats' | 'warn' | 'settings' | 'sessions' | 'probes' | 'lifecycle'>;

/**
 * CONNECT (§6.2): refuse what cannot be served with the spec's codes, take over a session whose
 * client reappears at a new address (NAT rebinding), and start the will flow when asked for.
 */
export function handleConnect(
  ctx: Env,
  peer: Peer,
  atPeer: Session | undefined,
  packet: ConnectPacket,
  /** The session's old address was probed and stayed silent: move it without asking again. */
  probed = false,
): void {
  const context = { clientId: packet.clientId, address: describePeer(peer) };
  if (packet.protocolId !== PROTOCOL_ID) {
    ctx.warn.warn(
      'connect-protocol',
      { ...context, protocolId: packet.protocolId },
      'CONNECT with an unsupported ProtocolId refused',
    );
    sendConnack(ctx, peer, ReturnCode.NOT_SUPPORTED);
    return;
  }
  const problem = clientIdProblem(packet.clientId, ctx.settings.current.limits.maxClientIdLength);
  if (problem) {
    ctx.warn.warn('connect-client-id', { ...context, problem }, `CONNECT refused: ${problem}`);
    sendConnack(ctx, peer, ReturnCode.NOT_SUPPORTED);
    return;
  }

  if (!allowListOf(ctx.settings.current).allows(packet.clientId, peer.address)) {
    ctx.stats.notAllowed++;
    ctx.warn.warn(
      'connect-not-allowed',
      context,
      'CONNECT refused: client id not in the allow-list (for this address)',
    );
    sendConnack(ctx, peer, ReturnCode.NOT_SUPPORTED);
    return;
  }

  let session = ctx.sessions.byClientId(packet.clientId);
  if (
    session &&
    !probed &&
    guardTakeover(
      ctx,
      session,
      peer,
      'CONNECT',
      () => handleConnect(ctx, peer, ctx.sessions.byPeer(peer.key), packet, true),
      () => sendConnack(ctx, peer, ReturnCode.CONGESTION),
    )
  )
    return;
  if (atPeer && atPeer !== session) {
    // Another client id now speaks from this address: the old one is unreachable here. Its keep-alive
    // supervision still runs, so its will is published if it never comes back; without keep-alive
    // nothing would ever end it (a CONNECT flood from one port), so it is lost now.
    if (atPeer.isConnected && atPeer.keepAliveMs === 0)
      ctx.lifecycle.lose(atPeer, 'another client id connected from its address');
    ctx.sessions.unbind(atPeer);
  }
  if (!session) {
    if (!makeRoom(ctx, peer, context)) {
      sendConnack(ctx, peer, ReturnCode.CONGESTION);
      return;
    }
    session = ctx.sessions.create(packet.clientId, peer);
  } else if (atPeer !== session) {
    if (session.peer.key !== peer.key) {
      // Rate-limited: any sender can cause one of these per datagram.
      ctx.warn.warn(
        'session-takeover',
        { clientId: session.clientId, from: describePeer(session.peer), to: describePeer(peer) },
        'session taken over from a new address',
      );
    }
    ctx.sessions.rebind(session, peer);
  }

  // A CONNECT from an asleep or awake device is its wake-up (§6.7: → active, the rest of the buffer
  // is delivered; paho#122); otherwise a new connection, with the will flow first if asked for.
  ctx.lifecycle.connect(session, packet);
}

/**
 * Room for one more session, within the bound per IP address (`--max-sessions-per-address`) and the
 * table's (`--max-clients`). A full bound evicts its oldest disconnected session whose client never
 * did anything but CONNECT; a real device's session (one that published, subscribed or registered)
 * is never evicted for a newcomer — then the newcomer is refused.
 */
function makeRoom(ctx: Env, peer: Peer, context: Record<string, unknown>): boolean {
  const limits = ctx.settings.current.limits;
  const perAddress = limits.maxSessionsPerAddress ?? DEFAULT_MAX_SESSIONS_PER_ADDRESS;
  if (ctx.sessions.countAt(peer.address) >= perAddress) {
    const victim = ctx.sessions.oldestIdleDetached(peer.address);
    if (!victim) {
      ctx.stats.connectsRefused.address++;
      ctx.warn.warn(
        'connect-max-per-address',
        { ...context, maxSessionsPerAddress: perAddress },
        'CONNECT refused: session limit per address reached',
      );
      return false;
    }
    evict(ctx, victim, context);
  }
  if (ctx.sessions.size >= limits.maxClients) {
    const victim = ctx.sessions.oldestIdleDetached();
    if (!victim) {
      ctx.stats.connectsRefused.clients++;
      ctx.warn.warn(
        'connect-max-clients',
        { ...context, maxClients: limits.maxClients },
        'CONNECT refused: client limit reached',
      );
      return false;
    }
    evict(ctx, victim, context);
  }
  return true;
}

function evict(ctx: Env, victim: Session, context: Record<string, unknown>): void {
  ctx.stats.sessionsEvicted++;
  ctx.warn.warn(
    'session-evicted',
    { ...context, evicted: victim.clientId, evictedAddress: victim.peer.address },
    'idle disconnected session evicted to make room',
  );
  ctx.sessions.remove(victim, 'evicted');
}
