/**
 * The uplink against a real Mosquitto (MQTT 5) child process, behind a TCP fault proxy: link cuts,
 * refused connections with backoff, half-open links, broker crash and restart, failover. Each test
 * checks completeness (every message arrives) and order (first deliveries in arrival order), and
 * reports the duplicates that at-least-once delivery produced.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import type { Outbox } from '../src/store/outbox.js';
import type { Uplink, UplinkState } from '../src/uplink/uplink.js';
// Helpers module by module (not helpers/index.js): these tests must not depend on the codec.
import { requireMosquitto, startMosquitto, type MosquittoHandle } from './helpers/broker.js';
import { collect, publishTo, type CollectedMessage, type Collector } from './helpers/mqtt.js';
import { freePort } from './helpers/ports.js';
import { startFaultProxy, type FaultProxy } from './helpers/proxy.js';
import { withTempDir } from './helpers/tmp.js';
import { sleep, waitUntil } from './helpers/wait.js';
import { openOutboxStore, startUplink } from './support/uplink-rig.js';

const DEVICES = 20;

async function openOutbox(t: TestContext): Promise<Outbox> {
  return (await openOutboxStore(t, withTempDir(t, 'uplink-faults-'))).outbox;
}

/** Appends for 20 devices, each with its own counter; remembers the sequence number of every message. */
class Producer {
  readonly produced: number[] = [];
  private readonly counters = new Array<number>(DEVICES).fill(0);
  private next = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly outbox: Outbox) {}

  /** Append `count` messages durably (with commit callbacks, like devices waiting for PUBACK). */
  append(count: number): Promise<void> {
    const committed: Array<Promise<void>> = [];
    for (let i = 0; i < count; i++) {
      const device = this.next++ % DEVICES;
      const counter = this.counters[device]!++;
      const seq = this.outbox.lastSeq + 1;
      committed.push(
        new Promise((resolve, reject) => {
          const result = this.outbox.append(
            {
              clientId: `dev-${device}`,
              topic: `mqttsn/dev-${device}/data`,
              payload: Buffer.from(`${device}:${counter}`),
              retain: false,
              qos: 1,
            },
            (err) => (err ? reject(err) : resolve()),
          );
          if (result !== 'queued') reject(new Error(`append ${result}`));
        }),
      );
      this.produced.push(seq);
    }
    return Promise.all(committed).then(() => undefined);
  }

  /** Keep appending `perTick` messages every `everyMs` until stop(). */
  start(perTick = 5, everyMs = 2): void {
    this.timer = setInterval(() => void this.append(perTick), everyMs);
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

function seqOf(message: CollectedMessage): number {
  const id = message.properties?.userProperties?.['mqttsn-id'];
  assert.equal(typeof id, 'string', 'every message carries mqttsn-id');
  const [gateway, seq] = (id as string).split(':');
  assert.equal(gateway, 'test-gw');
  return Number(seq);
}

function distinctCount(messages: CollectedMessage[]): number {
  return new Set(messages.map(seqOf)).size;
}

/**
 * Every produced message arrived; first deliveries are in arrival order (so per device too); returns
 * the number of duplicates (re-sends the broker had already taken).
 */
function verifyDelivery(messages: CollectedMessage[], produced: number[]): number {
  const seen = new Set<number>();
  let last = 0;
  let duplicates = 0;
  for (const message of messages) {
    const seq = seqOf(message);
    if (seen.has(seq)) {
      duplicates++;
      continue;
    }
    assert.ok(seq > last, `out of order: ${seq} delivered after ${last}`);
    seen.add(seq);
    last = seq;
    const [device] = message.payload.toString().split(':');
    assert.equal(message.topic, `mqttsn/dev-${device}/data`);
    assert.equal(message.properties?.userProperties?.['mqttsn-client'], `dev-${device}`);
  }
  const missing = produced.filter((seq) => !seen.has(seq));
  assert.deepEqual(missing.slice(0, 20), [], `${missing.length} messages missing`);
  assert.equal(seen.size, produced.length, 'nothing unexpected delivered');
  return duplicates;
}

async function waitForAll(sub: Collector, producer: Producer, timeoutMs = 15_000): Promise<void> {
  await waitUntil(() => distinctCount(sub.messages) >= producer.produced.length, {
    timeoutMs,
    description: `${producer.produced.length} distinct messages at the broker`,
  });
}

/** Resolves with the state's reason (why the link went down, for 'disconnected'). */
function nextState(uplink: Uplink, wanted: UplinkState): Promise<string | undefined> {
  return new Promise((resolve) => {
    const onState = (state: UplinkState, detail?: { reason?: string }): void => {
      if (state !== wanted) return;
      uplink.off('state', onState);
      resolve(detail?.reason);
    };
    uplink.on('state', onState);
  });
}

interface Rig {
  broker: MosquittoHandle;
  proxy: FaultProxy;
  sub: Collector;
}

async function rig(t: TestContext): Promise<Rig> {
  const broker = await startMosquitto();
  t.after(() => broker.stop());
  const proxy = await startFaultProxy(broker.port);
  t.after(() => proxy.close());
  const sub = await collect(broker.url, 'mqttsn/#', { protocolVersion: 5 });
  t.after(() => sub.close());
  return { broker, proxy, sub };
}

describe('uplink with mosquitto and faults', () => {
  test('MQTT 5: user properties carry id, client and receive time; receive maximum caps the window', async (t) => {
    if (!requireMosquitto(t)) return;
    const { broker, sub } = await rig(t);
    const outbox = await openOutbox(t);
    const producer = new Producer(outbox);
    await producer.append(500);
    const uplink = startUplink(t, outbox, { brokers: [broker.url], window: 64 });
    await waitForAll(sub, producer);
    assert.equal(verifyDelivery(sub.messages, producer.produced), 0);
    const props = sub.messages[0]?.properties?.userProperties;
    assert.equal(props?.['mqttsn-id'], 'test-gw:1');
    assert.equal(props?.['mqttsn-client'], 'dev-0');
    assert.match(String(props?.['mqttsn-received']), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    // Mosquitto announces receive maximum 20 (its max_inflight_messages) in CONNACK.
    assert.equal(uplink.stats.window, 20);
  });

  test('link cut: messages appended during the outage are buffered, then delivered in order', async (t) => {
    if (!requireMosquitto(t)) return;
    const { proxy, sub } = await rig(t);
    const outbox = await openOutbox(t);
    const producer = new Producer(outbox);
    const uplink = startUplink(t, outbox, { brokers: [proxy.url] });
    producer.start();
    await waitUntil(() => sub.messages.length > 500, { description: 'traffic flowing' });

    // Cut under load, three times; the link comes straight back.
    for (let i = 0; i < 3; i++) {
      proxy.cut();
      await nextState(uplink, 'connected');
      await sleep(100);
    }
    // A longer outage: nothing gets through, the outbox buffers.
    proxy.refuse(true);
    proxy.cut();
    await sleep(300);
    assert.notEqual(uplink.state, 'connected');
    const buffered = outbox.stats.messages;
    assert.ok(buffered > 100, `buffered during the outage: ${buffered}`);
    proxy.refuse(false);
    await nextState(uplink, 'connected');
    await sleep(100);
    producer.stop();
    await waitForAll(sub, producer);

    const duplicates = verifyDelivery(sub.messages, producer.produced);
    assert.equal(uplink.stats.reconnects, 4);
    assert.ok(
      duplicates <= uplink.stats.resent,
      `duplicates ${duplicates} <= re-sent ${uplink.stats.resent}`,
    );
    await waitUntil(() => outbox.stats.messages === 0, { description: 'outbox empty' });
    t.diagnostic(
      `cut x3 + outage: produced ${producer.produced.length}, buffered ${buffered}, ` +
        `duplicates ${duplicates}, re-sent ${uplink.stats.resent}`,
    );
  });

  test('refused connections: backoff grows per failed round up to the maximum, then it reconnects', async (t) => {
    if (!requireMosquitto(t)) return;
    const { proxy, sub } = await rig(t);
    const outbox = await openOutbox(t);
    const producer = new Producer(outbox);
    await producer.append(100);
    proxy.refuse(true);
    const uplink = startUplink(t, outbox, {
      brokers: [proxy.url],
      reconnect: { initialMs: 50, maxMs: 400 },
      random: () => 0.999999, // the top of each jitter range, to see the ceilings
    });
    const delays: number[] = [];
    uplink.on('state', (_state, detail) => {
      const match = /next round in (\d+) ms/.exec(detail.reason ?? '');
      if (match) delays.push(Number(match[1]));
    });
    await waitUntil(() => delays.length >= 6, { description: 'six failed rounds' });
    await producer.append(100); // buffered meanwhile
    proxy.refuse(false);
    await waitForAll(sub, producer);

    assert.deepEqual(delays.slice(0, 6), [49, 99, 199, 399, 399, 399]);
    assert.ok(uplink.stats.connectFailures >= 6);
    assert.equal(verifyDelivery(sub.messages, producer.produced), 0);
  });

  test('half-open link (blackhole) is detected within the keep-alive, idle or busy, and recovers', async (t) => {
    if (!requireMosquitto(t)) return;
    const { proxy, sub } = await rig(t);
    const outbox = await openOutbox(t);
    const producer = new Producer(outbox);
    const uplink = startUplink(t, outbox, { brokers: [proxy.url], keepaliveSeconds: 2 });
    await nextState(uplink, 'connected');

    // Idle: only MQTT.js's keep-alive ping notices (ping after 2 s, given up 1 s later). Its timer is
    // MQTT.js's own, on real time (no clock can be injected there), so a real-time bound it is.
    const started = performance.now();
    proxy.blackhole(true);
    await nextState(uplink, 'disconnected');
    const idleDetectMs = performance.now() - started;
    assert.ok(idleDetectMs < 4000, `idle half-open link detected after ${idleDetectMs} ms`);
    proxy.blackhole(false);
    await nextState(uplink, 'connected');

    // Busy: PUBACKs stop coming; the drain's watchdog gives up after one keep-alive, measured on the
    // uplink's clock — the reason says it was that rule, with that limit, that dropped the link.
    producer.start();
    await waitUntil(() => sub.messages.length > 300, { description: 'traffic flowing' });
    proxy.blackhole(true);
    const busyReason = await nextState(uplink, 'disconnected');
    assert.match(busyReason ?? '', /no PUBACK for \d+ ms \(limit 2000 ms\)/);
    assert.ok(outbox.stats.messages > 0, 'buffering meanwhile');
    await sleep(200);
    proxy.blackhole(false);
    await nextState(uplink, 'connected');
    await sleep(100);
    producer.stop();
    await waitForAll(sub, producer);

    const duplicates = verifyDelivery(sub.messages, producer.produced);
    t.diagnostic(
      `blackhole: idle detected in ${Math.round(idleDetectMs)} ms, busy: ${busyReason} ` +
        `(ack timeouts ${uplink.stats.ackTimeouts}); produced ${producer.produced.length}, duplicates ${duplicates}`,
    );
  });

  test('broker killed and restarted on the same port: the backlog is delivered afterwards', async (t) => {
    if (!requireMosquitto(t)) return;
    const { broker, proxy, sub } = await rig(t);
    const outbox = await openOutbox(t);
    const producer = new Producer(outbox);
    const uplink = startUplink(t, outbox, { brokers: [proxy.url] });
    producer.start();
    await waitUntil(() => sub.messages.length > 300, { description: 'traffic flowing' });
    // Quiesce before the crash: what the broker acknowledged but had not yet passed to the subscriber
    // would be lost by the broker (no persistence) — not what this test is about.
    producer.stop();
    await waitForAll(sub, producer);

    await broker.kill();
    await nextState(uplink, 'disconnected');
    await producer.append(300);
    assert.equal(outbox.stats.messages, 300);
    // Hold the uplink back until the subscriber is back, so the subscriber misses nothing.
    proxy.refuse(true);
    await broker.restart();
    await waitUntil(
      async () => {
        await publishTo(broker.url, 'mqttsn/probe', 'probe', { qos: 1 });
        return sub.messages.some((m) => m.topic === 'mqttsn/probe');
      },
      { timeoutMs: 10_000, intervalMs: 100, description: 'subscriber back' },
    );
    proxy.refuse(false);
    await waitUntil(() => outbox.stats.messages === 0, { timeoutMs: 15_000, description: 'backlog drained' });

    const delivered = sub.messages.filter((m) => m.topic !== 'mqttsn/probe');
    await waitForAll({ ...sub, messages: delivered }, producer);
    const duplicates = verifyDelivery(delivered, producer.produced);
    assert.ok(uplink.stats.connectFailures > 0);
    t.diagnostic(`broker kill/restart: produced ${producer.produced.length}, duplicates ${duplicates}`);
  });

  test('failover: primary refusing -> secondary; the next cycle starts from the primary again', async (t) => {
    if (!requireMosquitto(t)) return;
    const { broker, sub } = await rig(t);
    const primary = await startFaultProxy(broker.port);
    t.after(() => primary.close());
    const secondary = await startFaultProxy(broker.port);
    t.after(() => secondary.close());
    const outbox = await openOutbox(t);
    const producer = new Producer(outbox);
    primary.refuse(true);
    const uplink = startUplink(t, outbox, { brokers: [primary.url, secondary.url] });
    producer.start();
    await waitUntil(() => uplink.stats.broker === secondary.url, {
      description: 'connected to the secondary',
    });
    assert.ok(uplink.stats.connectFailures >= 1);
    await waitUntil(() => sub.messages.length > 200, { description: 'traffic via the secondary' });

    primary.refuse(false);
    secondary.cut();
    await waitUntil(() => uplink.stats.broker === primary.url, { description: 'back on the primary' });
    await waitUntil(() => primary.bytesForwarded > 0 && sub.messages.length > 400, {
      description: 'traffic via primary',
    });
    producer.stop();
    await waitForAll(sub, producer);
    const duplicates = verifyDelivery(sub.messages, producer.produced);
    t.diagnostic(`failover: produced ${producer.produced.length}, duplicates ${duplicates}`);
  });

  test('mqtts:// with the CA given as file contents: verified, connected, delivered; unverified refused', async (t) => {
    if (!requireMosquitto(t)) return;
    const dir = withTempDir(t, 'uplink-tls-');
    try {
      makeCertificates(dir);
    } catch (err) {
      t.skip(`openssl not usable: ${String(err)}`);
      return;
    }
    const tlsPort = await freePort();
    const broker = await startMosquitto({
      extraConfig: [
        `listener ${tlsPort} 127.0.0.1`,
        `certfile ${path.join(dir, 'server.crt')}`,
        `keyfile ${path.join(dir, 'server.key')}`,
      ].join('\n'),
    });
    t.after(() => broker.stop());
    const sub = await collect(broker.url, 'mqttsn/#', { protocolVersion: 5 });
    t.after(() => sub.close());
    const url = `mqtts://127.0.0.1:${tlsPort}`;

    const untrusting = startUplink(t, await openOutbox(t), { brokers: [url] });
    await waitUntil(() => untrusting.stats.connectFailures >= 2, {
      description: 'unverified server refused',
    });
    assert.equal(untrusting.stats.reconnects, 0);
    assert.notEqual(untrusting.state, 'connected');
    await untrusting.stop();

    const outbox = await openOutbox(t);
    const producer = new Producer(outbox);
    await producer.append(200);
    const uplink = startUplink(t, outbox, {
      brokers: [url],
      tls: { ca: readFileSync(path.join(dir, 'ca.crt')) },
    });
    await waitForAll(sub, producer);
    assert.equal(verifyDelivery(sub.messages, producer.produced), 0);
    assert.equal(uplink.stats.broker, url);
  });
});

/** A throwaway CA and a server certificate for 127.0.0.1 (EC keys: fast to make). */
function makeCertificates(dir: string): void {
  const file = (name: string): string => path.join(dir, name);
  const openssl = (...args: string[]): void => void execFileSync('openssl', args, { stdio: 'pipe' });
  const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(
    'req',
    '-x509',
    ...ecKey,
    '-keyout',
    file('ca.key'),
    '-out',
    file('ca.crt'),
    '-days',
    '1',
    '-subj',
    '/CN=test-ca',
  );
  openssl(
    'req',
    ...ecKey,
    '-keyout',
    file('server.key'),
    '-out',
    file('server.csr'),
    '-subj',
    '/CN=127.0.0.1',
  );
  writeFileSync(file('san.ext'), 'subjectAltName=IP:127.0.0.1\n');
  openssl(
    'x509',
    '-req',
    '-in',
    file('server.csr'),
    '-CA',
    file('ca.crt'),
    '-CAkey',
    file('ca.key'),
    '-CAcreateserial',
    '-out',
    file('server.crt'),
    '-days',
    '1',
    '-extfile',
    file('san.ext'),
  );
}
