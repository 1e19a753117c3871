/**
 * Head-of-line safety against a real Mosquitto (MQTT 5) child process: a message the broker refuses
 * (PUBACK >= 0x80, a packet over its limits, a link closed every time the message is sent) is moved
 * to the dead letters, kept in the same LevelDB, and the messages behind it are delivered. Refused
 * subscriptions are dropped. A connected uplink that gets no answers is reported stalled.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import mqttPacket from 'mqtt-packet';
import pino from 'pino';
import { createBridge } from '../src/bridge.js';
import { loadConfig } from '../src/config/load.js';
import { ManualClock } from '../src/gateway/clock.js';
import { checkHealth } from '../src/observe/health.js';
import { DeadLetters } from '../src/store/dead-letter.js';
import type { Outbox } from '../src/store/outbox.js';
import { SubscriptionRefusedError, type Uplink, type UplinkOptions } from '../src/uplink/uplink.js';
import { requireMosquitto, startAedes, startMosquitto, type MosquittoHandle } from './helpers/broker.js';
import { collect, publishTo, uniqueClientId, type Collector } from './helpers/mqtt.js';
import { startFaultProxy } from './helpers/proxy.js';
import { withTempDir } from './helpers/tmp.js';
import { sleep, waitUntil } from './helpers/wait.js';
import { ReturnCode } from '../src/codec/constants.js';
import { MqttSnTestClient } from './helpers/udp-client.js';
import { freeUdpPort, spawnGateway, type GatewayProcess } from './support/gateway-process.js';
import { openOutboxStore, startUplink } from './support/uplink-rig.js';

const CLI = fileURLToPath(new URL('../src/cli.ts', import.meta.url));

/** A logger that keeps its lines, and the warnings among them that speak of a refused subscription. */
function capturingLogger() {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  const refusals = () =>
    lines.filter(
      (l) => l.level === 40 && /refused/i.test(String(l.msg)) && /subscri|filter/i.test(String(l.msg)),
    );
  return { logger, lines, refusals };
}

/**
 * A real bridge on `brokerUrl` (MQTT 3.1.1, quick reconnects) with one connected device, whose
 * subscribe() sends SUBSCRIBE cmd/# and resolves with the SUBACK's return code.
 */
async function bridgeWithDevice(t: TestContext, brokerUrl: string, clientId: string, cleanSession: boolean) {
  const udpPort = await freeUdpPort();
  const config = await loadConfig({
    argv: [
      ...['--data-dir', withTempDir(t, 'refused-sub-'), '--listen', `127.0.0.1:${udpPort}`],
      ...['--broker', brokerUrl, '--mqtt-version', '4', '--uplink-client-id', uniqueClientId('gw')],
      ...['--reconnect-initial', '50', '--reconnect-max', '200'],
    ],
    env: {},
  });
  const log = capturingLogger();
  const bridge = await createBridge(config, { logger: log.logger });
  t.after(() => bridge.stop());
  await waitUntil(() => bridge.uplink.state === 'connected', { description: 'the uplink connected' });
  const device = await MqttSnTestClient.create({ gatewayPort: udpPort });
  t.after(() => device.close());
  assert.equal((await device.connect({ clientId, cleanSession })).returnCode, ReturnCode.ACCEPTED);
  const subscribe = async (): Promise<number> => {
    const msgId = device.nextMsgId();
    const packet = { type: 'SUBSCRIBE', dup: false, qos: 1, msgId } as const;
    await device.send({ ...packet, topicIdType: 'normal', topicName: 'cmd/#' });
    const suback = await device.next((p) => p.type === 'SUBACK' && p.msgId === msgId);
    return (suback as { returnCode: number }).returnCode;
  };
  return { bridge, device, log, subscribe };
}

interface Rig {
  dir: string;
  closeStore: () => Promise<void>;
  broker: MosquittoHandle;
  outbox: Outbox;
  deadLetters: DeadLetters;
  collector: Collector;
}

async function rig(t: TestContext, extraConfig: string): Promise<Rig> {
  const broker = await startMosquitto({ extraConfig });
  t.after(() => broker.stop());
  const dir = withTempDir(t, 'uplink-refusals-');
  const { store, outbox, close } = await openOutboxStore(t, dir);
  const deadLetters = await DeadLetters.open(store);
  t.after(() => deadLetters.idle());
  const collector = await collect(broker.url, 'out/#', { protocolVersion: 5 });
  t.after(() => collector.close());
  return { dir, closeStore: close, broker, outbox, deadLetters, collector };
}

