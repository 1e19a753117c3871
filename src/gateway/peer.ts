import type { Socket } from 'node:dgram';
import type { Packet } from '../codec/types.js';

/**
 * Where a device is reached: the socket its datagram arrived on (replies leave from that socket),
 * its address, and — behind a forwarder (§5.5) — the wireless node id to encapsulate replies with.
 */
export interface Peer {
  readonly socket: Socket;
  readonly address: string;
  readonly port: number;
  readonly wirelessNodeId?: Uint8Array;
  /** Stable lookup key: address, port and node id. */
  readonly key: string;
}

export function peerKey(address: string, port: number, wirelessNodeId?: Uint8Array): string {
  const base = `${address}|${port}`;
  return wirelessNodeId === undefined ? base : `${base}|${Buffer.from(wirelessNodeId).toString('hex')}`;
}

export function describePeer(peer: Peer): string {
  const host = peer.address.includes(':') ? `[${peer.address}]` : peer.address;
  const node = peer.wirelessNodeId ? `/${Buffer.from(peer.wirelessNodeId).toString('hex')}` : '';
  return `${host}:${peer.port}${node}`;
}

/** How every part sends a packet to a device (the transport encodes, encapsulates and counts it). */
export type Send = (peer: Peer, packet: Packet) => void;
