/**
 * The Prometheus metrics, all read from a BridgeView when /metrics is scraped. One snapshot is taken
 * per scrape so the numbers of one response agree with each other.
 */
import { collectDefaultMetrics, Histogram, Registry } from 'prom-client';
import type { SessionState } from '../gateway/session.js';
import type { GatewayStats } from '../gateway/stats.js';
import type { OutboxStats } from '../store/outbox.js';
import type { UplinkState, UplinkStats } from '../uplink/uplink.js';
import type { AdminStats } from '../admin/api.js';
import type { OutboxQuota } from './health.js';
import { Mirror } from './prom-mirror.js';
import type { BridgeView } from './view.js';
import { systemClock } from '../time.js';

export interface MetricsOptions {
  view: BridgeView;
  /** Messages acknowledged by the broker per second, recently (see AckRate). */
  replayRate: () => number;
  outboxQuota?: OutboxQuota;
  /** Also export prom-client's process and Node.js metrics (RSS, CPU, heap, event loop lag). */
  processMetrics?: boolean;
  /** Wall clock, for the age of the oldest outbox entry. */
  now?: () => number;
  /** The admin API's counters, when it is on. */
  admin?: AdminStats;
  /** Packet trace log lines left out by its rate limit (gateway/trace.ts). */
  traceSuppressedLines?: () => number;
}

export interface BridgeMetrics {
  readonly contentType: string;
  /** The Prometheus text exposition of everything, as of now. */
  render(): Promise<string>;
}

interface Snapshot {
  gateway: GatewayStats;
  outbox: OutboxStats;
  uplink: UplinkStats;
  devicesByState: Record<SessionState, number>;
  now: number;
}

/** Upper bounds (s) of the PUBACK latency buckets: a synced write takes 1 ms on an SSD, 10+ on an SD card. */
const LATENCY_BUCKETS_SECONDS = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

export function createMetrics({
  view,
  replayRate,
  outboxQuota,
  processMetrics = true,
  now = () => systemClock.wallNow(),
  admin,
  traceSuppressedLines,
}: MetricsOptions): BridgeMetrics {
  const registry = new Registry();
  let snapshot = takeSnapshot(view, now());
  const metric = new Mirror<Snapshot>(registry, () => snapshot);

  metric.gauge('mqttsn_build_info', 'Always 1; the version label says which mqttsn-bridge runs.', () => 1, {
    version: view.version,
  });
  defineDeviceMetrics(metric);
  defineOutboxMetrics(metric, outboxQuota);
  defineUplinkMetrics(metric, replayRate);
  if (admin) defineAdminMetrics(new Mirror(registry, () => admin));
  if (traceSuppressedLines)
    new Mirror(registry, traceSuppressedLines).counter(
      'mqttsn_trace_log_suppressed_total',
      'Packet trace log lines left out by the per-device limit (20 a second); the trace ring still has them.',
      (n) => n,
    );
  // Observed as each PUBACK goes out (prom-client fills histograms only by observe()); the gateway calls
  // it through its stats, so it holds no reference to observe/.
  const latency = new Histogram({
    name: 'mqttsn_puback_latency_seconds',
    help: 'Time from a device QoS 1/2 PUBLISH to its PUBACK/PUBREC: mostly waiting for the synced disk write.',
    buckets: LATENCY_BUCKETS_SECONDS,
    registers: [registry],
  });
  view.gateway().pubackLatencyObserver = (ms) => latency.observe(ms / 1000);
  if (processMetrics) collectDefaultMetrics({ register: registry });

  return {
    contentType: registry.contentType,
    render() {
      snapshot = takeSnapshot(view, now());
      return registry.metrics();
    },
  };
}

function takeSnapshot(view: BridgeView, now: number): Snapshot {
  const devicesByState: Record<SessionState, number> = {
    active: 0,
    asleep: 0,
    awake: 0,
    connecting: 0,
    disconnected: 0,
    lost: 0,
  };
  for (const device of view.devices()) devicesByState[device.state]++;
  return { gateway: view.gateway(), outbox: view.outbox(), uplink: view.uplink(), devicesByState, now };
}