function append(outbox: Outbox, topic: string, payload: Buffer | string): void {
  const result = outbox.append({
    clientId: 'dev-1',
    topic,
    payload: Buffer.from(payload),
    retain: false,
    qos: 1,
  });
  assert.equal(result, 'queued');
}

function start(t: TestContext, r: Rig, options: Partial<UplinkOptions> = {}): Uplink {
  return startUplink(t, r.outbox, { brokers: [r.broker.url], deadLetters: r.deadLetters, ...options });
}

/** Every expected payload arrives, first deliveries in order (re-sends after a link drop allowed). */
async function deliveredInOrder(r: Rig, expected: string[]): Promise<void> {
  const firsts = (): string[] => [...new Set(r.collector.messages.map((m) => m.payload.toString()))];
  await waitUntil(() => firsts().length >= expected.length, {
    timeoutMs: 20_000,
    description: `${expected.length} messages (got ${firsts().join(',')})`,
  });
  assert.deepEqual(firsts(), expected);
}

describe('uplink refusals (Mosquitto, MQTT 5)', () => {
  test('message_size_limit: the 800 B message is dead-lettered (PUBACK 0x95), the rest flows', async (t) => {
    if (!requireMosquitto(t)) return;
    const r = await rig(t, 'message_size_limit 500');
    append(r.outbox, 'out/big', Buffer.alloc(800, 0x61));
    for (let i = 0; i < 5; i++) append(r.outbox, 'out/small', `m${i}`);
    await r.outbox.flush();
    const uplink = start(t, r);
    await deliveredInOrder(r, ['m0', 'm1', 'm2', 'm3', 'm4']);
    await waitUntil(() => r.deadLetters.count === 1, { description: 'the dead letter on disk' });
    const [letter] = await r.deadLetters.list();
    assert.equal(letter!.topic, 'out/big');
    assert.equal(letter!.payload.length, 800);
    assert.equal(letter!.reasonCode, 0x95);
    assert.equal(uplink.stats.deadLettered, 1);
    assert.equal(uplink.stats.refusals['0x95'], 1);
    // Mosquitto closes the link after its PUBACK 0x95; the message is not sent again.
    assert.ok(uplink.stats.reconnects <= 1, `reconnects: ${uplink.stats.reconnects}`);
    await waitUntil(() => r.outbox.stats.messages === 0, { description: 'an empty outbox' });

    // Inspectable: `mqttsn-bridge dead-letters` lists it once the gateway has let go of the data dir.
    await uplink.stop();
    await r.deadLetters.idle();
    await r.closeStore();
    const listed = execFileSync(
      process.execPath,
      ['--import', 'tsx', CLI, 'dead-letters', '--data-dir', r.dir],
      {
        encoding: 'utf8',
      },
    );
    const lines = listed
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    assert.equal(lines.length, 1);
    assert.equal(lines[0]!.topic, 'out/big');
    assert.equal(lines[0]!.reasonCode, 0x95);
    assert.equal(lines[0]!.bytes, 800);
  });

  test('an ACL refusal (PUBACK 0x87) is dead-lettered at once', async (t) => {
    if (!requireMosquitto(t)) return;
    const acl = path.join(withTempDir(t, 'uplink-acl-'), 'acl');
    writeFileSync(acl, 'topic readwrite out/#\n'); // everything else is denied
    const r = await rig(t, `acl_file ${acl}`);
    append(r.outbox, 'secret/x', 'no');
    append(r.outbox, 'out/ok', 'yes');
    await r.outbox.flush();
    const uplink = start(t, r);
    await deliveredInOrder(r, ['yes']);
    await waitUntil(() => r.deadLetters.count === 1, { description: 'the dead letter on disk' });
    const [letter] = await r.deadLetters.list();
    assert.equal(letter!.topic, 'secret/x');
    assert.equal(letter!.reasonCode, 0x87);
    assert.equal(letter!.attempts, 1);
    assert.equal(uplink.stats.refusals['0x87'], 1);
  });

  test('max_packet_size: larger entries are dead-lettered unsent, the edge is told the limit', async (t) => {
    if (!requireMosquitto(t)) return;
    const r = await rig(t, 'max_packet_size 600');
    append(r.outbox, 'out/big', Buffer.alloc(800, 0x61));
    append(r.outbox, 'out/small', 'after');
    await r.outbox.flush();
    const uplink = start(t, r);
    await deliveredInOrder(r, ['after']);
    await waitUntil(() => r.deadLetters.count === 1, { description: 'the dead letter on disk' });
    assert.equal(uplink.stats.reconnects, 0, 'never sent, so the broker never closed the link');
    assert.equal(uplink.stats.maxPacketSize, 600);
    const device = { clientId: 'dev-1', topic: 'out/x' };
    assert.equal(uplink.fits({ ...device, payload: Buffer.alloc(100) }), true);
    assert.equal(uplink.fits({ ...device, payload: Buffer.alloc(700) }), false);
    assert.equal(uplink.stats.tooLarge, 1);
    // The edge of the limit, against mqtt-packet's PUBLISH with the largest user properties the outbox
    // writes (a device id with a 2-byte character, so bytes and not characters are counted).
    const wide = { clientId: 'dév-1', topic: 'out/é' };
    const worst = (payloadBytes: number): number =>
      mqttPacket.generate(
        {
          ...{ cmd: 'publish', topic: wide.topic, payload: Buffer.alloc(payloadBytes), qos: 1 },
          ...{ dup: false, retain: false, messageId: 1 },
          properties: {
            userProperties: {
              'mqttsn-id': 'test-gw:9007199254740991',
              'mqttsn-client': wide.clientId,
              'mqttsn-received': '2000-01-01T00:00:00.000Z',
            },
          },
        },
        { protocolVersion: 5 },
      ).length;
    let edge = 600 - worst(0);
    while (worst(edge) > 600) edge--; // the remaining length's own size grows with the payload
    assert.equal(worst(edge), 600);
    assert.equal(uplink.fits({ ...wide, payload: Buffer.alloc(edge) }), true);
    assert.equal(uplink.fits({ ...wide, payload: Buffer.alloc(edge + 1) }), false);
  });

  test('a message the broker closes the link on (MQTT 3.1.1, over max_packet_size) is dead-lettered after bounded attempts', async (t) => {
    if (!requireMosquitto(t)) return;
    // Over MQTT 3.1.1 the broker cannot announce its limit: it closes the link on the packet, every time.
    // (A topic the broker refuses would do the same, but the drain refuses those before sending.)
    const r = await rig(t, 'max_packet_size 600');
    for (let i = 0; i < 3; i++) append(r.outbox, 'out/before', `b${i}`);
    append(r.outbox, 'out/poison', Buffer.alloc(800, 0x61));
    for (let i = 0; i < 3; i++) append(r.outbox, 'out/after', `a${i}`);
    await r.outbox.flush();
    const uplink = start(t, r, { protocolVersion: 4 });
    await deliveredInOrder(r, ['b0', 'b1', 'b2', 'a0', 'a1', 'a2']);
    const [letter] = await r.deadLetters.list();
    assert.equal(letter!.topic, 'out/poison');
    assert.equal(letter!.attempts, 5);
    // 3 quick drops + 2 lone probes, plus the drops blamed on b1/b2 first (Mosquitto closes before
    // their PUBACKs are flushed): bounded, where before it reconnected forever.
    assert.ok(uplink.stats.reconnects <= 10, `bounded reconnects, got ${uplink.stats.reconnects}`);
  });

  test('healthy messages are not dead-lettered by a broker that crashes again and again', async (t) => {
    if (!requireMosquitto(t)) return;
    const r = await rig(t, '');
    const uplink = start(t, r, { window: 16 });
    let n = 0;
    const producer = setInterval(() => {
      for (let i = 0; i < 20; i++) append(r.outbox, 'out/load', `x${n++}`);
    }, 5);
    t.after(() => clearInterval(producer));
    for (let crash = 0; crash < 6; crash++) {
      await sleep(150);
      await r.broker.kill();
      await r.broker.restart();
    }
    clearInterval(producer);
    await waitUntil(() => r.outbox.stats.messages === 0, {
      timeoutMs: 30_000,
      description: 'the backlog delivered',
    });
    assert.equal(uplink.stats.deadLettered, 0);
    assert.equal(r.deadLetters.count, 0);
  });
});

