import type { TestContext } from 'node:test';
import pino from 'pino';
import { ManualClock } from '../../src/gateway/clock.js';
import type { MessageSink } from '../../src/gateway/context.js';
import { Gateway, type GatewayConfig } from '../../src/gateway/gateway.js';
import { openStore } from '../../src/store/db.js';
import { Outbox, type OutboxEntry, type OutboxOptions } from '../../src/store/outbox.js';
import { compileNamespace } from '../../src/topics/namespace.js';
import { buildPredefined } from '../../src/topics/predefined.js';
import { MqttSnTestClient, withTempDir } from '../helpers/index.js';

export interface GatewayFixture {
  gateway: Gateway;
  outbox: Outbox;
  clock: ManualClock;
  port: number;
  client(family?: 'udp4' | 'udp6'): Promise<MqttSnTestClient>;
  /** Everything the outbox holds, in order. */
  stored(): Promise<OutboxEntry[]>;
  /** Lets the manual clock run `ms` and fires what is due. */
  advance(ms: number): void;
}

export interface FixtureOptions {
  config?: Partial<GatewayConfig>;
  outbox?: Partial<OutboxOptions>;
  /** Wraps the outbox (e.g. to play a link that is down). */
  sink?: (outbox: Outbox) => MessageSink;
  listen?: GatewayConfig['listen'];
}

/** A gateway on 127.0.0.1:<ephemeral> with a real LevelDB outbox in a temp dir; no uplink. */
export async function startGateway(t: TestContext, options: FixtureOptions = {}): Promise<GatewayFixture> {
  const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const store = await openStore(withTempDir(t, 'mqttsn-gw-'));
  const outbox = await Outbox.open(store, { gatewayId: 'test-gw', logger: log, ...options.outbox });
  const clock = new ManualClock();
  const config: GatewayConfig = {
    gatewayId: 7,
    listen: options.listen ?? [{ host: '127.0.0.1', port: 0 }],
    limits: { maxClients: 100, maxTopicsPerClient: 16, maxPacketSize: 1024, maxClientIdLength: 23 },
    anonymousClientId: '$anonymous',
    namespace: compileNamespace('mqttsn/{clientId}/', '7'),
    predefined: buildPredefined([
      { topicId: 5, topic: 'factory/alarms' },
      { clientId: 'special', topicId: 5, topic: 'special/five' },
    ]),
    ...options.config,
  };
  const gateway = new Gateway(config, options.sink ? options.sink(outbox) : outbox, log, clock);
  await gateway.start();
  const clients: MqttSnTestClient[] = [];
  t.after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await gateway.close();
    await outbox.close();
    await store.close();
  });
  const port = gateway.addresses()[0]!.port;
  return {
    gateway,
    outbox,
    clock,
    port,
    async client(family = 'udp4') {
      const address = gateway.addresses().find((a) => (a.family === 'IPv6') === (family === 'udp6'))!;
      const c = await MqttSnTestClient.create({ gatewayPort: address.port, family });
      clients.push(c);
      return c;
    },
    stored: () => outbox.read(0, 1_000_000),
    advance(ms) {
      clock.advance(ms);
      gateway.tick();
    },
  };
}
