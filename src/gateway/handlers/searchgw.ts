import type { SearchGwPacket } from '../../codec/types.js';
import type { GatewayContext } from '../context.js';
import type { Peer } from '../peer.js';

/** SEARCHGW (§6.1): answered with GWINFO, unicast to the sender, as soon as the gateway accepts traffic. */
export function handleSearchGw(ctx: GatewayContext, peer: Peer, _packet: SearchGwPacket): void {
  ctx.send(peer, { type: 'GWINFO', gwId: ctx.options.gatewayId });
}
