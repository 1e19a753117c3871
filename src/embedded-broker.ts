import { createServer, type Server, type Socket } from 'node:net';
import type * as AedesModule from 'aedes';
import type { Logger } from 'pino';
import { ConfigError } from './config/load.js';
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
  const { Aedes } = await loadAedes();
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

/**
 * aedes is an optional dependency: a production install (`npm install --omit=optional`, or a
 * packager that drops it) has a real broker and does not need it. Without it, the gateway cannot
 * start with no --broker: say what is missing and what to do, as a configuration error (exit 2,
 * which the systemd unit does not restart in a loop).
 */
async function loadAedes(): Promise<typeof AedesModule> {
  try {
    return await import('aedes');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw err;
    throw new ConfigError(
      'no broker configured, and the embedded broker for a first run needs the optional package ' +
        'aedes, which is not installed. Pass --broker mqtt://your-broker:1883 (or set broker.urls in ' +
        'the config file), or install aedes next to mqttsn-bridge (npm install aedes).',
      { cause: err },
    );
  }
}
