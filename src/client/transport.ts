import dgram from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { decode, encode, MqttSnCodecError } from '../codec/index.js';
import type { CodecOptions, Packet } from '../codec/types.js';

/** One datagram in or out, for packet tracing (`--debug`). */
export type TraceEvent =
  | { direction: 'in' | 'out'; packet: Packet; size: number }
  | { direction: 'in'; undecodable: Uint8Array; reason: string };

export interface TransportHandlers {
  onPacket(packet: Packet): void;
  /** Socket errors; ECONNREFUSED means an ICMP "port unreachable" came back. */
  onError(err: NodeJS.ErrnoException): void;
  onTrace?(event: TraceEvent): void;
}

/** Client ids are the gateway's to judge: do not refuse long ones before it sees them. */
const CODEC_OPTIONS: CodecOptions = { maxClientIdLength: 0xffff };

/**
 * A UDP socket connected to one gateway (udp4 or udp6, as the host resolves). Being connected, it
 * hears only that gateway, and the kernel reports an ICMP "port unreachable" as ECONNREFUSED.
 */
export class UdpTransport {
  private closed = false;
  private handlers: TransportHandlers | undefined;

  private constructor(private readonly socket: dgram.Socket) {
    socket.on('message', (datagram) => this.onDatagram(datagram));
    socket.on('error', (err) => this.handlers?.onError(err));
  }

  static async open(host: string, port: number): Promise<UdpTransport> {
    const { address, family } = await lookup(host);
    const socket = dgram.createSocket(family === 6 ? 'udp6' : 'udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.connect(port, address, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    return new UdpTransport(socket);
  }

  /** Who hears about datagrams and errors (until then they are dropped). */
  listen(handlers: TransportHandlers): void {
    this.handlers = handlers;
  }

  /** Encodes and sends one packet; throws MqttSnCodecError for a packet that cannot be encoded. */
  send(packet: Packet): void {
    if (this.closed) return;
    const bytes = encode(packet, CODEC_OPTIONS);
    this.handlers?.onTrace?.({ direction: 'out', packet, size: bytes.length });
    this.socket.send(bytes, (err) => {
      if (err) this.handlers?.onError(err);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await new Promise<void>((resolve) => this.socket.close(() => resolve()));
  }

  private onDatagram(datagram: Buffer): void {
    let packet: Packet;
    try {
      packet = decode(datagram, CODEC_OPTIONS);
    } catch (err) {
      const reason = err instanceof MqttSnCodecError ? err.reason : String(err);
      this.handlers?.onTrace?.({ direction: 'in', undecodable: Uint8Array.from(datagram), reason });
      return;
    }
    this.handlers?.onTrace?.({ direction: 'in', packet, size: datagram.length });
    this.handlers?.onPacket(packet);
  }
}
