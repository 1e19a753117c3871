import type { PingReqPacket } from '../../codec/types.js';
import { allowListOf } from '../allow-list.js';
import { describePeer, type Peer } from '../peer.js';
import { sendNotConnected } from '../replies.js';
import type { Session } from '../session.js';
import { guardTakeover } from '../takeover.js';
import type { HandlerEnv } from './env.js';

/**
 * PINGREQ (§6.11, §6.14). From a connected client: keep-alive, answered PINGRESP. From a sleeping
 * client (with its client id, or without one from the address it sleeps at, as Paho's client sends
 * it): it is awake; its buffered messages are delivered (each acknowledged as usual), then PINGRESP
 * lets it sleep again for the same duration — at once when nothing is buffered.
 */
export function handlePingreq(
  env: HandlerEnv,
  peer: Peer,
  atPeer: Session | undefined,
  packet: PingReqPacket,
  /** The sleeper's old address was probed and stayed silent: move it without asking again. */
  probed = false,
): void {
  if (packet.clientId !== undefined) {
    const sleeper = env.sessions.byClientId(packet.clientId);
    if (sleeper && (sleeper.state === 'asleep' || sleeper.state === 'awake')) {
      if (sleeper !== atPeer) {
        if (!allowListOf(env.settings.current).allows(sleeper.clientId, peer.address)) {
          env.stats.notAllowed++;
          env.warn.warn(
            'pingreq-not-allowed',
            { clientId: sleeper.clientId, address: describePeer(peer) },
            'PINGREQ waking a session from an address the allow-list does not give it: ignored',
          );
          return;
        }
        // Another address wants the buffer: only if the old one is silent (the answer to a thief
        // whose victim is alive is nothing at all).
        const retry = (): void => handlePingreq(env, peer, env.sessions.byPeer(peer.key), packet, true);
        if (!probed && guardTakeover(env, sleeper, peer, 'PINGREQ', retry, () => undefined)) return;
        env.sessions.rebind(sleeper, peer);
      }
      env.lifecycle.wake(sleeper);
      return;
    }
    if (sleeper?.isConnected && sleeper === atPeer) {
      env.send(peer, { type: 'PINGRESP' });
      return;
    }
    sendNotConnected(env, peer, 'PINGREQ');
    return;
  }
  if (atPeer && (atPeer.state === 'asleep' || atPeer.state === 'awake')) {
    // No client id, but this address is where the session sleeps: the same wake-up (Paho MQTT-SN).
    env.lifecycle.wake(atPeer);
    return;
  }
  if (!atPeer?.isConnected) {
    sendNotConnected(env, peer, 'PINGREQ');
    return;
  }
  env.send(peer, { type: 'PINGRESP' });
}
