/**
 * The gateway against a second broker implementation, clustered: a two-node RabbitMQ 3.10 cluster on
 * loopback (test/helpers/rabbitmq.ts), started once for this file. RabbitMQ speaks MQTT 3.1.1 only,
 * answers a QoS 2 PUBLISH with PUBACK, grants at most QoS 1, keeps retained messages per node, and
 * keeps a persistent session's queue on the node it was made on. Fails (never skips) without RabbitMQ.
 */
import assert from 'node:assert/strict';
import { after, before, test, type TestContext } from 'node:test';
import { ReturnCode } from '../src/codec/constants.js';
import {
  collect,
  MqttSnTestClient,
  publishTo,
  sleep,
  waitUntil,
  withTempDir,
  type CollectedMessage,
  type Collector,
} from './helpers/index.js';
import { startRabbitCluster, type RabbitCluster, type RabbitNode } from './helpers/rabbitmq.js';
import { spawnGateway, type GatewayProcess } from './support/gateway-process.js';

let cluster: RabbitCluster;
let nodeA: RabbitNode;
let nodeB: RabbitNode;

/**
 * A new two-node cluster (the one before is closed). A test that kills a node starts on a fresh one
 * and leaves the dead node dead: restarting a SIGKILLed RabbitMQ 3.10 node sometimes hangs at
 * "Starting broker..." here, and one test's cleanup must not decide whether the next test can run.
 */
async function freshCluster(): Promise<void> {
  await cluster?.close();
  const startedAt = Date.now();
  cluster = await startRabbitCluster();
  [nodeA, nodeB] = cluster.nodes;
  console.log(`# RabbitMQ two-node cluster started in ${((Date.now() - startedAt) / 1000).toFixed(1)} s`);
}

before(freshCluster);
after(() => cluster?.close());

/** A hung broker call fails its test instead of stalling the whole suite (and CI) with it. */
const TEST_TIMEOUT_MS = 180_000;
/** Fast failure detection and reconnects, so failovers take seconds. */
const FAST_LINK = ['--keepalive', '2', '--reconnect-initial', '100', '--reconnect-max', '400'];

async function gateway(t: TestContext, brokers: RabbitNode[], extra: string[] = []): Promise<GatewayProcess> {
  const gw = await spawnGateway([
    ...brokers.flatMap((node) => ['--broker', node.url]),
    '--data-dir',
    withTempDir(t, 'mqttsn-rabbit-'),
    '--metrics',
    '127.0.0.1:0',
    ...FAST_LINK,
    ...extra,
  ]);
  t.after(() => gw.signal('SIGKILL'));
  return gw;
}

async function device(t: TestContext, gw: GatewayProcess, clientId: string): Promise<MqttSnTestClient> {
  const client = await MqttSnTestClient.create({ gatewayPort: gw.udpPort });
  t.after(() => client.close());
  const connack = await client.connect({ clientId, duration: 60 });
  assert.equal(connack.returnCode, ReturnCode.ACCEPTED);
  return client;
}

async function consumer(t: TestContext, node: RabbitNode, filter: string): Promise<Collector> {
  const collector = await collect(node.url, filter, { protocolVersion: 4, reconnectPeriod: 0 });
  t.after(() => collector.close());
  return collector;
}

async function metric(gw: GatewayProcess, name: string): Promise<number> {
  const url = /"url":"(http:\/\/127\.0\.0\.1:\d+\/)"/.exec(gw.output())?.[1];
  assert.ok(url, 'the gateway logged its status page address');
  const text = await (await fetch(`${url}metrics`)).text();
  return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
}

/** The broker the gateway is connected to now, from its last "uplink connected" log line. */
function connectedBroker(gw: GatewayProcess): string | undefined {
  const lines = gw
    .output()
    .split('\n')
    .filter((l) => l.includes('"msg":"uplink connected"'));
  return /"broker":"([^"]+)"/.exec(lines.at(-1) ?? '')?.[1];
}

async function subscribe(
  dev: MqttSnTestClient,
  topicName: string,
  qos: 0 | 1 | 2,
  msgId: number,
): Promise<number> {
  await dev.send({ type: 'SUBSCRIBE', dup: false, qos, msgId, topicIdType: 'normal', topicName });
  const suback = await dev.next('SUBACK');
  assert.equal(suback.type === 'SUBACK' && suback.returnCode, ReturnCode.ACCEPTED);
  return suback.type === 'SUBACK' ? suback.qos : -1;
}

/**
 * Publishes `payload` at `node` every 300 ms until the device receives it (a broker subscription is in
 * place only some time after SUBACK, and after a failover only once the gateway subscribed again).
 */
