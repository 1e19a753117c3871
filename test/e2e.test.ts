import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { test, type TestContext } from 'node:test';
import { ReturnCode } from '../src/codec/constants.js';
import {
  collect,
  publishTo,
  MqttSnTestClient,
  requireMosquitto,
  sleep,
  startAedes,
  startFaultProxy,
  startMosquitto,
  waitUntil,
  withTempDir,
  type CollectedMessage,
  type Collector,
  type FaultProxy,
  type MosquittoHandle,
} from './helpers/index.js';
import { spawnGateway, type GatewayProcess } from './support/gateway-process.js';

/** Fast failure detection and reconnects, so fault tests take seconds. */
const FAST_LINK = ['--keepalive', '2', '--reconnect-initial', '100', '--reconnect-max', '400'];

async function gatewayFor(t: TestContext, brokerUrl: string, extra: string[] = []): Promise<GatewayProcess> {
  const gw = await spawnGateway([
    '--broker',
    brokerUrl,
    '--data-dir',
    withTempDir(t, 'mqttsn-e2e-'),
    '--uplink-client-id',
    `gw-${process.pid}-${Math.random().toString(36).slice(2, 8)}`,
    ...FAST_LINK,
    ...extra,
  ]);
  t.after(async () => {
    await gw.signal('SIGKILL');
  });
  return gw;
}

async function device(t: TestContext, gw: GatewayProcess, clientId: string): Promise<MqttSnTestClient> {
  const client = await MqttSnTestClient.create({ gatewayPort: gw.udpPort });
  t.after(() => client.close());
  const connack = await client.connect({ clientId, duration: 60 });
  assert.equal(connack.returnCode, ReturnCode.ACCEPTED);
  return client;
}

/** Each device publishes `count` QoS 1 messages "<client>:<i>", one in flight at a time like a sensor. */
async function publishSequences(
  clients: MqttSnTestClient[],
  names: string[],
  count: number,
): Promise<number[]> {
  return Promise.all(
    clients.map(async (client, k) => {
      const topicId = await client.register('seq');
      let accepted = 0;
      for (let i = 0; i < count; i++) {
        const ack = await client.publish({ topicId, qos: 1, data: `${names[k]}:${i}` });
        if (ack?.type === 'PUBACK' && ack.returnCode === ReturnCode.ACCEPTED) accepted++;
      }
      return accepted;
    }),
  );
}

interface DeliveryReport {
  total: number;
  unique: number;
  duplicates: number;
  missing: string[];
  outOfOrder: string[];
}

/** Completeness and per-client order of "<client>:<i>" payloads, counting duplicates. */
function checkDelivery(messages: CollectedMessage[], names: string[], count: number): DeliveryReport {
  const seen = new Set<string>();
  const lastIndex = new Map<string, number>();
  const outOfOrder: string[] = [];
  for (const m of messages) {
    const text = m.payload.toString();
    const [name, index] = text.split(':') as [string, string];
    const i = Number(index);
    // A replay may repeat earlier messages, but a first delivery never comes before an older one's.
    if (!seen.has(text) && i !== (lastIndex.get(name) ?? -1) + 1) outOfOrder.push(text);
    if (!seen.has(text)) lastIndex.set(name, i);
    seen.add(text);
  }
  const missing: string[] = [];
  for (const name of names)
    for (let i = 0; i < count; i++) if (!seen.has(`${name}:${i}`)) missing.push(`${name}:${i}`);
  return {
    total: messages.length,
    unique: seen.size,
    duplicates: messages.length - seen.size,
    missing,
    outOfOrder,
  };
}

/** Waits until every "<name>:<i>" arrived; on timeout the error carries what is missing and the gateway's log. */
async function waitForDelivery(
  gw: GatewayProcess,
  collector: Collector,
  names: string[],
  count: number,
  what: string,
): Promise<void> {
  try {
    await waitUntil(() => checkDelivery(onlySeq(collector), names, count).missing.length === 0, {
      timeoutMs: 30_000,
      description: what,
    });
  } catch (err) {
    const { missing, total } = checkDelivery(onlySeq(collector), names, count);
    throw new Error(
      `${(err as Error).message}: ${total} arrived, ${missing.length} missing (first: ${missing.slice(0, 5).join(' ')})\ngateway log (tail):\n${gw.output().slice(-4000)}`,
    );
  }
}

