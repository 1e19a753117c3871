import { hostname } from 'node:os';
import mqttPacket from 'mqtt-packet';
import type { Logger } from 'pino';
import type { Config } from './config/schema.js';
import { liveSettingChanges } from './config/live.js';
import { Gateway, type GatewayDeps } from './gateway/gateway.js';
import type { PacketTrace } from './gateway/trace.js';
import { createLogger } from './observe/logger.js';
import type { RecentWarnings } from './observe/recent.js';
import { openStore, type Store } from './store/db.js';
import type { Outbox } from './store/outbox.js';
import { systemClock, type Clock } from './time.js';
import { uplinkIdentity } from './uplink/identity.js';
import type { Uplink } from './uplink/uplink.js';
import { applyTraceClients, createAdmin, createTrace } from './wiring/admin.js';
import {
  brokerSubscriptions,
  deviceSink,
  dropRefusedFilters,
  routeBrokerMessages,
} from './wiring/adapters.js';
import { gatewaySettings, liveGatewaySettings } from './wiring/gateway-settings.js';
import type { Observability } from './wiring/observability.js';
import { presencePublisher } from './wiring/presence.js';
import { boundedStep } from './wiring/shutdown.js';
import { startStatsPublisher } from './wiring/stats.js';
import { openStores, type StoreWrappers, type Stores } from './wiring/stores.js';
import { loadTls } from './wiring/tls.js';
import { createUplink } from './wiring/uplink.js';

export type { StoreWrappers } from './wiring/stores.js';

/** What a test or an embedder may substitute; everything else comes from the configuration. */
export interface BridgeParts {
  /** Time for every component (default: the system clock). */
  clock?: Clock;
  /** Default: a logger at `config.logLevel` in `config.logFormat`, teeing warnings into `recent`. */
  logger?: Logger;
  /** Brokers the uplink connects to (default `config.broker.urls`; the CLI passes its embedded broker). */
  brokerUrls?: string[];
  /** Shown on /metrics and the status page (default 0.0.0). */
  version?: string;
  /** Where the status page reads recent warnings from. */
  recent?: RecentWarnings;
  /** Wrappers around the real stores, e.g. ones that fail on purpose (store/faulty.ts). */
  stores?: StoreWrappers;
  /** A wrapper around the real device-message sink (the outbox), e.g. one that fails on purpose. */
  sink?: (real: GatewayDeps['sink']) => GatewayDeps['sink'];
  /** A wrapper around the real broker-side subscriptions (the uplink), e.g. to watch them. */
  brokerSubscriptions?: (real: GatewayDeps['broker']) => GatewayDeps['broker'];
}

/** What start-up has opened so far; closed again in reverse order when a later step fails. */
interface Opened {
  db?: Store;
  stores?: Stores;
  uplink?: Uplink;
  gateway?: Gateway;
  observability?: Observability;
  statsTimer?: NodeJS.Timeout;
}

/**
 * The one place that wires the device side to the broker side:
 * gateway → sink → outbox (LevelDB, group commit) → uplink (MQTT.js, QoS 1) → broker, and back:
 * broker → uplink → gateway → downlink queues (LevelDB) → devices. The CLI and the tests use it.
 */
