import type { DisconnectPacket } from '../../codec/types.js';
import type { Peer } from '../peer.js';
import type { Session } from '../session.js';
import type { HandlerEnv } from './env.js';

/**
 * DISCONNECT (§6.14). Without a duration the client leaves cleanly: no will, and with CleanSession=1
 * nothing is kept. With a duration it goes to sleep and must wake (PINGREQ) or reconnect within it.
 * Always answered, also without a session: the client may be repeating after our reply was lost.
 */
export function handleDisconnect(
  env: Pick<HandlerEnv, 'send' | 'lifecycle'>,
  peer: Peer,
  session: Session | undefined,
  packet: DisconnectPacket,
): void {
  if (session && session.state !== 'disconnected' && session.state !== 'lost') {
    if (packet.duration !== undefined && packet.duration > 0)
      env.lifecycle.sleep(session, packet.duration * 1000);
    else env.lifecycle.disconnect(session);
  }
  env.send(peer, { type: 'DISCONNECT' });
}
