import { createServer, type Server, type Socket } from 'node:net';
import { Aedes } from 'aedes';
import type { Logger } from 'pino';
import { whenBound } from './listen.js';

/**
 * A small MQTT broker (aedes, in memory) for a first run with nothing else installed. Not for
 * production: it keeps nothing across restarts. Point --broker at a real broker instead.
 */
export interface EmbeddedBroker {
  readonly url: string;
  close(): Promise<void>;
}

export async function startEmbeddedBroker(host: string, port: number, log: Logger): Promise<EmbeddedBroker> {
  const broker = await Aedes.createBroker();
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    broker.handle(socket);
  });
  await whenBound(server, (bound) => server.listen(port, host, bound)).catch((err: NodeJS.ErrnoException) => {
    broker.close();
    throw new Error(
      `cannot start the embedded broker on ${host}:${port} (${err.code ?? err.message}); ` +
        'is another MQTT broker running there? Then pass --broker mqtt://127.0.0.1:1883',
      { cause: err },
    );
  });
  const address = server.address();
  const boundPort = typeof address === 'object' && address ? address.port : port;
  const url = `mqtt://${host}:${boundPort}`;
  log.warn(
    { url },
    `no broker configured: started an EMBEDDED broker on ${host}:${boundPort} (in memory, for trying things out). ` +
      'Subscribe with: mosquitto_sub -h 127.0.0.1 -t "mqttsn/#" -v. ' +
      'In production pass --broker mqtt://your-broker:1883 (or set broker.urls in the config file).',
  );
  return {
    url,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await new Promise<void>((resolve) => broker.close(() => resolve()));
    },
  };
}
