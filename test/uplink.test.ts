/**
 * The uplink against an in-process aedes broker (MQTT 3.1.1) and a real LevelDB outbox: draining in
 * order within the window, deleting on PUBACK, presence and last will, downlink subscriptions, restart.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, test, type TestContext } from 'node:test';
import mqttPacket from 'mqtt-packet';
import type { Outbox } from '../src/store/outbox.js';
import { backoffDelay } from '../src/uplink/backoff.js';
import { defaultValue } from '../src/config/defaults.js';
import { resolveUplinkOptions } from '../src/uplink/options.js';
import type { Uplink, UplinkOptions } from '../src/uplink/uplink.js';
// Helpers module by module (not helpers/index.js): these tests must not depend on the codec.
import { startAedes, type AedesHandle } from './helpers/broker.js';
import { collect, publishTo } from './helpers/mqtt.js';
import { LOOPBACK } from './helpers/ports.js';
import { startFaultProxy } from './helpers/proxy.js';
import { withTempDir } from './helpers/tmp.js';
import { waitUntil } from './helpers/wait.js';
import { openOutboxStore, startUplink as startTestUplink } from './support/uplink-rig.js';

const STATUS_TOPIC = 'mqttsn-bridge/test-gw/status';

/** aedes speaks MQTT 3.1.1; these tests use slower timings than the fault tests. */
function startUplink(
  t: TestContext,
  outbox: Outbox,
  options: Partial<UplinkOptions> & { brokers: string[] },
): Uplink {
  return startTestUplink(t, outbox, {
    protocolVersion: 4,
    keepaliveSeconds: 5,
    connectTimeoutMs: 2000,
    reconnect: { initialMs: 50, maxMs: 500 },
    ...options,
  });
}

const openGateway = openOutboxStore;

/** Appends `count` messages numbered from `from`, round-robin over 5 devices; payload = the number. */
function fill(outbox: Outbox, from: number, count: number): void {
  for (let n = from; n < from + count; n++) {
    const device = `dev-${n % 5}`;
    const result = outbox.append({
      clientId: device,
      topic: `mqttsn/${device}/data`,
      payload: Buffer.from(String(n)),
      retain: false,
      qos: 1,
    });
    assert.equal(result, 'queued');
  }
}

function numbers(messages: Array<{ payload: Buffer }>): number[] {
  return messages.map((m) => Number(m.payload.toString()));
}

function range(from: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => from + i);
}

interface WireTap {
  url: string;
  /** Most QoS 1 PUBLISHes seen client -> broker without a PUBACK back, on any one connection. */
  readonly maxInflight: number;
  close(): Promise<void>;
}

