import type { Logger } from 'pino';
import { RateLimitedWarn } from '../log/rate-limit.js';
import type { DownlinkQueueStore, SessionRecordStore } from '../store/ports.js';
import { brokerTopicProblem } from '../topics/names.js';
import { Boundaries } from './boundary.js';
import { systemClock, type Clock } from './clock.js';
import { CommitTable } from './commits.js';
import { Delivery } from './delivery.js';
import { Discovery } from './discovery.js';
import { Dispatcher } from './dispatch.js';
import type { HandlerEnv } from './handlers/env.js';
import { ROUTES } from './handlers/index.js';
import { committed } from './handlers/publish.js';
import { Lifecycle } from './lifecycle.js';
import {
  DEFAULT_MAX_TAKEOVER_PROBES,
  DEFAULT_TAKEOVER_PROBE_MS,
  type BrokerSubscriptions,
  type GatewayConfig,
  type LiveGatewaySettings,
  type MessageSink,
  type Settings,
} from './options.js';
import { SessionPersistence } from './persistence.js';
import { TakeoverProbes } from './probes.js';
import { Sessions } from './registry.js';
import { restoreSessions } from './restore.js';
import { DownlinkRouter } from './routing.js';
import type { Session, SessionState } from './session.js';
import { GatewayStats } from './stats.js';
import { SubscriptionIndex } from './subscriptions.js';
import type { PacketTap } from './trace.js';
import { Transport } from './transport.js';
import { TimerWheel } from './wheel.js';

export type { AdvertiseOptions, GatewayConfig, ListenAddress, LiveGatewaySettings } from './options.js';
export type { PacketTap } from './trace.js';

/** What the gateway works with; the bridge passes the real ones, tests too. */
export interface GatewayDeps {
  /** Device messages on their way to the broker (the outbox). */
  sink: MessageSink;
  downlinkStore: DownlinkQueueStore;
  sessionStore: SessionRecordStore;
  /** Broker subscriptions (the uplink). */
  broker: BrokerSubscriptions;
  log: Logger;
  clock?: Clock;
  /** Told when a device's state changes (device presence, published by the bridge when configured). */
  onStateChange?: (session: Session, previous: SessionState) => void;
}

/**
 * The MQTT-SN side, composed of parts with one job each (docs/architecture.md):
 *
 *   Transport (UDP, size limit) → Dispatcher (route table, state guard, keep-alive) → handlers
 *   handlers → Lifecycle (state machine) · Delivery (downlink per device) · the sink (outbox)
 *   broker → DownlinkRouter → Delivery;  SessionPersistence / restoreSessions: CleanSession=0 on disk
 *
 * This class only builds them in order (each gets what it needs, nothing refers back) and keeps the
 * surface bridge.ts and the tests use. Knows nothing of the broker: device messages go to the sink.
 */
export class Gateway {
  readonly stats = new GatewayStats();
  readonly sessions: Sessions;
  readonly subscriptions: SubscriptionIndex;
  /** The session state machine; its kick() and forget() are the operator's controls. */
  readonly lifecycle: Lifecycle;
  private readonly settings: Settings;
  private readonly clock: Clock;
  private readonly wheel: TimerWheel;
  private readonly transport: Transport;
  private readonly dispatcher: Dispatcher;
  private readonly delivery: Delivery;
  private readonly router: DownlinkRouter;
  private readonly discovery: Discovery;
  private readonly persistence: SessionPersistence;
  private readonly warn: RateLimitedWarn;
  private tickTimer: NodeJS.Timeout | undefined;

  constructor(
    config: GatewayConfig,
    private readonly deps: GatewayDeps,
  ) {
    const { log, broker, downlinkStore } = deps;
    const settings: Settings = (this.settings = { current: config });
    const clock = (this.clock = deps.clock ?? systemClock);
    const stats = this.stats;
    const wheel = (this.wheel = new TimerWheel(clock.now()));
    const warn = (this.warn = new RateLimitedWarn(log, 10_000, () => clock.now()));
    const boundaries = new Boundaries(stats, warn);
    const transport = (this.transport = new Transport(
      log,
      stats,
      warn,
      () => settings.current.limits.maxPacketSize,
    ));
    const send = transport.send;
    const persistence = (this.persistence = new SessionPersistence(deps.sessionStore));
    // The registry's timers and removals reach parts built below: late-bound through these arrows.
    const sessions = (this.sessions = new Sessions(
      log,
      wheel,
      (clientId) => settings.current.namespace.prefixFor(clientId),
      config.limits.maxTopicsPerClient,
      (session) => boundaries.guard('timer', () => lifecycle.expired(session)),
      (session) => boundaries.guard('timer', () => delivery.onRetryDue(session)),
      (session, reason) => {
        probes.forget(session);
        subscriptions.removeAll(session);
        delivery.discard(session, reason);
        persistence.forget(session);
      },
    ));
    const subscriptions = (this.subscriptions = new SubscriptionIndex(
      (filter) => broker.unsubscribe(filter),
      persistence.onSubscriptionChange,
    ));
    const delivery = (this.delivery = new Delivery(
      {
        stats,
        warn,
        log,
        clock,
        send,
        lose: (session, reason) => lifecycle.lose(session, reason),
        drained: (session) => lifecycle.drained(session),
      },
      downlinkStore,
      wheel,
      config.downlink,
    ));
    const probes = new TakeoverProbes(wheel, clock, send, () => ({
      timeoutMs: settings.current.takeoverProbeMs ?? DEFAULT_TAKEOVER_PROBE_MS,
      maxInFlight: settings.current.limits.maxTakeoverProbes ?? DEFAULT_MAX_TAKEOVER_PROBES,
    }));
    const sink = guardedSink(deps.sink, stats, warn);
    const lifecycle = (this.lifecycle = new Lifecycle(
      settings,
      clock,
      wheel,
      stats,
      warn,
      send,
      sessions,
      sink,
      {
        delivery,
        persist: (session) => persistence.persist(session),
        cleanSlate: (session) => {
          subscriptions.removeAll(session);
          delivery.discard(session, 'clean_session');
        },
      },
      deps.onStateChange,
    ));
    this.router = new DownlinkRouter(
      subscriptions,
      delivery,
      downlinkStore,
      sessions,
      config.downlink,
      stats,
      warn,
      boundaries,
    );
    const discovery = (this.discovery = new Discovery(() => settings.current.gatewayId, log));
    const commits = new CommitTable(
      (session, commit, err) => committed(env, session, commit, err),
      boundaries,
    );
    const env: HandlerEnv = {
      ...{ settings, clock, warn, stats, send, sessions, lifecycle, delivery, subscriptions },
      ...{ persistence, broker, sink, commits, probes, discovery },
    };
    this.dispatcher = new Dispatcher(env, ROUTES, boundaries, log);
  }

