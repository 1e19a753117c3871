import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { ConfigError } from './config/load.js';
import type { Config } from './config/schema.js';
import { parseHostPort } from './config/schema.js';
import { systemClock, type Clock } from './time.js';
import type { MessageSink } from './gateway/context.js';
import { Gateway, type LiveGatewaySettings } from './gateway/gateway.js';
import { describePeer } from './gateway/peer.js';
import type { Session, SessionState } from './gateway/session.js';
import { History } from './observe/history.js';
import type { RecentWarnings } from './observe/recent.js';
import { startObserveServer, type ObserveServer } from './observe/server.js';
import type { BridgeView } from './observe/view.js';
import { openStore, recoverStore, type Store } from './store/db.js';
import type { DownlinkQueueStore, SessionRecordStore } from './store/ports.js';
import { BatchWriter } from './store/batch-writer.js';
import { DeadLetters } from './store/dead-letter.js';
import { DownlinkStore } from './store/downlink.js';
import { Outbox } from './store/outbox.js';
import { SessionStore } from './store/sessions.js';
import { compileNamespace } from './topics/namespace.js';
import { buildPredefined } from './topics/predefined.js';
import { uplinkIdentity } from './uplink/identity.js';
import { SubscriptionRefusedError, Uplink } from './uplink/uplink.js';

/**
 * The one place that wires the device side to the broker side:
 * gateway → sink → outbox (LevelDB, group commit) → uplink (MQTT.js, QoS 1) → broker.
 */
export class Bridge {
  private constructor(
    private config: Config,
    readonly gateway: Gateway,
    readonly outbox: Outbox,
    readonly uplink: Uplink,
    private readonly store: Store,
    private readonly writer: BatchWriter,
    private readonly log: Logger,
    private readonly observe?: { server: ObserveServer; history: History },
    private readonly statsTimer?: NodeJS.Timeout,
  ) {}