/** A TCP pass-through that parses MQTT 3.1.1 both ways, to watch the in-flight window on the wire. */
async function startWireTap(targetPort: number): Promise<WireTap> {
  let maxInflight = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect({ port: targetPort, host: LOOPBACK });
    sockets.add(client).add(upstream);
    let inflight = 0;
    const fromClient = mqttPacket.parser({ protocolVersion: 4 });
    const fromBroker = mqttPacket.parser({ protocolVersion: 4 });
    fromClient.on('packet', (packet) => {
      if (packet.cmd === 'publish' && packet.qos === 1) maxInflight = Math.max(maxInflight, ++inflight);
    });
    fromBroker.on('packet', (packet) => {
      if (packet.cmd === 'puback') inflight--;
    });
    client.on('data', (data: Buffer) => {
      fromClient.parse(data);
      upstream.write(data);
    });
    upstream.on('data', (data: Buffer) => {
      fromBroker.parse(data);
      client.write(data);
    });
    for (const [a, b] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      a.on('close', () => {
        sockets.delete(a);
        b.destroy();
      });
      a.on('error', () => {});
    }
  });
  await new Promise<void>((resolve) => server.listen(0, LOOPBACK, resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `mqtt://${LOOPBACK}:${port}`,
    get maxInflight() {
      return maxInflight;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

async function aedes(t: TestContext): Promise<AedesHandle> {
  const broker = await startAedes();
  t.after(() => broker.close());
  return broker;
}

describe('uplink with aedes', () => {
  test('drains a backlog in order, never more than the window in flight, deleting on PUBACK', async (t) => {
    const broker = await aedes(t);
    const tap = await startWireTap(broker.port);
    t.after(() => tap.close());
    const dir = withTempDir(t, 'uplink-');
    const gw = await openGateway(t, dir);
    fill(gw.outbox, 0, 3000);
    await gw.outbox.flush();

    const sub = await collect(broker.url, 'mqttsn/#');
    t.after(() => sub.close());
    const uplink = startUplink(t, gw.outbox, { brokers: [tap.url], window: 16 });
    const received = await sub.waitFor(3000, 15_000);

    assert.deepEqual(numbers(received), range(0, 3000));
    assert.equal(received[0]?.topic, 'mqttsn/dev-0/data');
    assert.ok(tap.maxInflight <= 16, `max in flight on the wire ${tap.maxInflight}`);
    assert.ok(tap.maxInflight >= 2, `pipelined: max in flight ${tap.maxInflight}`);
    await waitUntil(() => gw.outbox.stats.messages === 0, { description: 'every entry acknowledged' });
    assert.equal(uplink.stats.published, 3000);
    assert.equal(uplink.stats.acked, 3000);
    assert.equal(uplink.stats.resent, 0);
    assert.equal(uplink.stats.window, 16);

    await uplink.stop();
    await gw.close();
    const reopened = await openGateway(t, dir);
    assert.equal(reopened.outbox.stats.messages, 0, 'deletes reached the disk');
    t.diagnostic(`max in flight on the wire: ${tap.maxInflight}`);
  });

  test('forwards live traffic as soon as it is committed', async (t) => {
    const broker = await aedes(t);
    const gw = await openGateway(t, withTempDir(t, 'uplink-'));
    const sub = await collect(broker.url, 'mqttsn/#');
    t.after(() => sub.close());
    const uplink = startUplink(t, gw.outbox, { brokers: [broker.url] });
    await waitUntil(() => uplink.state === 'connected', { description: 'uplink connected' });
    for (let batch = 0; batch < 10; batch++) {
      fill(gw.outbox, batch * 10, 10);
      await sub.waitFor((batch + 1) * 10, 2000);
    }
    assert.deepEqual(numbers(sub.messages), range(0, 100));
  });

  test('presence: retained online on connect, offline by last will on link loss and on clean stop', async (t) => {
    const broker = await aedes(t);
    const proxy = await startFaultProxy(broker.port);
    t.after(() => proxy.close());
    const gw = await openGateway(t, withTempDir(t, 'uplink-'));
    const status = await collect(broker.url, STATUS_TOPIC);
    t.after(() => status.close());
    const uplink = startUplink(t, gw.outbox, {
      brokers: [proxy.url],
      presence: { topic: STATUS_TOPIC },
    });
    await status.waitFor(1);
    proxy.cut(); // the broker sees the socket close: it publishes the will
    await status.waitFor(3, 5000); // offline (will), then online again after the reconnect
    await uplink.stop();
    const statuses = (await status.waitFor(4)).map((m) => m.payload.toString());
    assert.deepEqual(statuses, ['online', 'offline', 'online', 'offline']);
    assert.equal(uplink.stats.reconnects, 1);

    const late = await collect(broker.url, STATUS_TOPIC);
    t.after(() => late.close());
    const [retained] = await late.waitFor(1);
    assert.equal(retained?.payload.toString(), 'offline');
    assert.equal(retained?.retain, true);
  });

  test('downlink: subscriptions are applied, re-applied after a reconnect, and messages emitted', async (t) => {
    const broker = await aedes(t);
    const proxy = await startFaultProxy(broker.port);
    t.after(() => proxy.close());
    const gw = await openGateway(t, withTempDir(t, 'uplink-'));
    const uplink = startUplink(t, gw.outbox, { brokers: [proxy.url] });
    const downlink: string[] = [];
    uplink.on('message', (topic, payload) => downlink.push(`${topic}=${payload.toString()}`));
    await waitUntil(() => uplink.state === 'connected', { description: 'uplink connected' });
    await uplink.subscribe('mqttsn/dev-1/cmd/#', 1);
    await publishTo(broker.url, 'mqttsn/dev-1/cmd/led', 'on', { qos: 1 });
    await waitUntil(() => downlink.length === 1, { description: 'first downlink message' });

    proxy.cut();
    await waitUntil(() => uplink.stats.reconnects === 1 && uplink.state === 'connected', {
      description: 'reconnect',
    });
    // The SUBACK of the re-subscription is not awaited by anyone: retry the publish until it lands.
    await waitUntil(
      async () => {
        await publishTo(broker.url, 'mqttsn/dev-1/cmd/led', 'off', { qos: 1 });
        return downlink.includes('mqttsn/dev-1/cmd/led=off');
      },
      { description: 'downlink after reconnect', intervalMs: 100 },
    );
    // The session is persistent: when the cut came before the PUBACK of 'on' reached the broker, the
    // broker sends 'on' again after the reconnect (at least once), before anything newer.
    const firstSeen = downlink.filter((message, i) => downlink.indexOf(message) === i);
    assert.deepEqual(firstSeen, ['mqttsn/dev-1/cmd/led=on', 'mqttsn/dev-1/cmd/led=off']);
    assert.ok(downlink.indexOf('mqttsn/dev-1/cmd/led=off') <= 2, downlink.join(' '));

    await uplink.unsubscribe('mqttsn/dev-1/cmd/#');
    const before = downlink.length;
    await publishTo(broker.url, 'mqttsn/dev-1/cmd/led', 'ignored', { qos: 1 });
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(downlink.length, before);
  });

  test('resumes after a gateway restart from what is on disk', async (t) => {
    const broker = await aedes(t);
    const dir = withTempDir(t, 'uplink-');
    const sub = await collect(broker.url, 'mqttsn/#');
    t.after(() => sub.close());

    const first = await openGateway(t, dir);
    fill(first.outbox, 0, 5000);
    await first.outbox.flush();
    const firstUplink = startUplink(t, first.outbox, { brokers: [broker.url], window: 32 });
    await sub.waitFor(500, 10_000);
    await firstUplink.stop(); // clean stop mid-backlog: waits for its in-flight PUBACKs
    assert.equal(firstUplink.stats.inflight, 0);
    const deliveredBefore = firstUplink.stats.acked;
    assert.equal(first.outbox.stats.messages, 5000 - deliveredBefore);
    await first.close();

    const second = await openGateway(t, dir);
    assert.equal(second.outbox.stats.messages, 5000 - deliveredBefore);
    startUplink(t, second.outbox, { brokers: [broker.url], window: 32 });
    await waitUntil(() => second.outbox.stats.messages === 0, {
      timeoutMs: 15_000,
      description: 'backlog drained',
    });
    const got = numbers(await sub.waitFor(5000, 5000));
    // At-least-once, in order: first occurrences are exactly 0..4999 in order.
    const firstSeen = got.filter((n, i) => got.indexOf(n) === i);
    assert.deepEqual(firstSeen, range(0, 5000));
    t.diagnostic(`delivered before stop: ${deliveredBefore}, duplicates: ${got.length - 5000}`);
  });
});

describe('uplink options and backoff', () => {
  test('full-jitter backoff doubles per failed round up to the maximum', () => {
    const ceilings = [1, 2, 3, 4, 5, 6, 10].map((round) => backoffDelay(round, 500, 10_000, () => 0.999999));
    assert.deepEqual(ceilings, [499, 999, 1999, 3999, 7999, 9999, 9999]);
    assert.equal(
      backoffDelay(3, 500, 10_000, () => 0),
      0,
    );
    const spread = new Set(Array.from({ length: 50 }, () => backoffDelay(4, 500, 10_000, Math.random)));
    assert.ok(spread.size > 10, 'jittered');
  });

  test('defaults and validation', () => {
    const resolved = resolveUplinkOptions({ brokers: ['mqtt://127.0.0.1:1883'], clientId: 'gw' });
    assert.equal(resolved.protocolVersion, 5);
    // An Uplink built on its own takes the gateway's defaults: the config table reads them from UPLINK_DEFAULTS.
    assert.equal(resolved.keepaliveSeconds, defaultValue('broker.keepaliveSeconds'));
    assert.equal(resolved.window, defaultValue('broker.window'));
    assert.equal(resolved.sessionExpirySeconds, defaultValue('broker.sessionExpirySeconds'));
    assert.deepEqual(resolved.reconnect, {
      initialMs: defaultValue('broker.reconnectInitialMs'),
      maxMs: defaultValue('broker.reconnectMaxMs'),
    });
    assert.deepEqual(
      [resolved.keepaliveSeconds, resolved.window, resolved.sessionExpirySeconds],
      [30, 64, 86_400],
    );
    assert.equal(resolved.presence, undefined);
    assert.throws(() => resolveUplinkOptions({ brokers: [], clientId: 'gw' }), /at least one broker/);
    assert.throws(
      () => resolveUplinkOptions({ brokers: ['ws://x'], clientId: 'gw' }),
      /mqtt:\/\/ or mqtts:\/\//,
    );
    assert.throws(() => resolveUplinkOptions({ brokers: ['mqtt://x'], clientId: 'gw', window: 0 }), /window/);
  });
});