  /** Binds every listen address; resolves once datagrams are accepted. */
  async start(): Promise<void> {
    const { current } = this.settings;
    await this.transport.bind(current.listen, this.dispatcher);
    await restoreSessions({
      ...{ sessionStore: this.deps.sessionStore, downlinkStore: this.deps.downlinkStore },
      ...{ sessions: this.sessions, subscriptions: this.subscriptions, persistence: this.persistence },
      broker: this.deps.broker,
      restoreQueue: (session, refs) => this.delivery.queues.restore(session, refs),
      restored: (session, asleep) => this.lifecycle.restored(session, asleep),
      socket: this.transport.firstSocket,
      ...{ stats: this.stats, warn: this.warn, log: this.deps.log },
    });
    this.transport.setAccepting(true);
    this.tickTimer = setInterval(() => this.wheel.tick(this.clock.now()), 250).unref();
    this.discovery.start(this.transport, current.advertise);
    for (const address of this.addresses()) this.deps.log.info(address, 'listening for MQTT-SN over UDP');
  }

  /** The bound UDP addresses (useful with port 0). */
  addresses(): Array<{ address: string; port: number; family: string }> {
    return this.transport.addresses();
  }

  /**
   * Applies what can change while running (SIGHUP): predefined topics, the allow-list, limits and
   * downlink timings. New limits apply to new sessions; existing topic tables keep their size.
   */
  reconfigure(changes: LiveGatewaySettings): void {
    const current = this.settings.current;
    Object.assign(current.downlink, changes.downlink); // the delivery engine and the router hold this object
    this.settings.current = { ...current, ...changes, downlink: current.downlink };
    this.sessions.setMaxTopics(changes.limits.maxTopicsPerClient);
  }

  /** Whether datagrams are taken now (false before start() and once stopping). */
  get isAccepting(): boolean {
    return this.transport.isAccepting;
  }

  /** Runs due supervision now (tests with a manual clock call this). */
  tick(): void {
    this.wheel.tick(this.clock.now());
  }

  /** Stops accepting datagrams; replies to work already under way (commits) can still be sent. */
  stopAccepting(): void {
    this.transport.setAccepting(false);
    clearInterval(this.tickTimer);
    this.discovery.stop();
  }

  /**
   * Closes the sockets once the replies already sent are out (the PUBACKs of the last commit),
   * bounded by `drainTimeoutMs`, then closed anyway.
   */
  async close(drainTimeoutMs = 2000): Promise<void> {
    this.stopAccepting();
    await this.transport.close(drainTimeoutMs);
  }

  /**
   * A message from the broker, to every device subscribed to it. QoS 1/2 copies (and QoS 0 ones for
   * sleepers, when configured) are stored durably first; `done` runs after that sync, so the uplink
   * acknowledges the broker only once nothing can be lost.
   */
  routeFromBroker(
    topic: string,
    payload: Uint8Array,
    qos: 0 | 1 | 2,
    retain: boolean,
    done: (err?: Error) => void,
  ): void {
    this.router.route(topic, payload, qos, retain, done);
  }

  /** Sees every datagram to or from a client (the packet trace); undefined: none. */
  set tap(tap: PacketTap | undefined) {
    this.transport.tap = tap;
  }

  get tap(): PacketTap | undefined {
    return this.transport.tap;
  }
}

/**
 * The sink as handlers see it: a topic the broker would refuse never reaches the outbox, whichever
 * path composed it (belt and braces behind topic-names.ts). Commit callbacks are passed as they are:
 * the CommitTable's catch their own exceptions.
 */
function guardedSink(sink: MessageSink, stats: GatewayStats, warn: RateLimitedWarn): MessageSink {
  return {
    append: (message, onCommitted) => {
      const problem = brokerTopicProblem(message.topic);
      if (problem) {
        stats.rejectedInvalidTopic++;
        warn.warn(
          'invalid-broker-topic',
          { clientId: message.clientId, problem },
          'message with a topic the broker would refuse dropped',
        );
        return 'rejected';
      }
      return sink.append(message, onCommitted);
    },
  };
}