  static async start(
    config: Config,
    brokerUrls: string[],
    log: Logger,
    {
      clock = systemClock,
      recent,
      version = '0.0.0',
      stores = {},
    }: { clock?: Clock; recent?: RecentWarnings; version?: string; stores?: StoreWrappers } = {},
  ): Promise<Bridge> {
    const namespace = compileNamespace(config.namespace, String(config.gatewayId), config.site);
    const store = await openStore(config.dataDir, { claim: true });
    let outbox: Outbox | undefined;
    // What start-up opened so far, closed again if a later step fails (a port already taken): a
    // gateway without its listeners must exit, not live on as a zombie with only the uplink up.
    let started: { uplink?: Uplink; gateway?: Gateway } = {};
    try {
      const identity = await uplinkIdentity(store, {
        configured: config.broker.clientId,
        hostname: hostname(),
        gatewayId: config.gatewayId,
      });
      const uplinkClientId = identity.clientId;
      log.info({ clientId: uplinkClientId, source: identity.source }, 'uplink client id');
      const deadLetters = await DeadLetters.open(store, { maxEntries: config.outbox.maxDeadLetters });
      outbox = await Outbox.open(store, {
        gatewayId: uplinkClientId,
        logger: log.child({ component: 'outbox' }),
        maxMessages: config.outbox.maxMessages,
        maxBytes: config.outbox.maxBytes,
        ttlMs: config.outbox.ttlSeconds * 1000,
        whenFull: config.outbox.policy,
        clock,
        recover: async () => {
          if (await recoverStore(store, config.dataDir))
            log.warn({ dataDir: config.dataDir }, 'outbox: reopened the database after write failures');
        },
      });
      const presenceTopic = namespace.root
        ? `${namespace.root}$gateway/${uplinkClientId}/status`
        : `mqttsn-bridge/${uplinkClientId}/status`;
      const uplink = new Uplink(
        {
          brokers: brokerUrls,
          clientId: uplinkClientId,
          protocolVersion: config.broker.protocolVersion,
          username: config.broker.username,
          password: config.broker.password,
          tls: await loadTls(config),
          keepaliveSeconds: config.broker.keepaliveSeconds,
          // A connect attempt into a blackhole must not outlast the keep-alive we promise to detect it in.
          connectTimeoutMs: Math.min(30_000, Math.max(2_000, config.broker.keepaliveSeconds * 1000)),
          window: config.broker.window,
          reconnect: { initialMs: config.broker.reconnectInitialMs, maxMs: config.broker.reconnectMaxMs },
          presence: { topic: presenceTopic, online: 'online', offline: 'offline' },
          sessionExpirySeconds: config.broker.sessionExpirySeconds,
          deadLetters,
          now: () => clock.now(),
          wallNow: () => clock.wallNow(),
        },
        outbox,
        log.child({ component: 'uplink' }),
      );
      const opened = outbox;
      const sink: MessageSink = {
        append(message, onCommitted) {
          if (message.qos <= 0 && !config.outbox.bufferQos0 && uplink.state !== 'connected') return 'dropped';
          // The broker would refuse it (or close the link on it): tell the device now, not never.
          if (!uplink.fits(message)) return 'too-large';
          return opened.append(message, onCommitted);
        },
      };
      const writer = new BatchWriter(store);
      const gateway = new Gateway(
        {
          ...liveGatewaySettings(config),
          gatewayId: config.gatewayId,
          listen: config.listen.map((text) => parseHostPort(text)!),
          anonymousClientId: config.anonymousClientId,
          namespace,
          advertise: config.advertise && {
            ...parseHostPort(config.advertise.address)!,
            intervalSeconds: config.advertise.intervalSeconds,
          },
        },
        {
          sink,
          downlinkStore: wrap(stores.downlink, await DownlinkStore.open(store, writer)),
          sessionStore: wrap(stores.sessions, new SessionStore(store, writer)),
          broker: {
            // Device filters fan in to one broker subscription each, at QoS 2 so the device's own
            // subscription QoS decides (delivery QoS = the lower of the two).
            // Resolves false only when the broker refused the filter; the device then hears so.
            subscribe: (filter) =>
              uplink.subscribe(filter, 2).then(
                () => true,
                (err: unknown) => {
                  if (err instanceof SubscriptionRefusedError) return false;
                  log.warn({ err, filter }, 'broker subscribe failed');
                  return true;
                },
              ),
            unsubscribe: (filter) =>
              void uplink
                .unsubscribe(filter)
                .catch((err: unknown) => log.warn({ err, filter }, 'broker unsubscribe failed')),
          },
          log: log.child({ component: 'gateway' }),
          clock,
          onStateChange: config.presenceTopic ? presencePublisher(config.presenceTopic, opened) : undefined,
        },
      );
      // The broker hears PUBACK / PUBREC only after the copies for the devices are on disk.
      // A failed write is passed on: the uplink then does not acknowledge, and the broker redelivers.
      uplink.handleMessages((topic, payload, packet, done) =>
        gateway.routeFromBroker(topic, payload, Math.min(packet.qos, 2) as 0 | 1 | 2, packet.retain, done),
      );
      // The backlog on disk drains first: the uplink reads the outbox from its oldest entry.
      started = { uplink, gateway };
      uplink.start();
      await gateway.start();
      const statsTimer = config.statsTopic
        ? setInterval(
            () => publishStats(config.statsTopic!, gateway, opened, uplink, clock),
            config.statsIntervalSeconds * 1000,
          ).unref()
        : undefined;
      const observe = config.metrics
        ? await startObservability(config, gateway, opened, uplink, log, recent, version, clock)
        : undefined;
      return new Bridge(config, gateway, outbox, uplink, store, writer, log, observe, statsTimer);
    } catch (err) {
      await started.gateway?.close(0).catch(() => undefined);
      await started.uplink?.stop().catch(() => undefined);
      await outbox?.close().catch(() => undefined);
      await store.close().catch(() => undefined);
      throw err;
    }
  }

  /**
   * SIGHUP: applies what can change while running (predefined topics, the allow-list, limits,
   * downlink timings, the log level) and returns the settings that changed but need a restart.
   */
  reload(next: Config): { applied: string[]; needsRestart: string[] } {
    const applied: string[] = [];
    const needsRestart: string[] = [];
    for (const key of Object.keys(next) as Array<keyof Config>) {
      if (JSON.stringify(next[key]) === JSON.stringify(this.config[key])) continue;
      (LIVE_SETTINGS.has(key) ? applied : needsRestart).push(key);
    }
    this.gateway.reconfigure(liveGatewaySettings(next));
    this.log.level = next.logLevel;
    this.config = {
      ...this.config,
      ...Object.fromEntries([...LIVE_SETTINGS].map((key) => [key, next[key]])),
    };
    return { applied, needsRestart };
  }

