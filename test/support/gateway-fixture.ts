import type { TestContext } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import pino, { type Logger } from 'pino';
import { ManualClock } from '../../src/gateway/clock.js';
import type { BrokerSubscriptions, MessageSink } from '../../src/gateway/context.js';
import { Gateway, type GatewayConfig } from '../../src/gateway/gateway.js';
import { BatchWriter } from '../../src/store/batch-writer.js';
import { openStore, type Store } from '../../src/store/db.js';
import { DownlinkStore } from '../../src/store/downlink.js';
import { Outbox, type OutboxEntry, type OutboxOptions } from '../../src/store/outbox.js';
import { SessionStore } from '../../src/store/sessions.js';
import { compileNamespace } from '../../src/topics/namespace.js';
import { buildPredefined } from '../../src/topics/predefined.js';
import { MqttSnTestClient, startAedes, withTempDir, type AedesHandle } from '../helpers/index.js';

export interface GatewayFixture {
  gateway: Gateway;
  outbox: Outbox;
  clock: ManualClock;
  port: number;
  /** The in-process broker (only with `broker: true`). */
  broker?: AedesHandle;
  /** Filters the gateway asked the broker side to subscribe / unsubscribe, in order. */
  brokerCalls: string[];
  client(family?: 'udp4' | 'udp6', bindHost?: string): Promise<MqttSnTestClient>;
  /** Everything the outbox holds, in order. */
  stored(): Promise<OutboxEntry[]>;
  /** Lets the manual clock run `ms` and fires what is due. */
  advance(ms: number): void;
  /** Stops the gateway and its stores, then starts them again on the same data dir and UDP port. */
  restart(): Promise<void>;
}

export interface FixtureOptions {
  config?: Partial<GatewayConfig>;
  outbox?: Partial<OutboxOptions>;
  /** Wraps the outbox (e.g. to play a link that is down). */
  sink?: (outbox: Outbox) => MessageSink;
  listen?: GatewayConfig['listen'];
  /** Start aedes in-process and carry subscriptions to it over MQTT.js (a real broker, no uplink). */
  broker?: boolean;
  /** The gateway's logger (default: silent, or TEST_LOG_LEVEL). */
  log?: Logger;
  /** Data dir to use (default: a fresh temp dir), e.g. one prepared with an older format. */
  dir?: string;
  /** Runs on every open, before the gateway starts: writes what an older version left on disk. */
  seed?: (store: Store, writer: BatchWriter) => Promise<void>;
  /** Wraps the downlink store (e.g. with one that fails on purpose). */
  downlinkStore?: (real: DownlinkStore) => DownlinkStore;
}

/**
 * A gateway on 127.0.0.1:<ephemeral> with a real LevelDB (outbox, downlink queues, sessions) in a
 * temp dir and a manual clock. With `broker`, broker messages reach it through a real aedes.
 */
export async function startGateway(t: TestContext, options: FixtureOptions = {}): Promise<GatewayFixture> {
  const log = options.log ?? pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const dir = options.dir ?? withTempDir(t, 'mqttsn-gw-');
  const clock = new ManualClock();
  const brokerCalls: string[] = [];
  const broker = options.broker ? await startAedes() : undefined;
  let mqttClient: MqttClient | undefined;
  let listen = options.listen ?? [{ host: '127.0.0.1', port: 0 }];

  let store: Store;
  let outbox: Outbox;
  let writer: BatchWriter;
  let gateway: Gateway;
  const open = async (): Promise<void> => {
    store = await openStore(dir);
    outbox = await Outbox.open(store, { gatewayId: 'test-gw', logger: log, ...options.outbox });
    writer = new BatchWriter(store);
    await options.seed?.(store, writer);
    if (broker) {
      mqttClient = await mqtt.connectAsync(broker.url, {
        clientId: `fixture-${Math.random().toString(36).slice(2)}`,
        reconnectPeriod: 0,
      });
      // Acknowledge the broker only once the gateway has stored the message (as the uplink does).
      mqttClient.handleMessage = (packet, done) =>
        gateway.routeFromBroker(
          packet.topic,
          packet.payload as Buffer,
          Math.min(packet.qos, 2) as 0 | 1 | 2,
          packet.retain,
          () => done(),
        );
    }
    const brokerSide: BrokerSubscriptions = {
      subscribe: (filter) => {
        brokerCalls.push(`+${filter}`);
        mqttClient?.subscribeAsync(filter, { qos: 2 }).catch(() => undefined);
      },
      unsubscribe: (filter) => {
        brokerCalls.push(`-${filter}`);
        mqttClient?.unsubscribeAsync(filter).catch(() => undefined);
      },
    };
    const config: GatewayConfig = {
      gatewayId: 7,
      listen,
      limits: { maxClients: 100, maxTopicsPerClient: 16, maxPacketSize: 1024, maxClientIdLength: 23 },
      anonymousClientId: '$anonymous',
      namespace: compileNamespace('mqttsn/{clientId}/', '7'),
      predefined: buildPredefined([
        { topicId: 5, topic: 'factory/alarms' },
        { clientId: 'special', topicId: 5, topic: 'special/five' },
      ]),
      downlink: {
        retryMs: 10_000,
        maxRetries: 3,
        maxQueuedPerClient: 100,
        policy: 'drop-oldest',
        bufferQos0ForSleepers: true,
      },
      allowClients: [],
      sessionExpiryMs: 7 * 86_400_000,
      ...options.config,
    };
    gateway = new Gateway(config, {
      sink: options.sink ? options.sink(outbox) : outbox,
      downlinkStore: (options.downlinkStore ?? ((real) => real))(await DownlinkStore.open(store, writer)),
      sessionStore: new SessionStore(store, writer),
      broker: brokerSide,
      log,
      clock,
    });
    await gateway.start();
    // A restart comes back on the same ports, as a real gateway would.
    listen = gateway.addresses().map(({ address, port }) => ({ host: address, port }));
  };
  const close = async (): Promise<void> => {
    await gateway.close();
    await outbox.close();
    await writer.idle();
    await mqttClient?.endAsync(true);
    await store.close();
  };
  await open();

  const clients: MqttSnTestClient[] = [];
  t.after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await close();
    await broker?.close();
  });
  const fixture: GatewayFixture = {
    get gateway() {
      return gateway;
    },
    get outbox() {
      return outbox;
    },
    clock,
    get port() {
      return gateway.addresses()[0]!.port;
    },
    broker,
    brokerCalls,
    async client(family = 'udp4', bindHost) {
      const address = gateway.addresses().find((a) => (a.family === 'IPv6') === (family === 'udp6'))!;
      const c = await MqttSnTestClient.create({ gatewayPort: address.port, family, bindHost });
      clients.push(c);
      return c;
    },
    stored: () => outbox.read(0, 1_000_000),
    advance(ms) {
      clock.advance(ms);
      gateway.tick();
    },
    async restart() {
      await close();
      await open();
    },
  };
  return fixture;
}