async function waitOnline(collector: Collector): Promise<void> {
  await waitUntil(
    () => collector.messages.some((m) => m.topic.includes('$gateway') && m.payload.toString() === 'online'),
    {
      timeoutMs: 10_000,
      description: 'gateway presence online',
    },
  );
}

/** Mosquitto behind the fault proxy, a v5 collector on it, and the gateway dialling through the proxy. */
async function behindFaultProxy(
  t: TestContext,
  filter: string,
  extra: string[] = [],
): Promise<{ mosquitto: MosquittoHandle; proxy: FaultProxy; collector: Collector; gw: GatewayProcess }> {
  const mosquitto = await startMosquitto();
  t.after(() => mosquitto.stop());
  const proxy = await startFaultProxy(mosquitto.port);
  t.after(() => proxy.close());
  const collector = await collect(mosquitto.url, filter, { protocolVersion: 5 });
  t.after(() => collector.close());
  const gw = await gatewayFor(t, proxy.url, extra);
  await waitOnline(collector);
  return { mosquitto, proxy, collector, gw };
}

test('every message kind reaches the broker under its namespaced topic, with a stable id', async (t) => {
  if (!requireMosquitto(t)) return;
  const broker = await startMosquitto();
  t.after(() => broker.stop());
  const collector = await collect(broker.url, ['mqttsn/#', 'factory/#'], { protocolVersion: 5 });
  t.after(() => collector.close());
  const gw = await gatewayFor(t, broker.url, ['--predefined', '5=factory/alarms']);
  await waitOnline(collector);

  const dev = await device(t, gw, 'kinds');
  await dev.publish({ topicName: 'normal/q0', qos: 0, data: 'q0' });
  await dev.publish({ topicName: 'normal/q1', qos: 1, data: 'q1', retain: true });
  await dev.publish({ topicName: 'normal/q2', qos: 2, data: 'q2' });
  await dev.publish({ topicName: 'sh', topicIdType: 'short', qos: 1, data: 'short' });
  await dev.publish({ topicId: 5, topicIdType: 'predefined', qos: 1, data: 'predefined' });
  const anonymous = await MqttSnTestClient.create({ gatewayPort: gw.udpPort });
  t.after(() => anonymous.close());
  await anonymous.publish({ topicName: 'an', topicIdType: 'short', qos: -1, data: 'qos-1' });
  const willer = await MqttSnTestClient.create({ gatewayPort: gw.udpPort });
  await willer.connect({
    clientId: 'willer',
    duration: 1,
    will: { topic: 'status', message: 'died', retain: true },
  });
  await willer.close(); // silent: lost after 1.5 s

  const got = await collector.waitFor(8, 10_000);
  const byPayload = new Map(got.map((m) => [m.payload.toString(), m]));
  const expected: Array<[string, string, boolean]> = [
    ['q0', 'mqttsn/kinds/normal/q0', false],
    ['q1', 'mqttsn/kinds/normal/q1', true],
    ['q2', 'mqttsn/kinds/normal/q2', false],
    ['short', 'mqttsn/kinds/sh', false],
    ['predefined', 'factory/alarms', false],
    ['qos-1', 'mqttsn/$anonymous/an', false],
    ['died', 'mqttsn/willer/status', true],
  ];
  for (const [payload, topic, retain] of expected) {
    const m = byPayload.get(payload);
    assert.ok(m, `${payload} arrived`);
    assert.equal(m.topic, topic, payload);
    assert.equal(m.retain, retain, `${payload} retain`);
    assert.equal(m.qos, 1, `${payload} travels upstream at QoS 1`);
  }
  const props = byPayload.get('q1')!.properties?.userProperties as Record<string, string> | undefined;
  assert.match(String(props?.['mqttsn-id']), /^gw-.+:\d+$/);
  assert.equal(props?.['mqttsn-client'], 'kinds');
  assert.ok(!Number.isNaN(Date.parse(String(props?.['mqttsn-received']))));
});