  /**
   * Graceful stop: no new datagrams, finish the commit under way (its PUBACKs still go out), close
   * the uplink cleanly, close the store. Every step is bounded: one that does not finish in time (a
   * half-open broker link, a stuck disk) is logged and left behind, so a stop always ends.
   */
  async stop(): Promise<void> {
    this.gateway.stopAccepting();
    clearInterval(this.statsTimer);
    this.observe?.history.stop();
    const step = (name: string, ms: number, work: () => Promise<unknown> | undefined): Promise<void> =>
      boundedStep(this.log, name, ms, work);
    await step('closing the HTTP server', 2000, () => this.observe?.server.close());
    await step('writing the commit under way', 5000, () => this.outbox.flush());
    await step('sending the last replies and closing UDP', 3000, () => this.gateway.close());
    await step('closing the uplink', 6000, () => this.uplink.stop());
    await step('closing the outbox', 5000, () => this.outbox.close());
    await step('writing sessions and downlink queues', 5000, () => this.writer.idle());
    await step('closing the database', 5000, () => this.store.close());
    this.log.info('stopped');
  }
}

/** Runs one shutdown step for at most `ms`; a step that fails or overruns is logged, not waited for. */
async function boundedStep(
  log: Logger,
  name: string,
  ms: number,
  work: () => Promise<unknown> | undefined,
): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ms);
  });
  try {
    const outcome = await Promise.race([Promise.resolve(work()).then(() => 'done' as const), timedOut]);
    if (outcome === 'timeout') log.warn({ step: name, timeoutMs: ms }, 'shutdown step timed out: going on');
  } catch (err) {
    log.warn({ err, step: name }, 'shutdown step failed: going on');
  } finally {
    clearTimeout(timer);
  }
}

/** Tests put stores that fail on purpose (store/faulty.ts) around the real ones. */
export interface StoreWrappers {
  downlink?: (real: DownlinkQueueStore) => DownlinkQueueStore;
  sessions?: (real: SessionRecordStore) => SessionRecordStore;
}

function wrap<T>(wrapper: ((real: T) => T) | undefined, real: T): T {
  return wrapper === undefined ? real : wrapper(real);
}

/** What a device's state means to someone watching it from the broker side. */
const PRESENCE: Partial<Record<SessionState, string>> = {
  active: 'online',
  asleep: 'asleep',
  // Awake is the moment an asleep device collects its messages: still "asleep" to observers.
  awake: 'asleep',
  disconnected: 'offline',
  lost: 'lost',
};

/** Device presence as retained messages, through the outbox: in order with the device's own messages. */
function presencePublisher(
  template: string,
  outbox: Outbox,
): (session: Session, previous: SessionState) => void {
  return (session, previous) => {
    const word = PRESENCE[session.state];
    if (word === undefined || word === PRESENCE[previous]) return;
    outbox.append({
      clientId: session.clientId,
      topic: template.replaceAll('{clientId}', session.clientId),
      payload: Buffer.from(word),
      retain: true,
      qos: 1,
    });
  };
}

/** Periodic gateway statistics (retained JSON) for dashboards that read the broker rather than /metrics. */
function publishStats(topic: string, gateway: Gateway, outbox: Outbox, uplink: Uplink, clock: Clock): void {
  const devices: Record<string, number> = {};
  for (const session of gateway.sessions.all()) devices[session.state] = (devices[session.state] ?? 0) + 1;
  const { messages, bytes, oldestReceivedAt, dropped } = outbox.stats;
  const stats = gateway.stats;
  const payload = {
    time: new Date(clock.wallNow()).toISOString(),
    devices,
    received: {
      'qos-1': stats.publishIn[0],
      qos0: stats.publishIn[1],
      qos1: stats.publishIn[2],
      qos2: stats.publishIn[3],
    },
    delivered: stats.downlinkDelivered,
    outbox: {
      messages,
      bytes,
      oldestAgeSeconds:
        oldestReceivedAt === null ? 0 : Math.round((clock.wallNow() - oldestReceivedAt) / 1000),
      dropped,
    },
    uplink: { state: uplink.state, reconnects: uplink.stats.reconnects },
    malformed: stats.malformed,
  };
  outbox.append({ clientId: '', topic, payload: Buffer.from(JSON.stringify(payload)), retain: true, qos: 0 });
}