describe('refused subscriptions (aedes, MQTT 3.1.1 SUBACK 0x80)', () => {
  test('the caller hears of it, the filter is dropped and not asked for again after a reconnect', async (t) => {
    const asked: string[] = [];
    const broker = await startAedes({
      authorizeSubscribe: (_client, sub, done) => {
        asked.push(sub.topic);
        done(null, sub.topic.startsWith('secret/') ? null : sub);
      },
    });
    t.after(() => broker.close());
    const proxy = await startFaultProxy(broker.port);
    t.after(() => proxy.close());
    const { outbox } = await openOutboxStore(t, withTempDir(t, 'uplink-suback-'));
    // A clean session: with a persistent one aedes re-authorizes the filters it restores itself, so
    // `asked` would also count the broker's own restore of 'open/cmd', not only what the uplink sent.
    const uplink = startUplink(t, outbox, {
      brokers: [proxy.url],
      protocolVersion: 4,
      sessionExpirySeconds: 0,
    });
    await waitUntil(() => uplink.state === 'connected', { description: 'the uplink connected' });
    await assert.rejects(uplink.subscribe('secret/cmd', 1), SubscriptionRefusedError);
    await uplink.subscribe('open/cmd', 1);
    assert.equal(uplink.stats.subscribeRefused, 1);
    asked.length = 0;
    proxy.cut();
    await waitUntil(() => asked.length > 0, { timeoutMs: 10_000, description: 're-subscribed' });
    await sleep(200);
    assert.deepEqual(asked, ['open/cmd']);
  });
});

