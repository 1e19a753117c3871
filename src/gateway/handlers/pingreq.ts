import type { PingReqPacket } from '../../codec/types.js';
import type { GatewayContext } from '../context.js';
import type { Peer } from '../peer.js';
import { sendNotConnected } from '../replies.js';
import type { Session } from '../session.js';

/**
 * PINGREQ (§6.11, §6.14). From a connected client: keep-alive, answered PINGRESP. From a sleeping
 * client (with its client id, or without one from the address it sleeps at, as Paho's client sends
 * it): it is awake; its buffered messages are delivered (each acknowledged as usual), then PINGRESP
 * lets it sleep again for the same duration — at once when nothing is buffered.
 */
export function handlePingreq(
  ctx: GatewayContext,
  peer: Peer,
  atPeer: Session | undefined,
  packet: PingReqPacket,
): void {
  if (packet.clientId !== undefined) {
    const sleeper = ctx.sessions.byClientId(packet.clientId);
    if (sleeper && (sleeper.state === 'asleep' || sleeper.state === 'awake')) {
      if (sleeper !== atPeer) ctx.sessions.rebind(sleeper, peer);
      wake(ctx, sleeper);
      return;
    }
    if (sleeper?.isConnected && sleeper === atPeer) {
      ctx.send(peer, { type: 'PINGRESP' });
      return;
    }
    sendNotConnected(ctx, peer, 'PINGREQ');
    return;
  }
  if (atPeer && (atPeer.state === 'asleep' || atPeer.state === 'awake')) {
    // No client id, but this address is where the session sleeps: the same wake-up (Paho MQTT-SN).
    wake(ctx, atPeer);
    return;
  }
  if (!atPeer?.isConnected) {
    sendNotConnected(ctx, peer, 'PINGREQ');
    return;
  }
  ctx.send(peer, { type: 'PINGRESP' });
}

/** Sends the buffer, then PINGRESP and back to sleep (Delivery.pump); a repeat while awake waits for that. */
function wake(ctx: GatewayContext, sleeper: Session): void {
  if (sleeper.state === 'asleep') ctx.setState(sleeper, 'awake');
  ctx.delivery.pump(sleeper);
}
