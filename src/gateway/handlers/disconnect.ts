import type { DisconnectPacket } from '../../codec/types.js';
import type { GatewayContext } from '../context.js';
import type { Peer } from '../peer.js';
import type { Session } from '../session.js';

/**
 * DISCONNECT (§6.14). Without a duration the client leaves cleanly: no will, and with CleanSession=1
 * nothing is kept. With a duration it goes to sleep and must wake (PINGREQ) or reconnect within it.
 * Always answered, also without a session: the client may be repeating after our reply was lost.
 */
export function handleDisconnect(
  ctx: GatewayContext,
  peer: Peer,
  session: Session | undefined,
  packet: DisconnectPacket,
): void {
  if (session && session.state !== 'disconnected' && session.state !== 'lost') {
    if (packet.duration !== undefined && packet.duration > 0) {
      session.sleepMs = packet.duration * 1000;
      ctx.setState(session, 'asleep');
      ctx.persist(session);
      session.log.debug({ duration: packet.duration }, 'client asleep');
    } else {
      ctx.setState(session, 'disconnected');
      ctx.sessions.unbind(session);
      if (session.cleanSession) ctx.sessions.remove(session);
      else ctx.persist(session);
      session.log.debug('client disconnected');
    }
  }
  ctx.send(peer, { type: 'DISCONNECT' });
}
