import { createServer, type AddressInfo, type Socket } from 'node:net';
import type { TestContext } from 'node:test';
import pino, { type Logger } from 'pino';
import { createBridge, type Bridge, type BridgeParts } from '../../src/bridge.js';
import { validateConfig } from '../../src/config/load.js';
import type { Config, ConfigInput } from '../../src/config/schema.js';
import type { Gateway, GatewayConfig } from '../../src/gateway/gateway.js';
import { BatchWriter } from '../../src/store/batch-writer.js';
import { openStore, type Store } from '../../src/store/db.js';
import type { Outbox, OutboxEntry } from '../../src/store/outbox.js';
import type { DownlinkQueueStore } from '../../src/store/ports.js';
import { ManualClock } from '../../src/time.js';
import { MqttSnTestClient, startAedes, withTempDir, type AedesHandle } from '../helpers/index.js';

/** A message the gateway accepted; `clientId` is known while the outbox holds it. */
export type StoredMessage = Pick<OutboxEntry, 'topic' | 'payload' | 'retain'> & { clientId?: string };

export interface GatewayFixture {
  gateway: Gateway;
  outbox: Outbox;
  bridge: Bridge;
  clock: ManualClock;
  port: number;
  /** The in-process broker (only with `broker: true`). */
  broker?: AedesHandle;
  /** Filters the gateway asked the broker side to subscribe / unsubscribe, in order. */
  brokerCalls: string[];
  client(family?: 'udp4' | 'udp6', bindHost?: string): Promise<MqttSnTestClient>;
  /**
   * Every device message the gateway accepted, in order: those the uplink already handed to the
   * broker (with `broker`), then those the outbox still holds.
   */
  stored(): Promise<StoredMessage[]>;
  /** Lets the manual clock run `ms` and fires what is due. */
  advance(ms: number): void;
  /** Stops the bridge, then starts it again on the same data dir and UDP ports. */
  restart(): Promise<void>;
}

/** Overrides in the gateway's own terms (milliseconds, compiled namespace), as the tests write them. */
export type GatewayOverrides = Partial<Omit<GatewayConfig, 'predefined' | 'listen'>>;

export interface FixtureOptions {
  config?: GatewayOverrides;
  outbox?: Partial<Config['outbox']>;
  listen?: GatewayConfig['listen'];
  /** Start aedes in-process; the bridge's real uplink connects to it (else it never gets connected). */
  broker?: boolean;
  /** The gateway's logger (default: silent, or TEST_LOG_LEVEL). */
  log?: Logger;
  /** Data dir to use (default: a fresh temp dir), e.g. one prepared with an older format. */
  dir?: string;
  /** Runs on every open, before the bridge starts: writes what an older version left on disk. */
  seed?: (store: Store, writer: BatchWriter) => Promise<void>;
  /** Wraps the device-message sink (e.g. with one that throws on purpose). */
  sink?: BridgeParts['sink'];
  /** Wraps the downlink store (e.g. with one that fails on purpose). */
  downlinkStore?: (real: DownlinkQueueStore) => DownlinkQueueStore;
}

/** The uplink's client id, and so the prefix of every outbox message id. */
const UPLINK_CLIENT_ID = 'fixture-gw';

/**
 * A bridge built by createBridge — the real wiring, as the CLI runs it — on 127.0.0.1:<ephemeral>
 * with a real LevelDB in a temp dir and a manual clock. With `broker`, its uplink talks to a real
 * aedes; without, its uplink waits on a listener that never answers, so messages stay in the outbox.
 */
