import { PROTOCOL_ID, ReturnCode } from '../../codec/constants.js';
import type { ConnectPacket } from '../../codec/types.js';
import { clientIdProblem } from '../../topics/names.js';
import type { GatewayContext } from '../context.js';
import { describePeer, type Peer } from '../peer.js';
import { sendConnack } from '../replies.js';
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

  if (!isAllowed(ctx.options.allowClients, packet.clientId)) {
    ctx.warn.warn('connect-not-allowed', context, 'CONNECT refused: client id not in the allow-list');
    sendConnack(ctx, peer, ReturnCode.NOT_SUPPORTED);
    return;
  }

  let session = ctx.sessions.byClientId(packet.clientId);
  if (atPeer && atPeer !== session) {
    // Another client id now speaks from this address: the old one is unreachable here. Its keep-alive
    // supervision still runs, so its will is published if it never comes back.
    ctx.sessions.unbind(atPeer);
  }
  if (!session) {
    if (ctx.sessions.size >= ctx.options.limits.maxClients) {
      ctx.warn.warn(
        'connect-max-clients',
        { ...context, maxClients: ctx.options.limits.maxClients },
        'CONNECT refused: client limit reached',
      );
      sendConnack(ctx, peer, ReturnCode.CONGESTION);
      return;
    }
    session = ctx.sessions.create(packet.clientId, peer);
  } else if (atPeer !== session) {
    if (session.peer.key !== peer.key) {
      session.log.info(
        { from: describePeer(session.peer), to: describePeer(peer) },
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
  session.log.info(
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

/** Exact ids, or prefixes written with a trailing '*'. An empty list allows everyone. */
export function isAllowed(allowList: readonly string[], clientId: string): boolean {
  if (allowList.length === 0) return true;
  return allowList.some((entry) =>
    entry.endsWith('*') ? clientId.startsWith(entry.slice(0, -1)) : entry === clientId,
  );
}
