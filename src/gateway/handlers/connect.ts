import { PROTOCOL_ID, ReturnCode } from '../../codec/constants.js';
import type { ConnectPacket } from '../../codec/types.js';
import { clientIdProblem } from '../../topics/names.js';
import { DEFAULT_MAX_SESSIONS_PER_ADDRESS, type GatewayContext } from '../context.js';
import { describePeer, type Peer } from '../peer.js';
import { allowListOf } from '../allow-list.js';
import { sendConnack } from '../replies.js';
import { guardTakeover } from '../takeover.js';
import type { Session } from '../session.js';

/**
 * CONNECT (§6.2): refuse what cannot be served with the spec's codes, take over a session whose
 * client reappears at a new address (NAT rebinding), and start the will flow when asked for.
 */
export function handleConnect(
  ctx: GatewayContext,
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
  const problem = clientIdProblem(packet.clientId, ctx.options.limits.maxClientIdLength);
  if (problem) {
    ctx.warn.warn('connect-client-id', { ...context, problem }, `CONNECT refused: ${problem}`);
    sendConnack(ctx, peer, ReturnCode.NOT_SUPPORTED);
    return;
  }

  if (!allowListOf(ctx).allows(packet.clientId, peer.address)) {
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
      ctx.lose(atPeer, 'another client id connected from its address');
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
  // is delivered; paho#122): its CleanSession flag does not throw the session away then, and the
  // session keeps the CleanSession it was made with.
  const wakeUp = session.state === 'asleep' || session.state === 'awake';
  ctx.delivery.onConnect(session);
  if (wakeUp) {
    if (packet.cleanSession !== session.cleanSession)
      session.log.debug(
        { cleanSession: packet.cleanSession, kept: session.cleanSession },
        'wake-up CONNECT: CleanSession flag ignored',
      );
  } else {
    if (packet.cleanSession) {
      session.clear();
      ctx.subscriptions.removeAll(session);
      ctx.delivery.discard(session, 'clean_session');
    }
    session.cleanSession = packet.cleanSession;
  }
  session.keepAliveMs = packet.duration * 1000;

  if (packet.will) {
    session.willFlow = 'topic';
    session.pendingWillTopic = undefined;
    ctx.setState(session, 'connecting');
    ctx.send(peer, { type: 'WILLTOPICREQ' });
    return;
  }
  completeConnect(ctx, session);
}

/** The end of CONNECT, directly or after WILLMSG: the session is active and the client hears CONNACK. */
export function completeConnect(ctx: GatewayContext, session: Session): void {
  session.willFlow = 'none';
  session.pendingWillTopic = undefined;
  ctx.setState(session, 'active');
  ctx.stats.connects++;
  // Debug, not info: one line per CONNECT is a log flood a device can cause at will.
  session.log.debug(
    {
      keepAlive: session.keepAliveMs / 1000,
      cleanSession: session.cleanSession,
      will: session.will !== undefined,
      queued: session.outgoing.length,
    },
    'client connected',
  );
  ctx.persist(session);
  ctx.send(session.peer, { type: 'CONNACK', returnCode: ReturnCode.ACCEPTED });
  // Whatever waited while it was away or asleep goes now (paho#122).
  ctx.delivery.pump(session);
}

/**
 * Room for one more session, within the bound per IP address (`--max-sessions-per-address`) and the
 * table's (`--max-clients`). A full bound evicts its oldest disconnected session whose client never
 * did anything but CONNECT; a real device's session (one that published, subscribed or registered)
 * is never evicted for a newcomer — then the newcomer is refused.
 */
function makeRoom(ctx: GatewayContext, peer: Peer, context: Record<string, unknown>): boolean {
  const limits = ctx.options.limits;
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

function evict(ctx: GatewayContext, victim: Session, context: Record<string, unknown>): void {
  ctx.stats.sessionsEvicted++;
  ctx.warn.warn(
    'session-evicted',
    { ...context, evicted: victim.clientId, evictedAddress: victim.peer.address },
    'idle disconnected session evicted to make room',
  );
  ctx.sessions.remove(victim, 'evicted');
}