export async function createBridge(config: Config, parts: BridgeParts = {}): Promise<Bridge> {
  // mqtt-packet's first write would otherwise build a table of 65,536 two-byte Buffers, one per packet
  // id (6 MB of live heap, a quarter of an idle gateway's, marked again by every major GC), to save a
  // 2-byte allocation per packet. Process-wide: mqtt-packet has no per-writer setting.
  mqttPacket.writeToStream.cacheNumbers = false;
  const clock = parts.clock ?? systemClock;
  const log =
    parts.logger ??
    createLogger(config.logLevel, undefined, { recent: parts.recent, format: config.logFormat });
  const opened: Opened = {};
  try {
    // Loaded only when used: prom-client and the status page cost ~10 MB of RSS a gateway without
    // --metrics (the default) does not need. Loaded before the gateway starts, so a gateway that
    // answers on UDP has its HTTP server up within the same few steps, as when it was a static import.
    const observe = config.metrics === undefined ? undefined : await import('./wiring/observability.js');
    opened.db = await openStore(config.dataDir, { claim: true });
    const identity = await uplinkIdentity(opened.db, {
      configured: config.broker.clientId,
      hostname: hostname(),
      gatewayId: config.gatewayId,
    });
    log.info({ clientId: identity.clientId, source: identity.source }, 'uplink client id');
    const stores = await openStores(opened.db, config, {
      outboxId: identity.clientId,
      clock,
      log,
      wrappers: parts.stores,
    });
    opened.stores = stores;
    const settings = gatewaySettings(config);
    const uplink = createUplink(config, {
      brokerUrls: parts.brokerUrls ?? config.broker.urls,
      clientId: identity.clientId,
      namespace: settings.namespace,
      tls: await loadTls(config),
      outbox: stores.outbox,
      deadLetters: stores.deadLetters,
      clock,
      log,
    });
    const trace = createTrace(config, log, clock);
    const gateway = new Gateway(settings, {
      sink: (parts.sink ?? ((real) => real))(deviceSink(config, uplink, stores.outbox)),
      downlinkStore: stores.downlink,
      sessionStore: stores.sessions,
      broker: (parts.brokerSubscriptions ?? ((real) => real))(brokerSubscriptions(uplink, log)),
      log: log.child({ component: 'gateway' }),
      clock,
      onStateChange: config.presenceTopic
        ? presencePublisher(config.presenceTopic, stores.outbox)
        : undefined,
    });
    gateway.tap = trace;
    routeBrokerMessages(uplink, gateway);
    dropRefusedFilters(uplink, gateway, log);
    // The backlog on disk drains first: the uplink reads the outbox from its oldest entry.
    opened.uplink = uplink;
    uplink.start();
    opened.gateway = gateway;
    await gateway.start();
    const sources = { gateway, outbox: stores.outbox, uplink, clock };
    if (config.statsTopic)
      opened.statsTimer = startStatsPublisher(config.statsTopic, config.statsIntervalSeconds, sources);
    const admin = await createAdmin(config, gateway, trace, { log, clock });
    if (observe !== undefined && config.metrics !== undefined) {
      const { startObservability } = observe;
      opened.observability = await startObservability({ ...config, metrics: config.metrics }, sources, {
        log,
        recent: parts.recent,
        version: parts.version ?? '0.0.0',
        admin,
        traceSuppressedLines: () => trace.suppressedLines,
      });
    }
    return new Bridge(config, { ...opened, db: opened.db, stores, uplink, gateway, trace }, log);
  } catch (err) {
    // A gateway without its listeners (a port already taken) must exit, not live on as a zombie
    // with only the uplink up.
    await closeOpened(opened);
    throw err;
  }
}

async function closeOpened(opened: Opened): Promise<void> {
  clearInterval(opened.statsTimer);
  opened.observability?.history.stop();
  await opened.observability?.server.close().catch(() => undefined);
  await opened.gateway?.close(0).catch(() => undefined);
  await opened.uplink?.stop().catch(() => undefined);
  await opened.stores?.outbox.close().catch(() => undefined);
  await opened.stores?.writer.idle().catch(() => undefined);
  await opened.db?.close().catch(() => undefined);
}

type Running = Required<Pick<Opened, 'db' | 'stores' | 'uplink' | 'gateway'>> &
  Opened & { trace: PacketTrace };

/** A running gateway: its parts for observers and tests, SIGHUP's reload, and a bounded stop. */
export class Bridge {
  /** @internal Built by createBridge. */
  constructor(
    private config: Config,
    private readonly parts: Running,
    private readonly log: Logger,
  ) {}

  get gateway(): Gateway {
    return this.parts.gateway;
  }
  get outbox(): Outbox {
    return this.parts.stores.outbox;
  }
  get uplink(): Uplink {
    return this.parts.uplink;
  }
  /** Where the status page / metrics listen, when `metrics` is configured. */
  get httpAddress(): { host: string; port: number } | undefined {
    return this.parts.observability?.server.address;
  }

  /**
   * SIGHUP: applies what can change while running (the settings marked live in the settings
   * table) and returns the settings that changed but need a restart.
   */
  reload(next: Config): { applied: string[]; needsRestart: string[] } {
    const { applied, needsRestart, config } = liveSettingChanges(this.config, next);
    this.gateway.reconfigure(liveGatewaySettings(config));
    applyTraceClients(this.parts.trace, config.traceClients, this.log);
    this.log.level = config.logLevel;
    this.config = config;
    return { applied, needsRestart };
  }

  /**
   * Graceful stop: no new datagrams, finish the commit under way (its PUBACKs still go out), close
   * the uplink cleanly, close the store. Every step is bounded: one that does not finish in time (a
   * half-open broker link, a stuck disk) is logged and left behind, so a stop always ends.
   */
  async stop(): Promise<void> {
    const { gateway, uplink, stores, db, observability, statsTimer } = this.parts;
    gateway.stopAccepting();
    clearInterval(statsTimer);
    observability?.history.stop();
    const step = (name: string, ms: number, work: () => Promise<unknown> | undefined): Promise<void> =>
      boundedStep(this.log, name, ms, work);
    await step('closing the HTTP server', 2000, () => observability?.server.close());
    await step('writing the commit under way', 5000, () => stores.outbox.flush());
    await step('sending the last replies and closing UDP', 3000, () => gateway.close());
    await step('closing the uplink', 6000, () => uplink.stop());
    await step('closing the outbox', 5000, () => stores.outbox.close());
    await step('writing sessions and downlink queues', 5000, () => stores.writer.idle());
    await step('closing the database', 5000, () => db.close());
    this.log.info('stopped');
  }
}