test('20 devices through a link outage: every acknowledged message arrives, in per-client order', async (t) => {
  if (!requireMosquitto(t)) return;
  const { proxy, collector, gw } = await behindFaultProxy(t, 'mqttsn/#');

  proxy.refuse(true);
  proxy.cut();
  const names = Array.from({ length: 20 }, (_, i) => `dev${i}`);
  const clients = await Promise.all(names.map((name) => device(t, gw, name)));
  const perClient = 150;
  const accepted = await publishSequences(clients, names, perClient);
  assert.deepEqual(
    accepted,
    names.map(() => perClient),
    'every QoS 1 PUBLISH acknowledged while the link is down',
  );
  await sleep(300);
  assert.equal(
    collector.messages.filter((m) => m.topic.endsWith('/seq')).length,
    0,
    'nothing passed while cut',
  );

  proxy.refuse(false);
  await waitForDelivery(gw, collector, names, perClient, 'backlog replayed');
  const report = checkDelivery(onlySeq(collector), names, perClient);
  t.diagnostic(`outage: ${report.total} delivered, ${report.unique} unique, ${report.duplicates} duplicates`);
  assert.deepEqual(report.missing, []);
  assert.deepEqual(report.outOfOrder, []);
});

test('the same outage with the gateway SIGKILLed and restarted in the middle loses nothing', async (t) => {
  if (!requireMosquitto(t)) return;
  const { proxy, collector, gw } = await behindFaultProxy(t, 'mqttsn/#');

  proxy.refuse(true);
  proxy.cut();
  const names = Array.from({ length: 20 }, (_, i) => `k${i}`);
  const clients = await Promise.all(names.map((name) => device(t, gw, name)));
  const perClient = 100;
  const accepted = await publishSequences(clients, names, perClient);
  assert.deepEqual(
    accepted,
    names.map(() => perClient),
  );

  assert.equal(await gw.signal('SIGKILL'), null);
  await gw.restart();
  proxy.refuse(false);
  await waitForDelivery(gw, collector, names, perClient, 'backlog replayed after restart');
  const report = checkDelivery(onlySeq(collector), names, perClient);
  t.diagnostic(
    `SIGKILL outage: ${report.total} delivered, ${report.unique} unique, ${report.duplicates} duplicates`,
  );
  assert.deepEqual(report.outOfOrder, []);
});

test('a half-open link (blackhole) is detected within the keep-alive; buffering takes over, then replay', async (t) => {
  if (!requireMosquitto(t)) return;
  const { proxy, collector, gw } = await behindFaultProxy(t, 'mqttsn/#');
  const dev = await device(t, gw, 'bh');

  const acceptedBefore = proxy.accepted;
  proxy.blackhole(true);
  const started = Date.now();
  const accepted = await publishSequences([dev], ['bh'], 50);
  assert.deepEqual(accepted, [50]);
  // Detection shows as the gateway dropping the dead connection and dialling again.
  await waitUntil(() => proxy.accepted > acceptedBefore, {
    timeoutMs: 8_000,
    description: 'gateway to notice the half-open link',
  });
  const detectedMs = Date.now() - started;
  t.diagnostic(`blackhole detected after ${detectedMs} ms (keep-alive 2 s)`);
  assert.ok(detectedMs <= 2 * 2000 + 1000, `detected within about the keep-alive: ${detectedMs} ms`);

  proxy.blackhole(false);
  proxy.cut();
  await waitForDelivery(gw, collector, ['bh'], 50, 'replay after the blackhole');
  assert.deepEqual(checkDelivery(onlySeq(collector), ['bh'], 50).outOfOrder, []);
});