function defineDeviceMetrics(metric: Mirror<Snapshot>): void {
  metric.labeledGauge('mqttsn_devices', 'Devices known to the gateway, by session state.', 'state', (s) => ({
    ...s.devicesByState,
  }));
  metric.labeledCounter(
    'mqttsn_device_messages_received_total',
    'PUBLISH messages received from devices, by the QoS the device used (-1, 0, 1, 2).',
    'qos',
    (s) => ({
      '-1': s.gateway.publishIn[0]!,
      0: s.gateway.publishIn[1]!,
      1: s.gateway.publishIn[2]!,
      2: s.gateway.publishIn[3]!,
    }),
  );
  metric.counter(
    'mqttsn_device_connects_total',
    'CONNECTs accepted from devices.',
    (s) => s.gateway.connects,
  );
  metric.counter(
    'mqttsn_datagrams_received_total',
    'UDP datagrams received from devices.',
    (s) => s.gateway.datagramsIn,
  );
  metric.counter(
    'mqttsn_datagrams_sent_total',
    'UDP datagrams sent to devices.',
    (s) => s.gateway.datagramsOut,
  );
  metric.counter(
    'mqttsn_send_errors_total',
    'UDP datagrams that could not be sent.',
    (s) => s.gateway.sendErrors,
  );
  metric.counter(
    'mqttsn_malformed_datagrams_total',
    'Datagrams that are not valid MQTT-SN (dropped).',
    (s) => s.gateway.malformed,
  );
  metric.counter(
    'mqttsn_unexpected_packets_total',
    'Valid packets not acceptable from that sender or in its session state (e.g. PUBLISH before CONNECT).',
    (s) => s.gateway.unexpected,
  );
  metric.counter(
    'mqttsn_oversized_packets_total',
    'Packets larger than the configured size limit (refused).',
    (s) => s.gateway.oversized,
  );
  metric.counter(
    'mqttsn_downlink_store_failures_total',
    'Broker messages that could not be stored for the devices: not acknowledged, so the broker resends them.',
    (s) => s.gateway.downlinkStoreFailures,
  );
  metric.counter(
    'mqttsn_handler_errors_total',
    'Packets whose handling failed with an internal error (a bug: see the error log).',
    (s) => s.gateway.handlerErrors,
  );
  metric.labeledCounter(
    'mqttsn_errors_total',
    'Exceptions caught at a data-path boundary (a bug: see the log); the gateway keeps going.',
    'boundary',
    (s) => ({
      datagram: s.gateway.errorsByBoundary.get('datagram') ?? 0,
      'broker-message': s.gateway.errorsByBoundary.get('broker-message') ?? 0,
      commit: s.gateway.errorsByBoundary.get('commit') ?? 0,
      timer: s.gateway.errorsByBoundary.get('timer') ?? 0,
      encode: s.gateway.errorsByBoundary.get('encode') ?? 0,
    }),
  );
  metric.counter(
    'mqttsn_downlink_unrepresentable_total',
    'Broker messages that cannot be sent to a device (over 65535 bytes or the downlink size limit): ' +
      'acknowledged to the broker and dropped.',
    (s) => s.gateway.downlinkUnrepresentable,
  );
  metric.counter(
    'mqttsn_restore_dropped_total',
    'Persisted sessions, subscriptions and wills dropped at start-up because the broker would refuse them.',
    (s) => s.gateway.restoreDropped,
  );
  metric.counter(
    'mqttsn_duplicate_publishes_total',
    'Device retransmissions of a message already stored: acknowledged again, not stored twice.',
    (s) => s.gateway.duplicates,
  );
  metric.labeledCounter(
    'mqttsn_publishes_refused_total',
    'Device messages refused, by the MQTT-SN return code sent back.',
    'return_code',
    (s) => ({
      congestion: s.gateway.rejectedCongestion,
      invalid_topic_id: s.gateway.rejectedInvalidTopic,
      not_supported: s.gateway.rejectedNotSupported,
    }),
  );
  metric.labeledCounter(
    'mqttsn_messages_dropped_total',
    'Messages lost on the way to the broker, by reason: uplink_down and outbox_full (QoS 0/-1 at ' +
      'arrival), quota (oldest dropped for room), ttl (expired), invalid_record (unreadable on disk), ' +
      'broker_rejected (refused by the broker) and invalid_for_broker (a string the broker would refuse, ' +
      'stored by an older version); these two are kept as dead letters.',
    'reason',
    (s) => ({
      uplink_down: s.gateway.droppedWhileDown,
      outbox_full: s.gateway.droppedFull,
      quota: s.outbox.dropped.quota,
      ttl: s.outbox.dropped.ttl,
      invalid_record: s.outbox.dropped.invalid,
      broker_rejected: s.uplink.brokerRejected,
      invalid_for_broker: s.uplink.invalidDropped,
    }),
  );
  metric.counter(
    'mqttsn_wills_published_total',
    'Device wills published after a device was lost.',
    (s) => s.gateway.willsPublished,
  );
  metric.counter(
    'mqttsn_sessions_lost_total',
    'Device sessions ended because the device went silent past its keep-alive or sleep time.',
    (s) => s.gateway.sessionsLost,
  );
  metric.counter(
    'mqttsn_sessions_expired_total',
    'Persistent (CleanSession=0) device sessions forgotten after --device-session-expiry without the device.',
    (s) => s.gateway.sessionsExpired,
  );
  defineSessionMetrics(metric);
}