export async function startGateway(t: TestContext, options: FixtureOptions = {}): Promise<GatewayFixture> {
  const log = options.log ?? pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const dir = options.dir ?? withTempDir(t, 'mqttsn-gw-');
  const clock = new ManualClock();
  const brokerCalls: string[] = [];
  const broker = options.broker ? await startAedes() : undefined;
  const nowhere = broker ? undefined : await silentListener();
  const brokerUrl = broker?.url ?? nowhere!.url;
  const delivered: StoredMessage[] = [];
  broker?.broker.on('publish', (packet, client) => {
    if (client?.id !== UPLINK_CLIENT_ID || packet.topic.includes('$gateway/')) return;
    delivered.push({ topic: packet.topic, payload: Buffer.from(packet.payload), retain: packet.retain });
  });
  let listen = options.listen ?? [{ host: '127.0.0.1', port: 0 }];

  let bridge: Bridge;
  const open = async (): Promise<void> => {
    if (options.seed) await seedStore(dir, options.seed);
    bridge = await createBridge(fixtureConfig(dir, listen, brokerUrl, options), {
      clock,
      logger: log,
      stores: { downlink: options.downlinkStore },
      sink: options.sink,
      brokerSubscriptions: (real) => ({
        subscribe: (filter) => {
          brokerCalls.push(`+${filter}`);
          return real.subscribe(filter);
        },
        unsubscribe: (filter) => {
          brokerCalls.push(`-${filter}`);
          real.unsubscribe(filter);
        },
      }),
    });
    // A restart comes back on the same ports, as a real gateway would.
    listen = bridge.gateway.addresses().map(({ address, port }) => ({ host: address, port }));
  };
  await open();

  const clients: MqttSnTestClient[] = [];
  t.after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await bridge.stop();
    await broker?.close();
    await nowhere?.close();
  });
  return {
    get gateway() {
      return bridge.gateway;
    },
    get outbox() {
      return bridge.outbox;
    },
    get bridge() {
      return bridge;
    },
    clock,
    get port() {
      return bridge.gateway.addresses()[0]!.port;
    },
    broker,
    brokerCalls,
    async client(family = 'udp4', bindHost) {
      const address = bridge.gateway.addresses().find((a) => (a.family === 'IPv6') === (family === 'udp6'))!;
      const c = await MqttSnTestClient.create({ gatewayPort: address.port, family, bindHost });
      clients.push(c);
      return c;
    },
    stored: async () => [...delivered, ...(await bridge.outbox.read(0, 1_000_000))],
    advance(ms) {
      clock.advance(ms);
      bridge.gateway.tick();
    },
    async restart() {
      await bridge.stop();
      await open();
    },
  };
}

/** The configuration every fixture starts from, plus the test's overrides, validated as the CLI's is. */
function fixtureConfig(
  dir: string,
  listen: GatewayConfig['listen'],
  brokerUrl: string,
  options: FixtureOptions,
): Config {
  const o = options.config ?? {};
  const input: ConfigInput = {
    dataDir: dir,
    listen: listen.map(({ host, port }) => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`)),
    gatewayId: o.gatewayId ?? 7,
    namespace: o.namespace?.template ?? 'mqttsn/{clientId}/',
    anonymousClientId: o.anonymousClientId ?? '$anonymous',
    predefined: [
      { id: 5, topic: 'factory/alarms' },
      { clientId: 'special', id: 5, topic: 'special/five' },
    ],
    allowClients: [...(o.allowClients ?? [])],
    allowQosMinusOne: [...(o.allowQosMinusOne ?? [])],
    takeoverProbeMs: o.takeoverProbeMs,
    deviceSessionExpirySeconds: (o.sessionExpiryMs ?? 7 * 86_400_000) / 1000,
    idleSessionExpirySeconds: o.idleSessionExpiryMs === undefined ? undefined : o.idleSessionExpiryMs / 1000,
    limits: o.limits ?? {
      maxClients: 100,
      maxTopicsPerClient: 16,
      maxPacketSize: 1024,
      maxClientIdLength: 23,
    },
    downlink: o.downlink && {
      retrySeconds: o.downlink.retryMs / 1000,
      maxRetries: o.downlink.maxRetries,
      maxQueuedPerClient: o.downlink.maxQueuedPerClient,
      maxBytesPerClient: o.downlink.maxBytesPerClient,
      maxBytes: o.downlink.maxBytes,
      policy: o.downlink.policy,
      maxPacketSize: o.downlink.maxPacketSize,
      bufferQos0ForSleepers: o.downlink.bufferQos0ForSleepers,
    },
    advertise: o.advertise && {
      address: `${o.advertise.host}:${o.advertise.port}`,
      intervalSeconds: o.advertise.intervalSeconds,
    },
    outbox: options.outbox,
    broker: {
      urls: [brokerUrl],
      clientId: UPLINK_CLIENT_ID,
      protocolVersion: 4, // aedes speaks MQTT 3.1.1 only
      reconnectInitialMs: 50,
      reconnectMaxMs: 500,
    },
  };
  return validateConfig(input);
}

/** What an older version left on disk, written before the bridge opens the database. */
async function seedStore(dir: string, seed: NonNullable<FixtureOptions['seed']>): Promise<void> {
  const store = await openStore(dir);
  const writer = new BatchWriter(store);
  try {
    await seed(store, writer);
    await writer.idle();
  } finally {
    await store.close();
  }
}

/**
 * A TCP listener on 127.0.0.1 that accepts and never answers: without a broker, the uplink's one
 * connect attempt waits there (bounded by its connect timeout) instead of failing and logging a
 * retry every few milliseconds, so the gateway's own log lines stay countable.
 */
async function silentListener(): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `mqtt://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