test('a full outbox refuses QoS 1 with PUBACK "congestion" and keeps what it acknowledged', async (t) => {
  if (!requireMosquitto(t)) return;
  const { proxy, collector, gw } = await behindFaultProxy(t, 'mqttsn/#', ['--outbox-max-messages', '40']);
  proxy.refuse(true);
  proxy.cut();
  const dev = await device(t, gw, 'full');
  const topicId = await dev.register('seq');
  const codes: number[] = [];
  for (let i = 0; i < 50; i++) {
    const ack = await dev.publish({ topicId, qos: 1, data: `full:${i}` });
    codes.push(ack?.type === 'PUBACK' ? ack.returnCode : -1);
  }
  assert.deepEqual(codes.slice(0, 40), Array(40).fill(ReturnCode.ACCEPTED));
  assert.deepEqual(codes.slice(40), Array(10).fill(ReturnCode.CONGESTION));
  proxy.refuse(false);
  await waitForDelivery(gw, collector, ['full'], 40, 'the 40 accepted messages');
  await sleep(200);
  assert.equal(
    new Set(onlySeq(collector).map((m) => m.payload.toString())).size,
    40,
    'exactly the acknowledged ones',
  );
});

test('a broker restart loses nothing: messages acknowledged while it was down arrive after it returns', async (t) => {
  if (!requireMosquitto(t)) return;
  // The harness makes Mosquitto save on every change: a SIGKILLed broker still knows the subscriber's session.
  const mosquitto = await startMosquitto({ persistence: true });
  t.after(() => mosquitto.stop());
  const collector = await collect(mosquitto.url, 'mqttsn/#', {
    protocolVersion: 5,
    clean: false,
    clientId: `restart-sub-${process.pid}`,
  });
  t.after(() => collector.close());
  const gw = await gatewayFor(t, mosquitto.url);
  await waitOnline(collector);
  const dev = await device(t, gw, 'rs');
  const topicId = await dev.register('seq');
  for (let i = 0; i < 20; i++) await dev.publish({ topicId, qos: 1, data: `rs:${i}` });
  await waitUntil(() => onlySeq(collector).length >= 20, { description: 'the first 20 before the kill' });
  await mosquitto.kill();
  for (let i = 20; i < 60; i++) {
    const ack = await dev.publish({ topicId, qos: 1, data: `rs:${i}` });
    assert.equal(ack?.type === 'PUBACK' && ack.returnCode, ReturnCode.ACCEPTED);
  }
  await mosquitto.restart();
  await waitForDelivery(gw, collector, ['rs'], 60, 'all 60 after the broker restart');
  const report = checkDelivery(onlySeq(collector), ['rs'], 60);
  t.diagnostic(`broker restart: ${report.total} delivered, ${report.duplicates} duplicates`);
  assert.deepEqual(report.outOfOrder, []);
});

test('MQTT 3.1.1 to aedes; SIGTERM shuts down cleanly: exit 0, presence offline', async (t) => {
  const broker = await startAedes();
  t.after(() => broker.close());
  const collector = await collect(broker.url, 'mqttsn/#', { protocolVersion: 4 });
  t.after(() => collector.close());
  const gw = await gatewayFor(t, broker.url, ['--mqtt-version', '4']);
  await waitOnline(collector);
  const dev = await device(t, gw, 'term');
  await dev.publish({ topicName: 'x', qos: 1, data: 'before' });
  await waitUntil(() => collector.messages.some((m) => m.topic === 'mqttsn/term/x'), {
    description: 'a 3.1.1 delivery',
  });
  assert.equal(await gw.signal('SIGTERM'), 0, gw.output());
  await waitUntil(() => collector.messages.some((m) => m.payload.toString() === 'offline'), {
    description: 'presence offline',
  });
});

function onlySeq(collector: Collector): CollectedMessage[] {
  return collector.messages.filter((m) => m.topic.endsWith('/seq'));
}

/** The status API of a gateway started with --metrics 127.0.0.1:0 (the port is read from its log). */
async function statusOf(
  gw: GatewayProcess,
): Promise<{ devices: { shown: Array<{ clientId: string; state: string; queued: number }> } }> {
  const url = /"url":"(http:\/\/127\.0\.0\.1:\d+\/)"/.exec(gw.output())?.[1];
  assert.ok(url, 'the gateway logged its status page address');
  return (await fetch(`${url}api/status`)).json() as never;
}

