/**
 * A real bridge for the admin and trace tests: aedes as the broker, LevelDB in a temp dir, UDP and
 * HTTP on 127.0.0.1, its log lines kept for assertions, and an authorised fetch of the admin API.
 */
import type { TestContext } from 'node:test';
import pino from 'pino';
import { createBridge, type Bridge } from '../../src/bridge.js';
import { MqttSnClient } from '../../src/client/client.js';
import { loadConfig } from '../../src/config/load.js';
import { freePort, startAedes, uniqueClientId, withTempDir, type AedesHandle } from '../helpers/index.js';
import { freeUdpPort } from './gateway-process.js';

export const TOKEN = 'admin-token-0123456789abcdef';

export interface Rig {
  bridge: Bridge;
  udpPort: number;
  base: string;
  broker: AedesHandle;
  dataDir: string;
  args: string[];
  /** Log lines the bridge wrote (JSON). */
  lines: Array<Record<string, unknown>>;
  device(clientId: string): Promise<MqttSnClient>;
  /** Stops the bridge now (the test's end then does not stop it again). */
  stop(): Promise<void>;
  /** An authorised request; `auth` overrides the Authorization header (null: none). */
  api(method: string, route: string, body?: unknown, auth?: string | null): Promise<Response>;
}

export async function startRig(t: TestContext, extraArgs: string[], broker?: AedesHandle): Promise<Rig> {
  if (!broker) {
    broker = await startAedes();
    t.after(() => broker!.close());
  }
  const udpPort = await freeUdpPort();
  const httpPort = await freePort();
  const dataDir = withTempDir(t, 'admin-');
  const args = [
    '--data-dir',
    dataDir,
    '--listen',
    `127.0.0.1:${udpPort}`,
    '--broker',
    broker.url,
    '--mqtt-version',
    '4',
    '--uplink-client-id',
    uniqueClientId('gw'),
    '--metrics',
    `127.0.0.1:${httpPort}`,
    ...extraArgs,
  ];
  const lines: Array<Record<string, unknown>> = [];
  const log = pino(
    { level: 'info' },
    { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
  );
  const config = await loadConfig({ argv: args, env: {} });
  const bridge = await createBridge(config, { logger: log });
  let stopped = false;
  t.after(() => (stopped ? undefined : bridge.stop()));
  const base = `http://127.0.0.1:${httpPort}`;
  return {
    bridge,
    udpPort,
    base,
    broker,
    dataDir,
    args,
    lines,
    async device(clientId) {
      const client = await MqttSnClient.open({ port: udpPort, clientId, retry: { intervalMs: 500 } });
      t.after(() => client.close());
      return client;
    },
    stop() {
      stopped = true;
      return bridge.stop();
    },
    api(method, route, body, auth = `Bearer ${TOKEN}`) {
      return fetch(base + route, {
        method,
        headers: auth === null ? {} : { Authorization: auth },
        body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      });
    },
  };
}