/** Device sessions and their downlink queues: bounds, refusals and what was thrown away (sessions). */
function defineSessionMetrics(metric: Mirror<Snapshot>): void {
  metric.labeledCounter(
    'mqttsn_downlink_discarded_total',
    'Queued downlink messages thrown away with their session, by reason: clean_session (CONNECT with ' +
      'CleanSession=1, or a clean session ending), expired, evicted (room for a new device), lost, ' +
      'forgotten (through the admin API).',
    'reason',
    (s) => ({ ...s.gateway.downlinkDiscarded }),
  );
  metric.gauge(
    'mqttsn_downlink_queued_bytes',
    'Bytes of downlink messages queued for devices (on disk), against --downlink-max-bytes.',
    (s) => s.gateway.downlinkQueuedBytes,
  );
  metric.labeledCounter(
    'mqttsn_downlink_dropped_total',
    'Downlink messages dropped for room, by bound: queue_full (--downlink-queue), client_bytes ' +
      '(--downlink-queue-bytes), total_bytes (--downlink-max-bytes).',
    'reason',
    (s) => ({ ...s.gateway.downlinkDroppedFor }),
  );
  metric.labeledCounter(
    'mqttsn_connects_refused_total',
    'CONNECTs answered CONNACK "congestion" for want of room, by bound: address ' +
      '(--max-sessions-per-address) or clients (--max-clients), with no idle session to evict.',
    'limit',
    (s) => ({ ...s.gateway.connectsRefused }),
  );
  metric.counter(
    'mqttsn_sessions_evicted_total',
    'Disconnected sessions whose client never did anything but CONNECT, removed to make room.',
    (s) => s.gateway.sessionsEvicted,
  );
  metric.labeledCounter(
    'mqttsn_session_takeovers_refused_total',
    'CONNECT / PINGREQ for a session present at another address, refused: alive (its old address ' +
      'answered PINGREQ) or probes_full (--max-takeover-probes probes already waiting).',
    'reason',
    (s) => ({ alive: s.gateway.takeoversRefused, probes_full: s.gateway.takeoverProbesFull }),
  );
  metric.labeledCounter(
    'mqttsn_allow_list_refused_total',
    'Refused by the allow-list: connect (CONNECT or wake-up, id or id from that address) or ' +
      'qos_minus_one (QoS -1 PUBLISH from an address without a rule, dropped).',
    'kind',
    (s) => ({ connect: s.gateway.notAllowed, qos_minus_one: s.gateway.qosMinusOneNotAllowed }),
  );
  metric.labeledCounter(
    'mqttsn_subscriptions_refused_total',
    'SUBSCRIBEs answered SUBACK "congestion", by bound: client (--max-subscriptions) or gateway ' +
      '(--max-broker-subscriptions).',
    'limit',
    (s) => ({ ...s.gateway.subscriptionsRefused }),
  );
}