async function commandUntilReceived(
  dev: MqttSnTestClient,
  node: RabbitNode,
  topic: string,
  payload: string,
  timeoutMs: number,
): Promise<{ qos: number }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    // A node may not confirm while the queue it routes to is on a dead node: try again, bounded.
    await publishTo(node.url, topic, payload, { qos: 1, timeoutMs: 2000 }).catch(() => undefined);
    const got = await dev
      .next((p) => p.type === 'PUBLISH' && Buffer.from(p.data).toString() === payload, 300)
      .catch(() => undefined);
    if (got?.type === 'PUBLISH') {
      if (got.qos > 0)
        await dev.send({ type: 'PUBACK', topicId: got.topicId, msgId: got.msgId, returnCode: 0 });
      return { qos: got.qos };
    }
    if (Date.now() > deadline)
      throw new Error(`no ${JSON.stringify(payload)} on ${topic} within ${timeoutMs} ms`);
  }
}

test(
  'MQTT 5 is turned down: the gateway falls back to 3.1.1 by itself; QoS 1 and 2 publishes arrive on the other node',
  { timeout: TEST_TIMEOUT_MS },
  async (t) => {
    const collector = await consumer(t, nodeB, 'mqttsn/#');
    // No --mqtt-version: the default (5) is what a user starts with.
    const gw = await gateway(t, [nodeA]);
    await waitUntil(() => connectedBroker(gw) === nodeA.url, { timeoutMs: 20_000, description: 'connected' });
    const dev = await device(t, gw, 'plain');
    const topicId = await dev.register('data');
    const acks = [
      await dev.publish({ topicId, qos: 1, data: 'at qos 1' }),
      await dev.publish({ topicId, qos: 2, data: 'at qos 2' }),
    ];
    assert.deepEqual(
      acks.map((a) => a?.type),
      ['PUBACK', 'PUBCOMP'],
    );
    // Other topics (the gateway's own status) reach the same consumer: wait for the device's two.
    const arrived = (): string[] =>
      collector.messages.filter((m) => m.topic === 'mqttsn/plain/data').map((m) => m.payload.toString());
    await waitUntil(() => arrived().length >= 2, {
      timeoutMs: 15_000,
      description: 'both messages at node B',
    });
    assert.deepEqual(arrived(), ['at qos 1', 'at qos 2']);
    assert.match(gw.output(), /turned down MQTT 5 and took 3\.1\.1/);
    assert.equal(await metric(gw, 'mqttsn_uplink_protocol_fallbacks_total'), 1);
  },
);

test(
  'downlink through RabbitMQ: a QoS 2 subscription is granted QoS 1 there and commands arrive; retained messages of the node',
  { timeout: TEST_TIMEOUT_MS },
  async (t) => {
    const gw = await gateway(t, [nodeA], ['--mqtt-version', '4']);
    await waitUntil(() => connectedBroker(gw) === nodeA.url, { timeoutMs: 20_000, description: 'connected' });
    // Retained at the node the gateway is connected to (RabbitMQ does not share retained messages).
    await publishTo(nodeA.url, 'mqttsn/listener/state', 'retained on A', { qos: 1, retain: true });
    const dev = await device(t, gw, 'listener');
    const granted = await subscribe(dev, 'cmd', 2, 1);
    assert.equal(
      granted,
      2,
      'the device is granted what it asked for: the gateway delivers at the lower QoS',
    );
    // Published at QoS 2 on the other node: RabbitMQ routes it at QoS 1, and the device gets it at QoS 1.
    const got = await commandUntilReceived(dev, nodeB, 'mqttsn/listener/cmd', 'open valve', 20_000);
    assert.equal(got.qos, 1);
    await subscribe(dev, 'state', 1, 2);
    const retained = await dev.next(
      (p) => p.type === 'PUBLISH' && Buffer.from(p.data).toString() === 'retained on A',
      10_000,
    );
    assert.equal(retained.type === 'PUBLISH' && retained.retain, true);
    await publishTo(nodeA.url, 'mqttsn/listener/state', '', { qos: 1, retain: true });
  },
);

test(
  'the node holding the persistent session dies: the gateway falls back to a clean session, subscribes again, says so',
  { timeout: TEST_TIMEOUT_MS },
  async (t) => {
    await freshCluster();
    const collector = await consumer(t, nodeB, 'mqttsn/#');
    const gw = await gateway(t, [nodeA, nodeB], ['--mqtt-version', '4', '--session-expiry', '3600']);
    await waitUntil(() => connectedBroker(gw) === nodeA.url, {
      timeoutMs: 20_000,
      description: 'connected to A',
    });
    const dev = await device(t, gw, 'valve');
    await subscribe(dev, 'cmd', 1, 1);
    await commandUntilReceived(dev, nodeB, 'mqttsn/valve/cmd', 'before', 20_000);

    await cluster.kill(nodeA);
    // RabbitMQ takes the client id's session queue for lost with its node: every reconnect with the
    // same client id is dropped at SUBSCRIBE. The gateway must get its downlink back by itself.
    await commandUntilReceived(dev, nodeB, 'mqttsn/valve/cmd', 'after', 30_000);
    assert.match(gw.output(), /falling back to a clean session/);
    assert.ok((await metric(gw, 'mqttsn_uplink_clean_session_fallbacks_total')) >= 1);
    // And the uplink runs on the same connection.
    const topicId = await dev.register('state');
    assert.equal((await dev.publish({ topicId, qos: 1, data: 'closed' }))?.type, 'PUBACK');
    await waitUntil(() => collector.messages.some((m) => m.topic === 'mqttsn/valve/state'), {
      timeoutMs: 15_000,
      description: 'an uplink message after the fallback',
    });
    assert.equal(await metric(gw, 'mqttsn_uplink_session_takeovers_total'), 0, 'not taken for a takeover');
  },
);

