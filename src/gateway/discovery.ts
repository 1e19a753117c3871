import type { Logger } from 'pino';
import type { Peer, Send } from './peer.js';
import type { AdvertiseOptions } from './options.js';
import type { Transport } from './transport.js';

/**
 * Gateway discovery (§6.1): a periodic ADVERTISE broadcast when configured, and GWINFO unicast to a
 * SEARCHGW as soon as the gateway accepts traffic.
 */
export class Discovery {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly gatewayId: () => number,
    private readonly log: Logger,
  ) {}

  /** SEARCHGW: this gateway answers for itself (radius does not matter to a gateway). */
  answer(send: Send, peer: Peer): void {
    send(peer, { type: 'GWINFO', gwId: this.gatewayId() });
  }

  start(
    transport: Pick<Transport, 'socketFor' | 'broadcast'>,
    advertise: AdvertiseOptions | undefined,
  ): void {
    if (!advertise) return;
    const socket = transport.socketFor(advertise.host);
    if (!socket) {
      this.log.warn(advertise, 'no UDP socket of the advertise address family: ADVERTISE disabled');
      return;
    }
    socket.setBroadcast(true);
    const send = (): void =>
      transport.broadcast(
        socket,
        { type: 'ADVERTISE', gwId: this.gatewayId(), duration: advertise.intervalSeconds },
        advertise.port,
        advertise.host,
      );
    send();
    this.timer = setInterval(send, advertise.intervalSeconds * 1000).unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