function defineOutboxMetrics(metric: Mirror<Snapshot>, quota: OutboxQuota | undefined): void {
  metric.gauge(
    'mqttsn_outbox_messages',
    'Messages stored on disk waiting for the broker (the backlog).',
    (s) => s.outbox.messages,
  );
  metric.gauge('mqttsn_outbox_bytes', 'Bytes of the messages waiting for the broker.', (s) => s.outbox.bytes);
  metric.gauge(
    'mqttsn_outbox_oldest_age_seconds',
    'Age of the oldest message waiting for the broker; 0 when the outbox is empty.',
    (s) => (s.outbox.oldestReceivedAt === null ? 0 : Math.max(0, (s.now - s.outbox.oldestReceivedAt) / 1000)),
  );
  if (quota !== undefined) {
    metric.gauge(
      'mqttsn_outbox_quota_messages',
      'Most messages the outbox keeps before its full policy applies.',
      () => quota.maxMessages,
    );
    metric.gauge(
      'mqttsn_outbox_quota_bytes',
      'Most bytes the outbox keeps before its full policy applies.',
      () => quota.maxBytes,
    );
  }
  metric.gauge(
    'mqttsn_outbox_write_failing',
    '1 while writes to the data dir fail (e.g. a full disk): devices get PUBACK "congestion" until it recovers.',
    (s) => (s.outbox.writeFailing === undefined ? 0 : 1),
  );
  metric.counter('mqttsn_outbox_appended_total', 'Messages stored in the outbox.', (s) => s.outbox.appended);
  metric.counter(
    'mqttsn_outbox_acked_total',
    'Outbox messages removed because the broker acknowledged them.',
    (s) => s.outbox.acked,
  );
  metric.counter(
    'mqttsn_outbox_batches_total',
    'Batched writes to LevelDB (group commit).',
    (s) => s.outbox.batches,
  );
  metric.counter(
    'mqttsn_outbox_sync_batches_total',
    'Batched writes that were synced to disk (fsync).',
    (s) => s.outbox.syncBatches,
  );
  metric.counter(
    'mqttsn_outbox_synced_messages_total',
    'Messages written in synced batches; ÷ mqttsn_outbox_sync_batches_total, the messages each fsync carried.',
    (s) => s.outbox.syncedMessages ?? 0,
  );
  metric.counter(
    'mqttsn_outbox_gather_held_total',
    'Synced batches held back by the gather window for the devices just acknowledged to come back.',
    (s) => s.outbox.gather?.held ?? 0,
  );
  metric.counter(
    'mqttsn_outbox_gather_timeouts_total',
    'Gather windows ended by their deadline (a fraction of the sync time) rather than by the devices coming back.',
    (s) => s.outbox.gather?.timedOut ?? 0,
  );
  metric.counter(
    'mqttsn_outbox_gather_held_seconds_total',
    'Time the gather window held synced batches back, in all.',
    (s) => (s.outbox.gather?.heldMs ?? 0) / 1000,
  );
  metric.counter(
    'mqttsn_outbox_write_errors_total',
    'Failed batch writes: the messages were not stored and devices got no PUBACK. Check the disk.',
    (s) => s.outbox.writeErrors,
  );
}

