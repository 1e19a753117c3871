/**
 * A TCP fault-injection proxy between a client (e.g. the gateway's MQTT uplink) and a broker, both on
 * 127.0.0.1. It forwards bytes unchanged until told to misbehave:
 *
 * - `cut()`: destroy every current connection, both sides (the link drops).
 * - `refuse(true)`: new connections are accepted and immediately reset (the client sees the connection
 *   fail: ECONNRESET or a close before CONNACK); existing connections are left alone.
 * - `blackhole(true)`: existing and new connections stay open but nothing is forwarded in either
 *   direction, and nothing is buffered: bytes are silently discarded, FINs are not passed on (a
 *   half-open link). Bytes sent meanwhile are lost for good, also after `blackhole(false)`.
 * - `setTarget(port)`: new connections go to another port (existing ones are not moved).
 */
import net from 'node:net';
import { LOOPBACK } from './ports.js';

export interface FaultProxy {
  /** The proxy's own listening port on 127.0.0.1. */
  readonly port: number;
  /** 'mqtt://127.0.0.1:PORT' of the proxy. */
  readonly url: string;
  /** Connections currently open (a connection counts until both of its sides are closed). */
  readonly connections: number;
  /** Connections accepted and forwarded so far (refused ones not counted). */
  readonly accepted: number;
  /** Bytes forwarded so far, both directions. */
  readonly bytesForwarded: number;
  /** Bytes discarded by the blackhole so far, both directions. */
  readonly bytesDropped: number;
  /** Destroy all current connections, both sides. */
  cut(): void;
  /** While on, new connections are accepted and immediately reset. */
  refuse(on: boolean): void;
  /** While on, no bytes (nor FINs) pass in either direction; sockets stay open. */
  blackhole(on: boolean): void;
  /** Forward new connections to 127.0.0.1:port from now on. */
  setTarget(port: number): void;
  /** Stop listening and destroy all connections. Idempotent. */
  close(): Promise<void>;
}

interface Link {
  client: net.Socket;
  upstream: net.Socket;
}

/** Start a fault proxy on 127.0.0.1:<ephemeral> forwarding to 127.0.0.1:targetPort. */
export async function startFaultProxy(targetPort: number): Promise<FaultProxy> {
  let target = targetPort;
  let refusing = false;
  let blackholed = false;
  let accepted = 0;
  let bytesForwarded = 0;
  let bytesDropped = 0;
  const links = new Set<Link>();

  const destroyLink = (link: Link): void => {
    links.delete(link);
    link.client.destroy();
    link.upstream.destroy();
  };

  /** Forward `from` -> `to`, honouring backpressure and the blackhole switch. */
  const forward = (from: net.Socket, to: net.Socket): void => {
    from.on('data', (chunk: Buffer) => {
      if (blackholed) {
        bytesDropped += chunk.length;
        return;
      }
      bytesForwarded += chunk.length;
      if (!to.write(chunk)) {
        from.pause();
        to.once('drain', () => from.resume());
      }
    });
    // Pass the FIN on (graceful, flushes what was written); a blackhole swallows it.
    from.on('end', () => {
      if (!blackholed) to.end();
    });
    // An abortive close (error/reset) aborts the other side too, unless blackholed.
    from.on('close', (hadError) => {
      if (hadError && !blackholed) to.destroy();
    });
    from.on('error', () => {
      /* reported via 'close'; swallowed so a reset never crashes the test process */
    });
  };

  const server = net.createServer({ allowHalfOpen: false }, (client) => {
    if (refusing) {
      client.on('error', () => {});
      client.resetAndDestroy();
      return;
    }
    accepted++;
    client.setNoDelay(true);
    // Writes made before the upstream connects are queued by net.Socket, so no bytes are lost.
    const upstream = net.connect({ port: target, host: LOOPBACK, noDelay: true });
    const link: Link = { client, upstream };
    links.add(link);
    let closedSides = 0;
    const onSideClosed = (): void => {
      if (++closedSides === 2) links.delete(link);
    };
    client.once('close', onSideClosed);
    upstream.once('close', onSideClosed);
    // Target down: the client's connection fails too (as close as a proxy can get to ECONNREFUSED).
    upstream.once('error', () => {
      if (!upstream.remoteAddress) client.resetAndDestroy();
    });
    forward(client, upstream);
    forward(upstream, client);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, LOOPBACK, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as net.AddressInfo;

  let closing: Promise<void> | undefined;

  return {
    port,
    url: `mqtt://${LOOPBACK}:${port}`,
    get connections() {
      return links.size;
    },
    get accepted() {
      return accepted;
    },
    get bytesForwarded() {
      return bytesForwarded;
    },
    get bytesDropped() {
      return bytesDropped;
    },
    cut() {
      for (const link of [...links]) destroyLink(link);
    },
    refuse(on) {
      refusing = on;
    },
    blackhole(on) {
      blackholed = on;
    },
    setTarget(newPort) {
      target = newPort;
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        refusing = true;
        server.close(() => resolve());
        for (const link of [...links]) destroyLink(link);
      });
      return closing;
    },
  };
}
