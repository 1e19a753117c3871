import dgram, { type RemoteInfo, type Socket } from 'node:dgram';
import dns from 'node:dns';
import { isIP, isIPv6 } from 'node:net';
import type { Logger } from 'pino';
import { decode, encode } from '../codec/index.js';
import type { CodecOptions, Packet } from '../codec/types.js';
import type { RateLimitedWarn } from '../log/rate-limit.js';
import { whenBound } from '../listen.js';
import type { ListenAddress } from './options.js';
import { describePeer, peerKey, type Peer } from './peer.js';
import { ReplyBuffers } from './reply-buffers.js';
import type { Session } from './session.js';
import type { PacketTap } from './trace.js';
import type { GatewayStats } from './stats.js';

/** Where the transport hands what it received. One way: the transport knows no handler or state. */
export interface Inbound {
  /** The session bound at this address: replies reuse its Peer (no allocation per datagram). */
  sessionAt(key: string): Session | undefined;
  /** sessionAt(peerKey(address, port)) for a direct sender, without building the key per datagram. */
  sessionFrom(address: string, port: number): Session | undefined;
  packet(peer: Peer, session: Session | undefined, packet: Packet, length: number): void;
  /** Larger than the packet size limit: decoded, so the refusal can name its message id. */
  oversized(peer: Peer, session: Session | undefined, packet: Packet, length: number): void;
  /** Did not decode; `peer` is the sender's plain address (a forwarder's node id is not readable). */
  undecodable(peer: Peer, datagram: Buffer, err: unknown): void;
}

/**
 * The UDP side: binds the listen addresses, decodes datagrams (unwrapping a forwarder's
 * encapsulation, §5.5), applies the one size limit, and encodes, encapsulates and sends replies.
 * Counts datagrams and send errors; knows nothing of sessions beyond finding the bound one.
 */
export class Transport {
  /** The packet trace (trace.ts); only its `active` is read per datagram while nothing is traced. */
  tap: PacketTap | undefined;
  private readonly sockets: Socket[] = [];
  private readonly replies: ReplyBuffers;
  private accepting = false;
  private open = false;
  /** Sends handed to the sockets whose callback has not run yet (see close()). */
  private sendsInFlight = 0;
  private onSendsSettled: (() => void) | undefined;
  // Decode client ids with the widest bound so an over-long one gets CONNACK "not supported", not silence.
  private readonly decodeOptions: CodecOptions = { maxClientIdLength: 0xffff };

  /** Set by bind(): nothing is received (or sent) before. */
  private inbound: Inbound = NOWHERE;

  constructor(
    private readonly log: Logger,
    private readonly stats: GatewayStats,
    private readonly warn: RateLimitedWarn,
    private readonly maxPacketSize: () => number,
  ) {
    this.replies = new ReplyBuffers(this.onReplySent);
  }

  /** Binds every address, receiving into `inbound`; a failure closes the socket and names the address. */
  async bind(listen: readonly ListenAddress[], inbound: Inbound): Promise<void> {
    this.inbound = inbound;
    for (const { host, port } of listen) {
      const socket = dgram.createSocket({
        type: isIPv6(host) ? 'udp6' : 'udp4',
        ipv6Only: isIPv6(host),
        lookup: literalLookup,
      });
      socket.on('message', (buf, rinfo) => this.onDatagram(socket, buf, rinfo));
      socket.on('error', (err) => this.log.error({ err }, 'UDP socket error'));
      await whenBound(socket, (bound) => socket.bind(port, host, bound)).catch(
        (err: NodeJS.ErrnoException) => {
          socket.close(); // nothing may keep a gateway that cannot listen alive
          throw new Error(`cannot listen on UDP ${host}:${port}: ${err.code ?? err.message}`, { cause: err });
        },
      );
      try {
        // Absorb bursts from many sensors at once; the kernel may cap it (net.core.rmem_max).
        socket.setRecvBufferSize(4 * 1024 * 1024);
      } catch {
        // keep the default
      }
      this.sockets.push(socket);
    }
    this.open = true;
  }

  /** Takes datagrams from now on (after the restore), or no longer (stopping). */
  setAccepting(accepting: boolean): void {
    this.accepting = accepting;
  }

  get isAccepting(): boolean {
    return this.accepting;
  }

  addresses(): Array<{ address: string; port: number; family: string }> {
    return this.sockets.map((socket) => socket.address());
  }

  /** The socket a restored session is pinned to until its device speaks (never sent to meanwhile). */
  get firstSocket(): Socket {
    return this.sockets[0]!;
  }

  /** The socket of an address family, for broadcasts (ADVERTISE). */
  socketFor(host: string): Socket | undefined {
    return this.sockets.find((s) => (s.address().family === 'IPv6') === isIPv6(host));
  }