async function queuedFor(gw: GatewayProcess, clientId: string): Promise<number> {
  const status = await statusOf(gw);
  return status.devices.shown.find((d) => d.clientId === clientId)?.queued ?? -1;
}

test('a sleeping device’s buffered commands survive a gateway SIGKILL and arrive when it wakes', async (t) => {
  if (!requireMosquitto(t)) return;
  const mosquitto = await startMosquitto();
  t.after(() => mosquitto.stop());
  const collector = await collect(mosquitto.url, 'mqttsn/$gateway/#', { protocolVersion: 5 });
  t.after(() => collector.close());
  const gw = await gatewayFor(t, mosquitto.url, ['--metrics', '127.0.0.1:0']);
  await waitOnline(collector);
  const dev = await MqttSnTestClient.create({ gatewayPort: gw.udpPort });
  t.after(() => dev.close());
  await dev.connect({ clientId: 'nightowl', cleanSession: false, duration: 60 });
  await dev.send({
    type: 'SUBSCRIBE',
    dup: false,
    qos: 1,
    msgId: 1,
    topicIdType: 'normal',
    topicName: 'cmd/#',
  });
  await dev.next('SUBACK');
  await dev.disconnect(600);
  for (let i = 0; i < 3; i++)
    await publishTo(mosquitto.url, `mqttsn/nightowl/cmd/${i}`, `command ${i}`, { qos: 1 });
  await waitUntil(async () => (await queuedFor(gw, 'nightowl')) === 3, {
    description: 'three commands parked',
  });

  assert.equal(await gw.signal('SIGKILL'), null);
  await gw.restart();
  await waitOnline(collector);
  await dev.send({ type: 'PINGREQ', clientId: 'nightowl' });
  const got: string[] = [];
  for (let i = 0; i < 3; i++) {
    const p = await dev.next((x) => x.type === 'REGISTER' || x.type === 'PUBLISH');
    if (p.type === 'REGISTER') {
      await dev.send({ type: 'REGACK', topicId: p.topicId, msgId: p.msgId, returnCode: 0 });
      i--;
      continue;
    }
    assert.ok(p.type === 'PUBLISH');
    got.push(Buffer.from(p.data).toString());
    await dev.send({ type: 'PUBACK', topicId: p.topicId, msgId: p.msgId, returnCode: 0 });
  }
  assert.deepEqual(got, ['command 0', 'command 1', 'command 2']);
  await dev.next('PINGRESP');
});

test('commands published while the gateway is disconnected wait at the broker (persistent session)', async (t) => {
  if (!requireMosquitto(t)) return;
  const { mosquitto, proxy, gw } = await behindFaultProxy(t, 'mqttsn/$gateway/#');
  const dev = await device(t, gw, 'listener');
  await dev.send({
    type: 'SUBSCRIBE',
    dup: false,
    qos: 1,
    msgId: 1,
    topicIdType: 'normal',
    topicName: 'cmd',
  });
  await dev.next('SUBACK');
  await sleep(200); // the broker subscription is in place
  proxy.refuse(true);
  proxy.cut();
  await publishTo(mosquitto.url, 'mqttsn/listener/cmd', 'sent during the outage', { qos: 1 });
  proxy.refuse(false);
  const p = await dev.next('PUBLISH', 15_000);
  assert.equal(Buffer.from(p.data).toString(), 'sent during the outage');
});

