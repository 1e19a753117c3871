/**
 * observe/: metrics, /healthz, /api/status, the status page's HTML, the history and recent-warnings
 * rings and the logger tee, against real parts: a real Outbox on a temp LevelDB, a real GatewayStats,
 * a real HTTP server on 127.0.0.1, and a real Uplink to an in-process aedes broker.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { GatewayStats } from '../src/gateway/stats.js';
import { AckRate } from '../src/observe/ack-rate.js';
import { History } from '../src/observe/history.js';
import { RecentWarnings } from '../src/observe/recent.js';
import { startObserveServer, type ObserveServer, type ObserveServerOptions } from '../src/observe/server.js';
import type { StatusReport } from '../src/observe/status-api.js';
import type { BridgeView, DeviceView } from '../src/observe/view.js';
import { openStore } from '../src/store/db.js';
import { Outbox, type OutboxMessage } from '../src/store/outbox.js';
import { newCounters } from '../src/uplink/counters.js';
import { UPLINK_DEFAULTS } from '../src/uplink/options.js';
import { ManualClock, systemClock } from '../src/time.js';
import { Uplink, type UplinkStats } from '../src/uplink/uplink.js';
import { startAedes } from './helpers/broker.js';
import { tempDir } from './helpers/tmp.js';
import { waitUntil } from './helpers/wait.js';

const silent = pino({ level: 'silent' });
const XSS_ID = '<img src=x onerror=alert(1)>';
const QUOTA = { maxMessages: 10, maxBytes: 1024 * 1024 };

function message(n: number): OutboxMessage {
  return {
    clientId: 'sensor-1',
    topic: 'mqttsn/sensor-1/t',
    payload: Buffer.from(`reading ${n}`),
    retain: false,
    qos: 1,
  };
}

function appendDurably(outbox: Outbox, n: number): Promise<void> {
  return new Promise((resolve, reject) => {
    if (outbox.append(message(n), (err) => (err ? reject(err) : resolve())) === 'rejected')
      reject(new Error('rejected'));
  });
}

async function get(server: ObserveServer, path: string, method = 'GET'): Promise<Response> {
  return fetch(`http://127.0.0.1:${server.address.port}${path}`, { method });
}

/** Everything a running bridge would hand to startObserveServer, built from real parts. */
interface Rig {
  outbox: Outbox;
  stats: GatewayStats;
  devices: DeviceView[];
  /** What the view reports for the uplink, unless a real one is used. */
  uplink: UplinkStats;
  accepting: boolean;
  history: History;
  recent: RecentWarnings;
  options: ObserveServerOptions;
  close(): Promise<void>;
}

async function openRig(outboxAgeMs = 0, realUplink?: () => UplinkStats): Promise<Rig> {
  const dir = tempDir('mqttsn-observe-');
  const store = await openStore(dir.path);
  // One clock the test holds decides ages and uptime; messages appear `outboxAgeMs` old, so the
  // oldest-entry age has a known value.
  const clock = new ManualClock(0, Date.now());
  const now = (): number => clock.wallNow() - outboxAgeMs;
  const outbox = await Outbox.open(store, { gatewayId: 'gw', logger: silent, ...QUOTA, now });
  const state = {
    stats: new GatewayStats(),
    devices: [] as DeviceView[],
    uplink: {
      ...newCounters(),
      state: 'disconnected',
      broker: null,
      inflight: 0,
      window: 0,
      deadLettersKept: 0,
    } as UplinkStats,
    accepting: true,
  };
  const view: BridgeView = {
    startedAt: clock.wallNow() - 90_000,
    version: '9.8.7',
    gateway: () => state.stats,
    devices: () => state.devices,
    outbox: () => outbox.stats,
    uplink: realUplink ?? (() => state.uplink),
  };
  const history = new History(view);
  const recent = new RecentWarnings();
  return Object.assign(state, {
    outbox,
    history,
    recent,
    options: {
      host: '127.0.0.1',
      port: 0,
      view,
      history,
      recent,
      log: silent,
      gatewayAccepting: () => state.accepting,
      outboxQuota: QUOTA,
      clock,
    },
    async close() {
      await outbox.close();
      await store.close();
      dir.cleanup();
    },
  });
}