/** Settings a SIGHUP applies without a restart. */
const LIVE_SETTINGS = new Set<keyof Config>([
  'predefined',
  'allowClients',
  'limits',
  'downlink',
  'logLevel',
  'deviceSessionExpirySeconds',
  'idleSessionExpirySeconds',
  'allowQosMinusOne',
  'takeoverProbeMs',
]);

function liveGatewaySettings(config: Config): LiveGatewaySettings {
  return {
    predefined: buildPredefined(
      config.predefined.map((p) => ({ clientId: p.clientId, topicId: p.id, topic: p.topic })),
    ),
    allowClients: config.allowClients,
    sessionExpiryMs: config.deviceSessionExpirySeconds * 1000,
    idleSessionExpiryMs: config.idleSessionExpirySeconds * 1000,
    allowQosMinusOne: config.allowQosMinusOne,
    takeoverProbeMs: config.takeoverProbeMs,
    limits: config.limits,
    downlink: {
      retryMs: config.downlink.retrySeconds * 1000,
      maxRetries: config.downlink.maxRetries,
      maxQueuedPerClient: config.downlink.maxQueuedPerClient,
      maxBytesPerClient: config.downlink.maxBytesPerClient,
      maxBytes: config.downlink.maxBytes,
      policy: config.downlink.policy,
      maxPacketSize: config.downlink.maxPacketSize,
      bufferQos0ForSleepers: config.downlink.bufferQos0ForSleepers,
    },
  };
}

/** /metrics, /healthz and the status page, reading plain counters at scrape time. */
async function startObservability(
  config: Config,
  gateway: Gateway,
  outbox: Outbox,
  uplink: Uplink,
  log: Logger,
  recent: RecentWarnings | undefined,
  version: string,
  clock: Clock,
): Promise<{ server: ObserveServer; history: History }> {
  const view: BridgeView = {
    startedAt: clock.wallNow(),
    version,
    gateway: () => gateway.stats,
    *devices() {
      for (const session of gateway.sessions.all()) {
        yield {
          clientId: session.clientId,
          state: session.state,
          address: session.peer.port === 0 ? '' : describePeer(session.peer),
          lastSeen: session.lastSeenWall,
          messagesIn: session.messagesIn,
          queued: session.outgoing.length,
        };
      }
    },
    outbox: () => outbox.stats,
    uplink: () => uplink.stats,
  };
  const history = new History(view);
  history.start();
  const { host, port } = parseHostPort(config.metrics!)!;
  const server = await startObserveServer({
    host,
    port,
    view,
    history,
    recent: recent ?? { entries: () => [] },
    log: log.child({ component: 'http' }),
    gatewayAccepting: () => gateway.isAccepting,
    outboxQuota: { maxMessages: config.outbox.maxMessages, maxBytes: config.outbox.maxBytes },
    stallMs: config.broker.stallSeconds * 1000,
  });
  return { server, history };
}

async function loadTls(
  config: Config,
): Promise<{ ca?: Buffer; cert?: Buffer; key?: Buffer; rejectUnauthorized: boolean } | undefined> {
  const { ca, cert, key, rejectUnauthorized } = config.broker;
  if (!ca && !cert && !key && rejectUnauthorized) return undefined;
  const read = async (file: string | undefined, what: string): Promise<Buffer | undefined> => {
    if (!file) return undefined;
    try {
      return await readFile(file);
    } catch (err) {
      // A configuration problem (exit code 2): retrying cannot help, so supervisors should not.
      throw new ConfigError(
        `broker.${what}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
      );
    }
  };
  return {
    ca: await read(ca, 'ca'),
    cert: await read(cert, 'cert'),
    key: await read(key, 'key'),
    rejectUnauthorized,
  };
}