test('the device-side CLI end to end: `pub` reaches the broker, `sub` receives a command', async (t) => {
  const broker = await startAedes();
  t.after(() => broker.close());
  const collector = await collect(broker.url, 'mqttsn/#', { protocolVersion: 4 });
  t.after(() => collector.close());
  const gw = await gatewayFor(t, broker.url, ['--mqtt-version', '4']);
  await waitOnline(collector);
  const cli = (args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> =>
    new Promise((resolve) => {
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', 'src/cli.ts', ...args, '-p', String(gw.udpPort)],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('exit', (code) => resolve({ code, stdout, stderr }));
    });

  const pub = await cli(['pub', '-i', 'cli-pub', '-q', '1', '-t', 'temp', '-m', '21.5']);
  assert.equal(pub.code, 0, pub.stderr);
  await waitUntil(() =>
    collector.messages.some((m) => m.topic === 'mqttsn/cli-pub/temp' && m.payload.toString() === '21.5'),
  );

  const sub = cli(['sub', '-i', 'cli-sub', '-q', '1', '-t', 'cmd/#', '-v', '-C', '1', '--timeout', '1']);
  // Publish until `sub` has its message and exits: it needs a moment to start and subscribe.
  let subExited = false;
  void sub.then(() => (subExited = true));
  await waitUntil(
    async () => {
      if (!subExited) await publishTo(broker.url, 'mqttsn/cli-sub/cmd/led', 'on', { qos: 1 });
      return subExited;
    },
    { timeoutMs: 15_000, intervalMs: 300, description: '`sub` to receive the command and exit' },
  );
  const received = await sub;
  assert.equal(received.code, 0, received.stderr);
  assert.equal(received.stdout.trim().split('\n')[0], 'cmd/led on');

  const refused = await cli(['pub', '-i', 'bad/id', '-t', 'x', '-m', 'y']);
  assert.equal(refused.code, 3, 'the gateway refused the client id: exit code 3');
});

test('SIGHUP reloads predefined topics, the allow-list and the log level; a bad file keeps the old configuration', async (t) => {
  const broker = await startAedes();
  t.after(() => broker.close());
  const collector = await collect(broker.url, ['mqttsn/#', 'site/#'], { protocolVersion: 4 });
  t.after(() => collector.close());
  const file = `${withTempDir(t, 'mqttsn-hup-')}/bridge.yaml`;
  writeFileSync(file, 'predefined:\n  - { id: 1, topic: site/old }\nallowClients: ["sensor-*"]\n');
  const gw = await gatewayFor(t, broker.url, ['--mqtt-version', '4', '--config', file]);
  await waitOnline(collector);
  const dev = await MqttSnTestClient.create({ gatewayPort: gw.udpPort });
  t.after(() => dev.close());
  assert.equal(
    (await dev.connect({ clientId: 'intruder' })).returnCode,
    ReturnCode.NOT_SUPPORTED,
    'not in the allow-list',
  );
  assert.equal((await dev.connect({ clientId: 'sensor-1' })).returnCode, ReturnCode.ACCEPTED);
  await dev.publish({ topicId: 1, topicIdType: 'predefined', qos: 1, data: 'before' });
  await waitUntil(() => collector.messages.some((m) => m.topic === 'site/old'));

  writeFileSync(
    file,
    [
      'predefined:',
      '  - { id: 1, topic: site/new }',
      'allowClients: []',
      'limits: { maxClients: 50 }',
      'namespace: "other/{clientId}/"',
      '',
    ].join('\n'),
  );
  const reloaded = gw.output().length;
  gw.notify('SIGHUP');
  await waitUntil(() => gw.output().slice(reloaded).includes('configuration reloaded'), {
    description: 'reload logged',
  });
  assert.match(gw.output().slice(reloaded), /"applied":\["predefined","allowClients","limits"\]/);
  // Flags and environment variables still win over the file; a namespace change waits for a restart.
  await waitUntil(() => gw.output().slice(reloaded).includes('"needsRestart":["namespace"]'), {
    description: 'restart-needed warning',
  });
  await dev.publish({ topicId: 1, topicIdType: 'predefined', qos: 1, data: 'after' });
  await waitUntil(() => collector.messages.some((m) => m.topic === 'site/new'));
  const other = await MqttSnTestClient.create({ gatewayPort: gw.udpPort });
  t.after(() => other.close());
  assert.equal(
    (await other.connect({ clientId: 'intruder' })).returnCode,
    ReturnCode.ACCEPTED,
    'allow-list cleared',
  );

  writeFileSync(file, 'predefined: [ { id: "x" } ]\n');
  const broken = gw.output().length;
  gw.notify('SIGHUP');
  await waitUntil(() => gw.output().slice(broken).includes('reload failed'), {
    description: 'bad reload logged',
  });
  assert.match(gw.output().slice(broken), /keeping the current configuration/);
  await dev.publish({ topicId: 1, topicIdType: 'predefined', qos: 1, data: 'still' });
  await waitUntil(() =>
    collector.messages.some((m) => m.topic === 'site/new' && m.payload.toString() === 'still'),
  );
});

test('device presence and gateway statistics are published to the broker when configured', async (t) => {
  const broker = await startAedes();
  t.after(() => broker.close());
  const collector = await collect(broker.url, 'mqttsn/#', { protocolVersion: 4 });
  t.after(() => collector.close());
  const gw = await gatewayFor(t, broker.url, [
    '--mqtt-version',
    '4',
    '--presence-topic',
    'mqttsn/{clientId}/$presence',
    '--stats-topic',
    'mqttsn/$gateway/stats',
    '--stats-interval',
    '1',
  ]);
  await waitOnline(collector);
  const dev = await device(t, gw, 'present');
  await dev.disconnect(60);
  await dev.connect({ clientId: 'present' });
  await dev.disconnect();
  const presence = (): string[] =>
    collector.messages.filter((m) => m.topic === 'mqttsn/present/$presence').map((m) => m.payload.toString());
  await waitUntil(() => presence().length === 4, { description: 'four presence changes' });
  assert.deepEqual(presence(), ['online', 'asleep', 'online', 'offline']);
  const stats = await waitUntil(() => collector.messages.find((m) => m.topic === 'mqttsn/$gateway/stats'), {
    description: 'a statistics message',
  });
  const parsed = JSON.parse(stats.payload.toString()) as {
    outbox: { messages: number };
    uplink: { state: string };
  };
  assert.equal(parsed.uplink.state, 'connected');
  assert.equal(typeof parsed.outbox.messages, 'number');
});

/**
 * One sensor-like device publishing "<name>:<i>" at QoS 1, one in flight, until stopped; remembers what
 * got PUBACK "accepted". Survives the gateway going away (a PUBACK that never comes is not counted).
 */
function sensorLoad(gatewayPort: () => number, name: string) {
  const acked: number[] = [];
  let next = 0;
  let running = true;
  let client: MqttSnTestClient | undefined;
  const loop = (async () => {
    while (running) {
      try {
        client = await MqttSnTestClient.create({ gatewayPort: gatewayPort() });
        if ((await client.connect({ clientId: name })).returnCode !== ReturnCode.ACCEPTED)
          throw new Error('refused');
        const topicId = await client.register('seq');
        while (running) {
          const i = next++;
          const ack = await client.publish({ topicId, qos: 1, data: `${name}:${i}` });
          if (ack?.type === 'PUBACK' && ack.returnCode === ReturnCode.ACCEPTED) acked.push(i);
        }
      } catch {
        await sleep(50); // the gateway is away: try again
      } finally {
        await client?.close();
      }
    }
  })();
  return {
    acked,
    /** Ends the current attempt at once (after a kill), so the next one starts. */
    interrupt: () => void client?.close(),
    async stop(): Promise<void> {
      running = false;
      await client?.close();
      await loop;
    },
  };
}

test('20 gateway SIGKILL + restart cycles under QoS 1 load: every acknowledged message arrives', async (t) => {
  if (!requireMosquitto(t)) return;
  const mosquitto = await startMosquitto();
  t.after(() => mosquitto.stop());
  const collector = await collect(mosquitto.url, 'mqttsn/#', { protocolVersion: 5 });
  t.after(() => collector.close());
  const gw = await gatewayFor(t, mosquitto.url);
  const load = sensorLoad(() => gw.udpPort, 'kill');
  const cycles = 20;
  for (let cycle = 0; cycle < cycles; cycle++) {
    const before = load.acked.length;
    await waitUntil(() => load.acked.length >= before + 20, {
      timeoutMs: 15_000,
      description: 'load flowing',
    });
    assert.equal(await gw.signal('SIGKILL'), null);
    load.interrupt();
    await gw.restart();
  }
  await load.stop();
  const acked = load.acked.length;
  const seen = new Map<string, number>();
  await waitUntil(
    () => {
      seen.clear();
      for (const m of onlySeq(collector))
        seen.set(m.payload.toString(), (seen.get(m.payload.toString()) ?? 0) + 1);
      return load.acked.every((i) => seen.has(`kill:${i}`));
    },
    { timeoutMs: 30_000, description: 'every acknowledged message at the broker' },
  );
  const duplicates = [...seen.values()].reduce((sum, n) => sum + n - 1, 0);
  t.diagnostic(`${cycles} gateway SIGKILLs: ${acked} acknowledged, 0 lost, ${duplicates} duplicates`);
});

test('30 broker SIGKILL + restarts under QoS 1 load: every acknowledged message arrives', async (t) => {
  if (!requireMosquitto(t)) return;
  // Mosquitto saves on every change, so a SIGKILLed broker keeps the subscriber's session and queue.
  const mosquitto = await startMosquitto({ persistence: true });
  t.after(() => mosquitto.stop());
  const collector = await collect(mosquitto.url, 'mqttsn/#', {
    protocolVersion: 5,
    clean: false,
    clientId: `kill-sub-${process.pid}`,
  });
  t.after(() => collector.close());
  const gw = await gatewayFor(t, mosquitto.url, ['--metrics', '127.0.0.1:0']);
  await waitOnline(collector);
  const load = sensorLoad(() => gw.udpPort, 'bk');
  const restarts = 30;
  for (let i = 0; i < restarts; i++) {
    const before = load.acked.length;
    await waitUntil(() => load.acked.length >= before + 10, {
      timeoutMs: 15_000,
      description: 'load flowing',
    });
    await sleep(100);
    await mosquitto.kill();
    await sleep(100);
    await mosquitto.restart();
  }
  await load.stop();
  const seen = new Map<string, number>();
  const missing = (): number[] => {
    seen.clear();
    for (const m of onlySeq(collector))
      seen.set(m.payload.toString(), (seen.get(m.payload.toString()) ?? 0) + 1);
    return load.acked.filter((i) => !seen.has(`bk:${i}`));
  };
  // The gateway's side: the outbox empties, i.e. a broker acknowledged every message a device got PUBACK for.
  const metric = async (name: string): Promise<number> => {
    const url = /"url":"(http:\/\/127\.0\.0\.1:\d+\/)"/.exec(gw.output())![1]!;
    const text = await (await fetch(`${url}metrics`)).text();
    return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
  };
  await waitUntil(async () => (await metric('mqttsn_outbox_messages')) === 0, {
    timeoutMs: 30_000,
    description: 'the outbox empty: every message acknowledged by the broker',
  });
  assert.ok((await metric('mqttsn_uplink_acked_total')) >= load.acked.length);
  // The subscriber's side. Mosquitto PUBACKs before it saves (autosave), so a SIGKILL can lose a message it
  // had already acknowledged and not yet delivered: at most one per kill is the broker's, not the gateway's.
  await waitUntil(() => missing().length === 0, { timeoutMs: 10_000 }).catch(() => undefined);
  const lostAtBroker = missing();
  assert.ok(
    lostAtBroker.length <= restarts,
    `${lostAtBroker.length} of ${load.acked.length} missing: ${lostAtBroker.slice(0, 20).join(' ')}\n${gw.output().slice(-3000)}`,
  );
  const duplicates = [...seen.values()].reduce((sum, n) => sum + n - 1, 0);
  t.diagnostic(
    `${restarts} broker SIGKILLs: ${load.acked.length} acknowledged, all acknowledged by the broker (outbox empty), ` +
      `${lostAtBroker.length} missing at the subscriber (lost by the SIGKILLed broker), ${duplicates} duplicates`,
  );
});