describe('a filter the broker refuses when the uplink re-applies it (aedes, MQTT 3.1.1)', () => {
  test('is dropped from the devices that held it, and asked for afresh at their next SUBSCRIBE', async (t) => {
    let refuse = false;
    const asked: string[] = [];
    const broker = await startAedes({
      authorizeSubscribe: (_client, sub, done) => {
        asked.push(sub.topic);
        done(null, refuse && sub.topic.startsWith('mqttsn/') ? null : sub);
      },
    });
    t.after(() => broker.close());
    const proxy = await startFaultProxy(broker.port);
    t.after(() => proxy.close());
    const { bridge, device, log, subscribe } = await bridgeWithDevice(t, proxy.url, 'acl-1', false);
    assert.equal(await subscribe(), ReturnCode.ACCEPTED);
    const held = (): number => bridge.gateway.sessions.byClientId('acl-1')?.subscriptions.size ?? -1;
    assert.equal(held(), 1);

    // The broker's ACL changes while the link is down: the re-applied filter is refused.
    refuse = true;
    proxy.cut();
    await waitUntil(() => bridge.uplink.stats.subscribeRefused === 1, {
      timeoutMs: 10_000,
      description: 'the re-applied filter refused',
    });
    await waitUntil(() => held() === 0, {
      timeoutMs: 2000,
      description: "the device's subscription dropped",
    });
    assert.equal(bridge.gateway.subscriptions.filterCount, 0);
    // One refusal, one line: which filter, the broker's code, and the devices that lost it.
    const said = log.refusals();
    assert.equal(said.length, 1, JSON.stringify(said));
    assert.equal(said[0]!.filter, 'mqttsn/acl-1/cmd/#');
    assert.deepEqual(said[0]!.clientIds, ['acl-1']);
    assert.equal(said[0]!.reasonCode, '0x80');

    // The ACL is back: the device's next SUBSCRIBE asks the broker again, and commands flow.
    refuse = false;
    asked.length = 0;
    assert.equal(await subscribe(), ReturnCode.ACCEPTED);
    assert.deepEqual(asked, ['mqttsn/acl-1/cmd/#']);
    await publishTo(broker.url, 'mqttsn/acl-1/cmd/led', 'on', { qos: 1 });
    const register = await device.next((p) => p.type === 'REGISTER', 5000);
    if (register.type !== 'REGISTER') assert.fail('a REGISTER for the command topic');
    await device.send({ type: 'REGACK', topicId: register.topicId, msgId: register.msgId, returnCode: 0 });
    const command = await device.next((p) => p.type === 'PUBLISH', 5000);
    assert.equal(Buffer.from((command as { data: Uint8Array }).data).toString(), 'on');
  });
});