/** One sensor publishing "<name>:<i>" at QoS 1, one in flight, until stopped; remembers what got PUBACK. */
function sensor(gw: GatewayProcess, name: string): { acked: number[]; stop(): Promise<void> } {
  const acked: number[] = [];
  let running = true;
  let client: MqttSnTestClient | undefined;
  const loop = (async () => {
    client = await MqttSnTestClient.create({ gatewayPort: gw.udpPort });
    assert.equal((await client.connect({ clientId: name, duration: 60 })).returnCode, ReturnCode.ACCEPTED);
    const topicId = await client.register('seq');
    for (let i = 0; running; i++) {
      const ack = await client.publish({ topicId, qos: 1, data: `${name}:${i}` }).catch(() => undefined);
      if (ack?.type === 'PUBACK' && ack.returnCode === ReturnCode.ACCEPTED) acked.push(i);
      else await sleep(20);
    }
  })();
  return {
    acked,
    async stop() {
      running = false;
      await loop;
      await client?.close();
    },
  };
}

/** Per device: what was acknowledged and never delivered, and first deliveries out of order. */
function audit(messages: CollectedMessage[], sensors: Map<string, { acked: number[] }>) {
  const seen = new Set<string>();
  const last = new Map<string, number>();
  let reordered = 0;
  for (const m of messages) {
    const text = m.payload.toString();
    if (seen.has(text)) continue;
    seen.add(text);
    const [name, index] = text.split(':') as [string, string];
    if (Number(index) < (last.get(name) ?? -1)) reordered++;
    last.set(name, Number(index));
  }
  const missing: string[] = [];
  for (const [name, { acked }] of sensors)
    for (const i of acked) if (!seen.has(`${name}:${i}`)) missing.push(`${name}:${i}`);
  return {
    delivered: messages.length,
    unique: seen.size,
    duplicates: messages.length - seen.size,
    reordered,
    missing,
  };
}

test(
  'failover: 20 devices at QoS 1, the node the gateway is connected to dies; every acknowledged message arrives on the other node, in order',
  { timeout: TEST_TIMEOUT_MS },
  async (t) => {
    await freshCluster();
    const collector = await consumer(t, nodeB, 'mqttsn/+/seq');
    const gw = await gateway(t, [nodeA, nodeB], ['--mqtt-version', '4']);
    await waitUntil(() => connectedBroker(gw) === nodeA.url, {
      timeoutMs: 20_000,
      description: 'connected to A',
    });
    const names = Array.from({ length: 20 }, (_, i) => `s${i}`);
    const sensors = new Map(names.map((name) => [name, sensor(gw, name)]));
    const total = (): number => [...sensors.values()].reduce((sum, s) => sum + s.acked.length, 0);
    await waitUntil(() => total() >= 1000, {
      timeoutMs: 60_000,
      description: '1000 acknowledged before the failover',
    });

    const killedAt = Date.now();
    await cluster.kill(nodeA);
    await waitUntil(() => connectedBroker(gw) === nodeB.url, {
      timeoutMs: 30_000,
      description: 'connected to B',
    });
    const failoverMs = Date.now() - killedAt;
    const atFailover = total();
    await waitUntil(() => total() >= atFailover + 1000, {
      timeoutMs: 60_000,
      description: '1000 more after it',
    });
    await Promise.all([...sensors.values()].map((s) => s.stop()));

    try {
      await waitUntil(() => audit(collector.messages, sensors).missing.length === 0, { timeoutMs: 30_000 });
    } catch {
      // reported below, with what is missing
    }
    const report = audit(collector.messages, sensors);
    t.diagnostic(
      `RabbitMQ failover: ${total()} acknowledged, ${report.delivered} delivered (${report.unique} unique), ` +
        `${report.duplicates} duplicates, ${report.reordered} reordered, ${report.missing.length} missing; ` +
        `reconnected to the other node ${failoverMs} ms after the kill`,
    );
    assert.deepEqual(
      report.missing.slice(0, 20),
      [],
      `${report.missing.length} acknowledged messages missing`,
    );
    assert.equal(report.reordered, 0);
  },
);