function defineUplinkMetrics(metric: Mirror<Snapshot>, replayRate: () => number): void {
  metric.labeledGauge(
    'mqttsn_uplink_state',
    'Broker connection state: 1 for the current state, 0 for the others.',
    'state',
    (s) => {
      const states: Record<UplinkState, number> = { connected: 0, connecting: 0, disconnected: 0 };
      states[s.uplink.state] = 1;
      return states;
    },
  );
  metric.counter(
    'mqttsn_uplink_reconnects_total',
    'Broker connections established after the first one.',
    (s) => s.uplink.reconnects,
  );
  metric.counter(
    'mqttsn_uplink_connect_failures_total',
    'Failed connection attempts, one per broker tried.',
    (s) => s.uplink.connectFailures,
  );
  metric.counter(
    'mqttsn_uplink_published_total',
    'PUBLISHes sent to the broker, re-sends included.',
    (s) => s.uplink.published,
  );
  metric.counter('mqttsn_uplink_acked_total', 'PUBACKs received from the broker.', (s) => s.uplink.acked);
  metric.counter(
    'mqttsn_uplink_resent_total',
    'Messages sent to the broker again after a reconnect: possible duplicates downstream.',
    (s) => s.uplink.resent,
  );
  metric.counter(
    'mqttsn_uplink_ack_timeouts_total',
    'Broker connections dropped because a PUBACK took longer than the keep-alive.',
    (s) => s.uplink.ackTimeouts,
  );
  metric.gauge(
    'mqttsn_uplink_inflight',
    "PUBLISHes sent and waiting for the broker's PUBACK.",
    (s) => s.uplink.inflight,
  );
  metric.gauge(
    'mqttsn_uplink_window',
    'Most PUBLISHes in flight at once on the current connection.',
    (s) => s.uplink.window,
  );
  defineRefusalMetrics(metric);
  metric.gauge(
    'mqttsn_replay_rate_messages_per_second',
    'Messages the broker acknowledged per second over the last ~10 s: how fast a backlog drains.',
    () => replayRate(),
  );
}

/** What the broker would not take, and what that did to the uplink (head-of-line safety, takeovers). */
function defineRefusalMetrics(metric: Mirror<Snapshot>): void {
  metric.counter(
    'mqttsn_bridge_outbox_dead_letters_total',
    'Outbox entries moved to the dead letters: refused by the broker (PUBACK >= 0x80), over its ' +
      'maximum packet size, or the link closed each time they were sent.',
    (s) => s.uplink.deadLettered,
  );
  metric.gauge(
    'mqttsn_bridge_outbox_dead_letters',
    'Dead letters kept on disk (mqttsn-bridge dead-letters --data-dir DIR lists them).',
    (s) => s.uplink.deadLettersKept,
  );
  metric.labeledCounter(
    'mqttsn_uplink_broker_refusals_total',
    'MQTT 5 PUBACKs with a reason code >= 0x80, by reason code (0x97 quota exceeded is retried, ' +
      'the others are dead-lettered). MQTT 3.1.1 brokers acknowledge refused messages: not counted.',
    'reason_code',
    (s) => s.uplink.refusals,
  );
  metric.counter(
    'mqttsn_uplink_subscriptions_refused_total',
    'Broker subscriptions refused (SUBACK >= 0x80); the filter is dropped.',
    (s) => s.uplink.subscribeRefused,
  );
  metric.counter(
    'mqttsn_uplink_session_takeovers_total',
    'Times another connection with the same client id took the uplink session (backed off each time).',
    (s) => s.uplink.sessionTakeovers,
  );
  metric.counter(
    'mqttsn_uplink_too_large_refused_total',
    'Device messages refused at the edge (PUBACK "not supported"): over the broker\'s maximum packet size.',
    (s) => s.uplink.tooLarge,
  );
  metric.counter(
    'mqttsn_uplink_protocol_fallbacks_total',
    'Brokers that turned down MQTT 5 and are used with 3.1.1 (no mqttsn-id user property on messages); ' +
      'counted again only after the broker took MQTT 5 in between.',
    (s) => s.uplink.protocolFallbacks,
  );
  metric.counter(
    'mqttsn_uplink_clean_session_fallbacks_total',
    'Times the persistent broker session was dropped at SUBSCRIBE on every reconnect and a clean one was used.',
    (s) => s.uplink.cleanSessionFallbacks,
  );
}

/** The admin API: who was refused and what was done to devices. */
function defineAdminMetrics(metric: Mirror<AdminStats>): void {
  metric.labeledCounter(
    'mqttsn_admin_requests_total',
    'Admin API requests, by outcome (unauthorized: token missing, malformed or wrong).',
    'outcome',
    (s) => ({ ...s.requests }),
  );
  metric.labeledCounter(
    'mqttsn_admin_actions_total',
    'Actions taken through the admin API: kick, forget, trace_on, trace_off.',
    'action',
    (s) => ({ ...s.actions }),
  );
}