describe("a device's SUBSCRIBE the broker refuses (aedes, MQTT 3.1.1 SUBACK 0x80)", () => {
  test('is answered "not supported", and said once: one line with the client and its address', async (t) => {
    const broker = await startAedes({
      authorizeSubscribe: (_client, sub, done) => done(null, sub.topic.startsWith('mqttsn/') ? null : sub),
    });
    t.after(() => broker.close());
    const { bridge, log, subscribe } = await bridgeWithDevice(t, broker.url, 'acl-2', true);
    assert.equal(await subscribe(), ReturnCode.NOT_SUPPORTED);
    assert.equal(bridge.gateway.sessions.byClientId('acl-2')?.subscriptions.size, 0);
    assert.equal(bridge.uplink.stats.subscribeRefused, 1);
    await sleep(100); // anything logged late would be logged by now
    const said = log.refusals();
    assert.equal(said.length, 1, JSON.stringify(said));
    assert.equal(said[0]!.clientId, 'acl-2');
    assert.match(String(said[0]!.address), /^127\.0\.0\.1:\d+$/);
  });
});

describe('/healthz: a stalled uplink', () => {
  test('connected, messages waiting, no PUBACK for longer than the stall limit: unhealthy', async (t) => {
    if (!requireMosquitto(t)) return;
    const broker = await startMosquitto();
    t.after(() => broker.stop());
    const proxy = await startFaultProxy(broker.port);
    t.after(() => proxy.close());
    const { outbox } = await openOutboxStore(t, withTempDir(t, 'uplink-stall-'));
    const clock = new ManualClock();
    const uplink = startUplink(t, outbox, {
      brokers: [proxy.url],
      keepaliveSeconds: 30, // the half-open link is not noticed within this test
      now: () => clock.now(),
    });
    const health = (): ReturnType<typeof checkHealth> =>
      checkHealth({
        accepting: true,
        uplink: uplink.stats,
        outbox: outbox.stats,
        quota: { maxMessages: 100_000, maxBytes: 1 << 26 },
        stallMs: 60_000,
      });
    await waitUntil(() => uplink.state === 'connected', { description: 'the uplink connected' });
    append(outbox, 'out/a', 'one');
    await waitUntil(() => outbox.stats.messages === 0, { description: 'the first message acknowledged' });
    proxy.blackhole(true);
    append(outbox, 'out/a', 'two');
    await waitUntil(() => uplink.stats.inflight === 1, { description: 'the second message in flight' });
    clock.advance(59_000);
    assert.deepEqual(health(), { ok: true });
    clock.advance(2_000);
    const verdict = health();
    assert.equal(verdict.ok, false);
    assert.match(verdict.ok ? '' : verdict.reason, /stalled/);
    assert.equal(uplink.state, 'connected');
  });

  test('an idle uplink with an empty outbox is not stalled, nor one whose broker is just down', async (t) => {
    if (!requireMosquitto(t)) return;
    const broker = await startMosquitto();
    t.after(() => broker.stop());
    const { outbox } = await openOutboxStore(t, withTempDir(t, 'uplink-idle-'));
    const clock = new ManualClock();
    const uplink = startUplink(t, outbox, { brokers: [broker.url], now: () => clock.now() });
    const health = (): ReturnType<typeof checkHealth> =>
      checkHealth({
        accepting: true,
        uplink: uplink.stats,
        outbox: outbox.stats,
        quota: { maxMessages: 100_000, maxBytes: 1 << 26 },
        stallMs: 60_000,
      });
    await waitUntil(() => uplink.state === 'connected', { description: 'the uplink connected' });
    append(outbox, 'out/a', 'one');
    await waitUntil(() => outbox.stats.messages === 0, { description: 'acknowledged' });
    clock.advance(600_000);
    assert.deepEqual(health(), { ok: true });
    // A new message after a long quiet spell is not "stalled" the moment it arrives.
    append(outbox, 'out/a', 'two');
    await waitUntil(() => outbox.stats.messages === 0, { description: 'acknowledged' });
    assert.deepEqual(health(), { ok: true });
    await broker.stop();
    append(outbox, 'out/a', 'three');
    await outbox.flush();
    await waitUntil(() => uplink.state !== 'connected', { description: 'the uplink down' });
    clock.advance(600_000);
    assert.deepEqual(health(), { ok: true });
  });
});