describe('observe server with a real outbox', () => {
  let rig: Rig;
  let server: ObserveServer;

  before(async () => {
    rig = await openRig(42_000);
    server = await startObserveServer(rig.options);
  });
  after(async () => {
    await server.close();
    await rig.close();
  });

  test('/metrics mirrors the outbox, the gateway counters and the uplink', async () => {
    for (let n = 0; n < 3; n++) await appendDurably(rig.outbox, n);
    rig.stats.datagramsIn = 12;
    rig.stats.datagramsOut = 7;
    rig.stats.publishIn[0] = 2; // QoS -1
    rig.stats.publishIn[2] = 5; // QoS 1
    rig.stats.rejectedCongestion = 4;
    rig.stats.droppedWhileDown = 6;
    rig.stats.recordPubackLatency(3);
    rig.stats.recordPubackLatency(30);
    rig.stats.recordPubackLatency(5000);
    rig.devices.push(
      {
        clientId: 'sensor-1',
        state: 'active',
        address: '127.0.0.1:5000',
        lastSeen: Date.now(),
        messagesIn: 3,
        queued: 0,
      },
      {
        clientId: 'sensor-2',
        state: 'asleep',
        address: '127.0.0.1:5001',
        lastSeen: Date.now(),
        messagesIn: 0,
        queued: 0,
      },
      {
        clientId: XSS_ID,
        state: 'active',
        address: '127.0.0.1:5002',
        lastSeen: Date.now(),
        messagesIn: 1,
        queued: 0,
      },
    );

    const res = await get(server, '/metrics');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    const lines = new Set(text.split('\n'));
    for (const line of [
      'mqttsn_outbox_messages 3',
      'mqttsn_outbox_appended_total 3',
      'mqttsn_outbox_acked_total 0',
      'mqttsn_outbox_quota_messages 10',
      'mqttsn_datagrams_received_total 12',
      'mqttsn_datagrams_sent_total 7',
      'mqttsn_device_messages_received_total{qos="-1"} 2',
      'mqttsn_device_messages_received_total{qos="1"} 5',
      'mqttsn_device_messages_received_total{qos="2"} 0',
      'mqttsn_publishes_refused_total{return_code="congestion"} 4',
      'mqttsn_messages_dropped_total{reason="uplink_down"} 6',
      'mqttsn_messages_dropped_total{reason="quota"} 0',
      'mqttsn_devices{state="active"} 2',
      'mqttsn_devices{state="asleep"} 1',
      'mqttsn_devices{state="lost"} 0',
      'mqttsn_uplink_state{state="disconnected"} 1',
      'mqttsn_uplink_state{state="connected"} 0',
      'mqttsn_build_info{version="9.8.7"} 1',
      '# TYPE mqttsn_puback_latency_seconds histogram',
      'mqttsn_puback_latency_seconds_bucket{le="0.002"} 0',
      'mqttsn_puback_latency_seconds_bucket{le="0.005"} 1',
      'mqttsn_puback_latency_seconds_bucket{le="0.05"} 2',
      'mqttsn_puback_latency_seconds_bucket{le="2.5"} 2',
      'mqttsn_puback_latency_seconds_bucket{le="+Inf"} 3',
      'mqttsn_puback_latency_seconds_sum 5.033',
      'mqttsn_puback_latency_seconds_count 3',
      '# TYPE mqttsn_outbox_appended_total counter',
      '# TYPE mqttsn_outbox_messages gauge',
    ])
      assert.ok(lines.has(line), `missing line: ${line}`);
    const age = Number(/^mqttsn_outbox_oldest_age_seconds (\S+)$/m.exec(text)?.[1]);
    assert.ok(age >= 41.5 && age < 50, `oldest age ${age}`);
    assert.match(text, /^process_resident_memory_bytes \d+$/m);
  });

  test('/metrics is well-formed Prometheus text: every sample line parses, every metric has HELP and TYPE', async () => {
    const text = await (await get(server, '/metrics')).text();
    const described = new Set<string>();
    for (const line of text.split('\n')) {
      if (line === '') continue;
      const comment = /^# (HELP|TYPE) (\w+) \S/.exec(line);
      if (comment) {
        if (comment[1] === 'TYPE') described.add(comment[2]!);
        continue;
      }
      const sample = /^(\w+)(\{[^}]*\})? (-?\d+(\.\d+)?(e[+-]?\d+)?|NaN|[+-]Inf)$/i.exec(line);
      assert.ok(sample, `unparsable line: ${line}`);
      const family = sample[1]!.replace(/_(bucket|sum|count)$/, '');
      assert.ok(described.has(sample[1]!) || described.has(family), `no TYPE before ${line}`);
    }
    const ours = [...described].filter((name) => name.startsWith('mqttsn_')).sort();
    assert.deepEqual(ours, [
      'mqttsn_allow_list_refused_total',
      'mqttsn_bridge_outbox_dead_letters',
      'mqttsn_bridge_outbox_dead_letters_total',
      'mqttsn_build_info',
      'mqttsn_connects_refused_total',
      'mqttsn_datagrams_received_total',
      'mqttsn_datagrams_sent_total',
      'mqttsn_device_connects_total',
      'mqttsn_device_messages_received_total',
      'mqttsn_devices',
      'mqttsn_downlink_discarded_total',
      'mqttsn_downlink_dropped_total',
      'mqttsn_downlink_queued_bytes',
      'mqttsn_downlink_store_failures_total',
      'mqttsn_downlink_unrepresentable_total',
      'mqttsn_duplicate_publishes_total',
      'mqttsn_errors_total',
      'mqttsn_handler_errors_total',
      'mqttsn_malformed_datagrams_total',
      'mqttsn_messages_dropped_total',
      'mqttsn_outbox_acked_total',
      'mqttsn_outbox_appended_total',
      'mqttsn_outbox_batches_total',
      'mqttsn_outbox_bytes',
      'mqttsn_outbox_gather_held_seconds_total',
      'mqttsn_outbox_gather_held_total',
      'mqttsn_outbox_gather_timeouts_total',
      'mqttsn_outbox_messages',
      'mqttsn_outbox_oldest_age_seconds',
      'mqttsn_outbox_quota_bytes',
      'mqttsn_outbox_quota_messages',
      'mqttsn_outbox_sync_batches_total',
      'mqttsn_outbox_synced_messages_total',
      'mqttsn_outbox_write_errors_total',
      'mqttsn_outbox_write_failing',
      'mqttsn_oversized_packets_total',
      'mqttsn_puback_latency_seconds',
      'mqttsn_publishes_refused_total',
      'mqttsn_replay_rate_messages_per_second',
      'mqttsn_restore_dropped_total',
      'mqttsn_send_errors_total',
      'mqttsn_session_takeovers_refused_total',
      'mqttsn_sessions_evicted_total',
      'mqttsn_sessions_expired_total',
      'mqttsn_sessions_lost_total',
      'mqttsn_subscriptions_refused_total',
      'mqttsn_unexpected_packets_total',
      'mqttsn_uplink_ack_timeouts_total',
      'mqttsn_uplink_acked_total',
      'mqttsn_uplink_broker_refusals_total',
      'mqttsn_uplink_clean_session_fallbacks_total',
      'mqttsn_uplink_connect_failures_total',
      'mqttsn_uplink_inflight',
      'mqttsn_uplink_protocol_fallbacks_total',
      'mqttsn_uplink_published_total',
      'mqttsn_uplink_reconnects_total',
      'mqttsn_uplink_resent_total',
      'mqttsn_uplink_session_takeovers_total',
      'mqttsn_uplink_state',
      'mqttsn_uplink_subscriptions_refused_total',
      'mqttsn_uplink_too_large_refused_total',
      'mqttsn_uplink_window',
      'mqttsn_wills_published_total',
    ]);
  });

  test('/healthz: healthy below 90% of the quota even without uplink; 503 with a reason otherwise', async () => {
    rig.uplink = { ...rig.uplink, state: 'disconnected' };
    const low = await get(server, '/healthz');
    assert.equal(low.status, 200);
    assert.equal(await low.text(), 'ok\n');

    for (let n = rig.outbox.stats.messages; n < 9; n++) await appendDurably(rig.outbox, n);
    const full = await get(server, '/healthz');
    assert.equal(full.status, 503);
    assert.equal(
      await full.text(),
      `uplink disconnected and outbox at 90% of its quota (9 of 10 messages, ${rig.outbox.stats.bytes} of 1048576 bytes)\n`,
    );

    rig.uplink = { ...rig.uplink, state: 'connected' };
    assert.equal((await get(server, '/healthz')).status, 200, 'a connected uplink drains the outbox');

    rig.accepting = false;
    const closed = await get(server, '/healthz');
    assert.equal(closed.status, 503);
    assert.equal(await closed.text(), 'gateway is not accepting MQTT-SN traffic\n');
    rig.accepting = true;

    const head = await get(server, '/healthz', 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(await head.text(), '');
  });

  test('/api/status has what the status page shows', async () => {
    rig.history.sample();
    rig.recent.add({ time: Date.now(), level: 'warn', msg: 'PUBLISH refused', clientId: XSS_ID });
    const res = await get(server, '/api/status');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    const status = (await res.json()) as StatusReport;
    assert.equal(status.version, '9.8.7');
    assert.equal(status.uptimeSeconds, 90);
    assert.equal(status.uplink.state, rig.uplink.state);
    assert.equal(typeof status.uplink.replayRate, 'number');
    assert.equal(status.outbox.messages, rig.outbox.stats.messages);
    assert.deepEqual(status.outbox.quota, QUOTA);
    assert.equal(status.outbox.oldestAgeSeconds, 42);
    assert.equal(status.history.intervalSeconds, 10);
    assert.equal(status.history.samples.at(-1)?.messages, rig.outbox.stats.messages);
    assert.equal(status.devices.total, 3);
    assert.deepEqual(
      status.devices.shown.map((d) => [d.clientId, d.state]),
      [
        ['sensor-2', 'asleep'], // states needing attention first, then by client id
        [XSS_ID, 'active'],
        ['sensor-1', 'active'],
      ],
    );
    assert.deepEqual(Object.keys(status.devices.shown[0]!).sort(), [
      'address',
      'clientId',
      'lastSeen',
      'messagesIn',
      'queued',
      'state',
    ]);
    assert.equal(status.recent[0]?.clientId, XSS_ID, 'device text goes out as data, unchanged');
    assert.deepEqual(status.health, { ok: true });
  });

  test('the status page is static HTML with a strict CSP, and never writes data as HTML', async () => {
    const res = await get(server, '/');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
    assert.match(res.headers.get('content-security-policy') ?? '', /script-src 'sha256-[A-Za-z0-9+/=]+'/);
    const html = await res.text();
    assert.match(html, /<meta name="viewport"/);
    assert.ok(!html.includes(XSS_ID), 'no device data in the page itself');
    assert.doesNotMatch(html, /innerHTML|outerHTML|insertAdjacentHTML|document\.write/);
    assert.doesNotMatch(html, /<(script|link)[^>]+(src|href)="https?:/, 'no external assets');
  });

  test('unknown paths are 404, other methods 405', async () => {
    const missing = await get(server, '/nope');
    assert.equal(missing.status, 404);
    assert.equal(await missing.text(), 'not found\n');
    assert.equal((await get(server, '/metrics/extra')).status, 404);
    const post = await get(server, '/metrics', 'POST');
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET, HEAD');
  });

  test('a port in use is reported with host:port', async () => {
    await assert.rejects(
      startObserveServer({ ...rig.options, port: server.address.port, processMetrics: false }),
      new RegExp(`cannot listen for HTTP .* on 127\\.0\\.0\\.1:${server.address.port}: EADDRINUSE`),
    );
  });
});

test('a real uplink to aedes: state, drain, acknowledgements and replay rate', async (t) => {
  const broker = await startAedes();
  t.after(() => broker.close());
  const link: { uplink?: Uplink } = {}; // the uplink needs the rig's outbox, the rig's view needs the uplink
  const rig = await openRig(0, () => link.uplink!.stats);
  t.after(() => rig.close());
  for (let n = 0; n < 5; n++) await appendDurably(rig.outbox, n);
  const uplink = new Uplink(
    { brokers: [broker.url], clientId: 'observe-test', protocolVersion: 4 },
    rig.outbox,
    silent,
  );
  link.uplink = uplink;
  t.after(() => uplink.stop());
  // The replay rate of a real uplink is measured in real time.
  const server = await startObserveServer({ ...rig.options, processMetrics: false, clock: systemClock });
  t.after(() => server.close());

  uplink.start();
  await waitUntil(() => uplink.state === 'connected' && rig.outbox.stats.messages === 0, {
    description: 'uplink connected and outbox drained',
  });
  const text = await (await get(server, '/metrics')).text();
  for (const line of [
    'mqttsn_uplink_state{state="connected"} 1',
    'mqttsn_uplink_state{state="disconnected"} 0',
    'mqttsn_outbox_messages 0',
    'mqttsn_outbox_oldest_age_seconds 0',
    'mqttsn_outbox_acked_total 5',
    'mqttsn_uplink_published_total 5',
    'mqttsn_uplink_acked_total 5',
    `mqttsn_uplink_window ${UPLINK_DEFAULTS.window}`,
  ])
    assert.ok(text.split('\n').includes(line), `missing line: ${line}`);
  const rate = Number(/^mqttsn_replay_rate_messages_per_second (\S+)$/m.exec(text)?.[1]);
  assert.ok(rate > 0, `replay rate ${rate}`);
  const status = (await (await get(server, '/api/status')).json()) as StatusReport;
  assert.equal(status.uplink.broker, broker.url);
});

describe('rings and rates', () => {
  test('History keeps the newest `capacity` samples, oldest first', () => {
    let depth = 0;
    let clock = 0;
    const history = new History(
      {
        outbox: () => ({ messages: depth, bytes: depth * 10 }) as ReturnType<BridgeView['outbox']>,
        uplink: () => ({ state: depth > 2 ? 'disconnected' : 'connected' }) as UplinkStats,
      },
      { capacity: 4, now: () => clock },
    );
    for (depth = 0; depth < 6; depth++, clock += 10_000) history.sample();
    assert.deepEqual(history.samples(), [
      { at: 20_000, messages: 2, bytes: 20, uplink: 'connected' },
      { at: 30_000, messages: 3, bytes: 30, uplink: 'disconnected' },
      { at: 40_000, messages: 4, bytes: 40, uplink: 'disconnected' },
      { at: 50_000, messages: 5, bytes: 50, uplink: 'disconnected' },
    ]);
  });

  test('AckRate is the slope over the last ~10 s', () => {
    let clock = 0;
    let acked = 0;
    const rate = new AckRate(
      () => acked,
      10_000,
      1_000,
      () => clock,
    );
    assert.equal(rate.perSecond(), 0);
    for (let s = 0; s <= 30; s++, clock += 1000) {
      acked += s < 20 ? 100 : 0; // 100/s for 20 s, then stopped
      rate.sample();
    }
    clock -= 1000;
    assert.equal(rate.perSecond(), 0, 'nothing acknowledged in the last 10 s');
    acked += 500;
    clock += 5000;
    assert.equal(rate.perSecond(), 500 / 15);
  });

  test('RecentWarnings keeps the last entries, newest first, from warn+ log lines only', () => {
    const recent = new RecentWarnings(3);
    const log = pino({ level: 'debug' }, recent);
    log.info('not kept');
    log.child({ clientId: XSS_ID, address: '127.0.0.1:1' }).warn('first');
    log.error({ err: new Error('disk full') }, 'second');
    log.warn({ component: 'uplink' }, 'third');
    log.fatal('fourth');
    const entries = recent.entries();
    assert.deepEqual(
      entries.map((e) => [e.level, e.msg]),
      [
        ['fatal', 'fourth'],
        ['warn', 'third'],
        ['error', 'second'],
      ],
    );
    assert.equal(entries[1]!.component, 'uplink');
    assert.equal(entries[2]!.error, 'disk full');
    const wrapped = new RecentWarnings(5);
    pino({}, wrapped).child({ clientId: XSS_ID, address: '127.0.0.1:1' }).warn('x'.repeat(1000));
    assert.equal(wrapped.entries()[0]!.clientId, XSS_ID);
    assert.equal(wrapped.entries()[0]!.address, '127.0.0.1:1');
    assert.equal(wrapped.entries()[0]!.msg.length, 301, 'long messages are cut');
  });

  test('createLogger tees warnings into RecentWarnings and leaves stdout as it was', () => {
    // A child process, because the logger writes to fd 1. The two loggers' writes may interleave:
    // the `variant` binding tells their lines apart.
    const script = `
      import { createLogger } from './src/observe/logger.js';
      import { RecentWarnings } from './src/observe/recent.js';
      const recent = new RecentWarnings();
      const loggers = { plain: createLogger('info', false), teed: createLogger('info', false, { recent }) };
      for (const [variant, logger] of Object.entries(loggers)) {
        const log = logger.child({ variant });
        log.debug('hidden'); log.info({ a: 1 }, 'info line'); log.child({ clientId: 'c1' }).warn('warn line');
      }
      process.stderr.write(JSON.stringify(recent.entries()));
    `;
    const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      encoding: 'utf8',
      timeout: 15_000,
    });
    assert.equal(run.status, 0, run.stderr);
    const lines = run.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    const linesOf = (variant: string): Array<Record<string, unknown>> =>
      lines
        .filter((line) => line.variant === variant)
        .map(({ time: _time, variant: _variant, ...rest }) => rest);
    assert.equal(lines.length, 4);
    assert.deepEqual(linesOf('teed'), linesOf('plain'), 'same stdout with and without the tee');
    assert.deepEqual(linesOf('teed'), [
      { level: 30, service: 'mqttsn-bridge', a: 1, msg: 'info line' },
      { level: 40, service: 'mqttsn-bridge', clientId: 'c1', msg: 'warn line' },
    ]);
    const recent = JSON.parse(run.stderr) as Array<Record<string, unknown>>;
    assert.deepEqual(
      recent.map(({ level, msg, clientId }) => ({ level, msg, clientId })),
      [{ level: 'warn', msg: 'warn line', clientId: 'c1' }],
    );
  });
});