  readonly send = (peer: Peer, packet: Packet): void => {
    if (!this.open) return;
    const slot = peer.wirelessNodeId ? undefined : this.replies.take(packet);
    let bytes: Uint8Array;
    if (slot) bytes = slot.bytes;
    else {
      try {
        bytes = peer.wirelessNodeId
          ? encode({
              type: 'ENCAPSULATED',
              radius: 0,
              wirelessNodeId: peer.wirelessNodeId,
              packet: packet as Exclude<Packet, { type: 'ENCAPSULATED' }>,
            })
          : encode(packet);
      } catch (err) {
        // Callers check what they send (delivery measures downlink messages first); if one slips
        // through, it is counted, not thrown into a handler, a timer or a commit callback.
        this.stats.sendErrors++;
        this.stats.errorsByBoundary.set('encode', (this.stats.errorsByBoundary.get('encode') ?? 0) + 1);
        this.warn.warn(
          'encode-error',
          { err, type: packet.type },
          'a datagram could not be encoded: not sent',
        );
        return;
      }
    }
    if (this.tap?.active)
      this.tap.packet('out', peer, bytes, packet, this.inbound.sessionAt(peer.key)?.clientId);
    this.stats.datagramsOut++;
    this.sendsInFlight++;
    peer.socket.send(bytes, peer.port, peer.address, slot ? slot.done : this.onReplySent);
  };

  /** A datagram not addressed to one client (ADVERTISE): not counted as a reply, not waited for. */
  broadcast(socket: Socket, packet: Packet, port: number, host: string): void {
    socket.send(encode(packet), port, host, this.onSent);
  }

  /**
   * Closes the sockets once the replies already sent are out (the PUBACKs of the last commit): Node
   * drops datagrams still queued in a socket that is closed. Bounded by `drainTimeoutMs`.
   */
  async close(drainTimeoutMs: number): Promise<void> {
    this.accepting = false;
    this.open = false;
    if (this.sendsInFlight > 0) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.onSendsSettled = resolve;
        timer = setTimeout(resolve, drainTimeoutMs);
      });
      clearTimeout(timer);
      this.onSendsSettled = undefined;
    }
    await Promise.all(
      this.sockets.map((socket) => new Promise<void>((resolve) => socket.close(() => resolve()))),
    );
    this.sockets.length = 0;
  }

  private onDatagram(socket: Socket, buf: Buffer, rinfo: RemoteInfo): void {
    if (!this.accepting) return;
    this.stats.datagramsIn++;
    let packet: Packet;
    try {
      packet = decode(buf, this.decodeOptions);
    } catch (err) {
      const session = this.inbound.sessionFrom(rinfo.address, rinfo.port);
      const peer = this.peerFor(socket, rinfo, undefined, session);
      if (this.tap?.active) this.tap.packet('in', peer, buf, undefined, session?.clientId);
      this.inbound.undecodable(peer, buf, err);
      return;
    }
    let wirelessNodeId: Uint8Array | undefined;
    if (packet.type === 'ENCAPSULATED') {
      wirelessNodeId = packet.wirelessNodeId.slice();
      packet = packet.packet;
    }
    const session =
      wirelessNodeId === undefined
        ? this.inbound.sessionFrom(rinfo.address, rinfo.port)
        : this.inbound.sessionAt(peerKey(rinfo.address, rinfo.port, wirelessNodeId));
    const peer = this.peerFor(socket, rinfo, wirelessNodeId, session);
    if (this.tap?.active) this.tap.packet('in', peer, buf, packet, session?.clientId);
    // The one size rule: whatever the type, a datagram over the limit is not handled.
    if (buf.length > this.maxPacketSize()) {
      this.stats.oversized++;
      this.warn.warn(
        'oversized',
        { clientId: session?.clientId, address: describePeer(peer), size: buf.length, type: packet.type },
        'datagram larger than the packet size limit refused',
      );
      this.inbound.oversized(peer, session, packet, buf.length);
      return;
    }
    this.inbound.packet(peer, session, packet, buf.length);
  }

  /** The bound session's Peer when it spoke on the same socket (no allocation), else a new one. */
  private peerFor(
    socket: Socket,
    rinfo: RemoteInfo,
    wirelessNodeId: Uint8Array | undefined,
    session: Session | undefined,
  ): Peer {
    if (session && session.peer.socket === socket) return session.peer;
    const key = peerKey(rinfo.address, rinfo.port, wirelessNodeId);
    return { socket, address: rinfo.address, port: rinfo.port, wirelessNodeId, key };
  }

  private readonly onReplySent = (err: Error | null): void => {
    if (--this.sendsInFlight === 0) this.onSendsSettled?.();
    this.onSent(err);
  };

  private readonly onSent = (err: Error | null): void => {
    if (!err) return;
    this.stats.sendErrors++;
    this.warn.warn('send-error', { err }, 'sending a datagram failed');
  };
}

/**
 * Every reply goes to an address a datagram came from: an IP literal. Node's default (dns.lookup)
 * answers a literal on the next tick, so each send left the socket only once the current callback and
 * every promise continuation queued behind it had run: after a commit, the PUBACKs waited for the
 * uplink's publishing of the same batch (~0.2 ms for a lone device). Answered at once, `socket.send`
 * hands the datagram to the kernel before it returns; a name still goes through dns.lookup.
 */
function literalLookup(
  host: string,
  family: number | dns.LookupOneOptions,
  callback: (err: NodeJS.ErrnoException | null, address: string, family: number) => void,
): void {
  const literal = isIP(host);
  if (literal !== 0) callback(null, host, literal);
  else dns.lookup(host, family as dns.LookupOneOptions, callback);
}

const NOWHERE: Inbound = {
  sessionAt: () => undefined,
  sessionFrom: () => undefined,
  packet: () => undefined,
  oversized: () => undefined,
  undecodable: () => undefined,
};