describe('the edge hears what the broker will not take (gateway process)', () => {
  async function gatewayOn(t: TestContext, brokerUrl: string, extra: string[] = []): Promise<GatewayProcess> {
    const gw = await spawnGateway([
      '--broker',
      brokerUrl,
      '--data-dir',
      withTempDir(t, 'uplink-edge-'),
      '--metrics',
      '127.0.0.1:0',
      ...extra,
    ]);
    t.after(async () => {
      await gw.signal('SIGKILL');
    });
    return gw;
  }

  async function metric(gw: GatewayProcess, name: string): Promise<number> {
    const url = /"url":"(http:\/\/127\.0\.0\.1:\d+\/)"/.exec(gw.output())?.[1];
    assert.ok(url, 'the gateway logged its status page address');
    const text = await (await fetch(`${url}metrics`)).text();
    return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
  }

  async function device(t: TestContext, gw: GatewayProcess, clientId: string): Promise<MqttSnTestClient> {
    const dev = await MqttSnTestClient.create({ gatewayPort: gw.udpPort });
    t.after(() => dev.close());
    assert.equal((await dev.connect({ clientId, duration: 60 })).returnCode, ReturnCode.ACCEPTED);
    return dev;
  }

  test("a PUBLISH over the broker's Maximum Packet Size gets PUBACK 'not supported'; the rest flows", async (t) => {
    if (!requireMosquitto(t)) return;
    const broker = await startMosquitto({ extraConfig: 'max_packet_size 400' });
    t.after(() => broker.stop());
    const collector = await collect(broker.url, 'mqttsn/#', { protocolVersion: 5 });
    t.after(() => collector.close());
    const gw = await gatewayOn(t, broker.url);
    await waitUntil(() => collector.messages.some((m) => m.payload.toString() === 'online'), {
      timeoutMs: 10_000,
      description: 'gateway presence online',
    });
    const dev = await device(t, gw, 'big-sender');
    const topicId = await dev.register('data');
    const big = await dev.publish({ topicId, qos: 1, data: Buffer.alloc(600, 0x61) });
    assert.ok(big?.type === 'PUBACK');
    assert.equal(big.returnCode, ReturnCode.NOT_SUPPORTED);
    const small = await dev.publish({ topicId, qos: 1, data: 'small' });
    assert.ok(small?.type === 'PUBACK');
    assert.equal(small.returnCode, ReturnCode.ACCEPTED);
    await waitUntil(() => collector.messages.some((m) => m.payload.toString() === 'small'), {
      description: 'the small message at the broker',
    });
    assert.equal(await metric(gw, 'mqttsn_uplink_too_large_refused_total'), 1);
    assert.equal(await metric(gw, 'mqttsn_uplink_reconnects_total'), 0);
  });

  test("a SUBSCRIBE the broker refuses gets SUBACK 'not supported'", async (t) => {
    const broker = await startAedes({
      authorizeSubscribe: (_client, sub, done) => done(null, sub.topic.includes('/secret') ? null : sub),
    });
    t.after(() => broker.close());
    const gw = await gatewayOn(t, broker.url, ['--mqtt-version', '4']);
    const dev = await device(t, gw, 'curious');
    await waitUntil(async () => (await metric(gw, 'mqttsn_uplink_state{state="connected"}')) === 1, {
      description: 'the uplink connected',
    });
    const subscribe = async (msgId: number, topicName: string): Promise<number> => {
      await dev.send({ type: 'SUBSCRIBE', dup: false, qos: 1, msgId, topicIdType: 'normal', topicName });
      const suback = await dev.next('SUBACK', 5000);
      assert.ok(suback.type === 'SUBACK' && suback.msgId === msgId);
      return suback.returnCode;
    };
    assert.equal(await subscribe(1, 'secret'), ReturnCode.NOT_SUPPORTED);
    assert.equal(await subscribe(2, 'open'), ReturnCode.ACCEPTED);
    assert.equal(await metric(gw, 'mqttsn_uplink_subscriptions_refused_total'), 1);
  });
});
