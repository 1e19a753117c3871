/**
 * A fleet: many gateways on one broker. Two gateways started the same way on one host keep their
 * own broker sessions; a site in the namespace keeps two sites' devices apart; consumers drop the
 * duplicates of a replay by `mqttsn-id` (examples/dedup-consumer.mjs, run as it is).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ReturnCode } from '../src/codec/constants.js';
import { compileNamespace, namespaceProblem, siteProblem } from '../src/topics/namespace.js';
import {
  collect,
  MqttSnTestClient,
  publishTo,
  requireMosquitto,
  sleep,
  startFaultProxy,
  startMosquitto,
  waitUntil,
  withTempDir,
} from './helpers/index.js';
import { spawnGateway, type GatewayProcess } from './support/gateway-process.js';

const DEDUP_CONSUMER = fileURLToPath(new URL('../examples/dedup-consumer.mjs', import.meta.url));

async function device(t: TestContext, gw: GatewayProcess, clientId: string): Promise<MqttSnTestClient> {
  const client = await MqttSnTestClient.create({ gatewayPort: gw.udpPort });
  t.after(() => client.close());
  assert.equal((await client.connect({ clientId, duration: 60 })).returnCode, ReturnCode.ACCEPTED);
  return client;
}

async function metric(gw: GatewayProcess, name: string): Promise<number> {
  const url = /"url":"(http:\/\/127\.0\.0\.1:\d+\/)"/.exec(gw.output())?.[1];
  assert.ok(url, 'the gateway logged its status page address');
  const text = await (await fetch(`${url}metrics`)).text();
  return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
}

test('a site is one topic level, checked like every string that reaches the broker', () => {
  assert.equal(siteProblem('plant-a'), null);
  assert.match(siteProblem('')!, /empty/);
  assert.match(siteProblem('a/b')!, /one topic level/);
  assert.match(siteProblem('a+')!, /one topic level/);
  assert.match(siteProblem('#')!, /one topic level/);
  assert.match(siteProblem('$SYS')!, /\$/);
  assert.notEqual(siteProblem('a\u0000b'), null);
  assert.equal(namespaceProblem('mqttsn/{site}/{clientId}/'), null);
  const namespace = compileNamespace('mqttsn/{site}/{clientId}/', '1', 'plant-a');
  assert.equal(namespace.prefixFor('sensor1'), 'mqttsn/plant-a/sensor1/');
  assert.equal(namespace.root, 'mqttsn/plant-a/');
  assert.throws(() => compileNamespace('mqttsn/{site}/{clientId}/', '1'), /set --site/);
  assert.throws(() => compileNamespace('mqttsn/{site}/{clientId}/', '1', 'a/b'), /one topic level/);
});

test('--site: two sites’ sensor1 publish to different broker topics; a bad site is refused at start', async (t) => {
  if (!requireMosquitto(t)) return;
  const mosquitto = await startMosquitto();
  t.after(() => mosquitto.stop());
  const collector = await collect(mosquitto.url, 'mqttsn/#', { protocolVersion: 5 });
  t.after(() => collector.close());
  for (const site of ['plant-a', 'plant-b']) {
    const gw = await spawnGateway([
      '--broker',
      mosquitto.url,
      '--data-dir',
      withTempDir(t, 'mqttsn-fleet-'),
      '--site',
      site,
      '--namespace',
      'mqttsn/{site}/{clientId}/',
    ]);
    t.after(() => gw.signal('SIGKILL'));
    const dev = await device(t, gw, 'sensor1');
    const topicId = await dev.register('temp');
    assert.equal((await dev.publish({ topicId, qos: 1, data: site }))?.type, 'PUBACK');
  }
  const readings = await waitUntil(
    () => {
      const found = collector.messages.filter((m) => m.topic.endsWith('/sensor1/temp'));
      return found.length === 2 ? found : undefined;
    },
    { timeoutMs: 15_000, description: 'both sites’ readings' },
  );
  assert.deepEqual(readings.map((m) => `${m.topic}=${m.payload.toString()}`).sort(), [
    'mqttsn/plant-a/sensor1/temp=plant-a',
    'mqttsn/plant-b/sensor1/temp=plant-b',
  ]);
  assert.ok(collector.messages.some((m) => m.topic.startsWith('mqttsn/plant-a/$gateway/')));
  await assert.rejects(
    spawnGateway(['--broker', mosquitto.url, '--data-dir', withTempDir(t, 'mqttsn-fleet-'), '--site', 'a/b']),
    /one topic level/,
  );
});

test('two gateways started the same way on one host share a broker for 15 s without a reconnect; each device gets 20 of 20 QoS 1 commands', async (t) => {
  if (!requireMosquitto(t)) return;
  const mosquitto = await startMosquitto();
  t.after(() => mosquitto.stop());
  // The same command line but for the data dir: same hostname, default identity, default namespace.
  const gateways = await Promise.all(
    [0, 1].map(async () => {
      const gw = await spawnGateway([
        '--broker',
        mosquitto.url,
        '--data-dir',
        withTempDir(t, 'mqttsn-fleet-'),
        '--session-expiry',
        '3600',
        '--metrics',
        '127.0.0.1:0',
        '--keepalive',
        '2',
      ]);
      t.after(() => gw.signal('SIGKILL'));
      return gw;
    }),
  );
  const devices = await Promise.all(gateways.map((gw, i) => device(t, gw, `valve${i}`)));
  for (const dev of devices) {
    for (const [msgId, topicName, qos] of [
      [1, 'cmd', 1],
      [2, 'probe', 0],
    ] as const) {
      await dev.send({ type: 'SUBSCRIBE', dup: false, qos, msgId, topicIdType: 'normal', topicName });
      assert.equal((await dev.next('SUBACK')).type, 'SUBACK');
    }
  }
  // The broker subscriptions are made after SUBACK: wait until a probe (QoS 0) gets through to each.
  for (const [i, dev] of devices.entries()) {
    await waitUntil(
      async () => {
        await publishTo(mosquitto.url, `mqttsn/valve${i}/probe`, 'x', { qos: 1 });
        return dev
          .next('PUBLISH', 300)
          .then(() => true)
          .catch(() => false);
      },
      { timeoutMs: 10_000, description: `device ${i} reachable` },
    );
  }
  const startedAt = Date.now();
  const received: string[][] = [[], []];
  const receiving = devices.map(async (dev, i) => {
    while (received[i]!.length < 20) {
      const p = await dev.next(
        (q) => q.type === 'PUBLISH' && Buffer.from(q.data).toString().startsWith('c'),
        20_000,
      );
      if (p.type !== 'PUBLISH') continue;
      await dev.send({ type: 'PUBACK', topicId: p.topicId, msgId: p.msgId, returnCode: ReturnCode.ACCEPTED });
      received[i]!.push(Buffer.from(p.data).toString());
    }
  });
  // 20 commands each, spread over the 15 s, published at QoS 1.
  for (let n = 0; n < 20; n++) {
    for (const i of [0, 1]) await publishTo(mosquitto.url, `mqttsn/valve${i}/cmd`, `c${n}`, { qos: 1 });
    await sleep(700);
  }
  await Promise.all(receiving);
  const remaining = 15_000 - (Date.now() - startedAt);
  if (remaining > 0) await sleep(remaining);
  const expected = Array.from({ length: 20 }, (_, n) => `c${n}`);
  assert.deepEqual(received, [expected, expected]);
  for (const gw of gateways) {
    assert.equal(await metric(gw, 'mqttsn_uplink_reconnects_total'), 0, gw.output().slice(-2000));
    assert.equal(await metric(gw, 'mqttsn_uplink_session_takeovers_total'), 0);
  }
  const ids = gateways.map((gw) => /"clientId":"(mqttsn-bridge-[^"]+)"/.exec(gw.output())?.[1]);
  assert.ok(ids[0] && ids[1] && ids[0] !== ids[1], `two identities: ${ids.join(', ')}`);
});

test('examples/dedup-consumer.mjs drops the duplicates a replay produces, and nothing else', async (t) => {
  if (!requireMosquitto(t)) return;
  const mosquitto = await startMosquitto();
  t.after(() => mosquitto.stop());
  const proxy = await startFaultProxy(mosquitto.port);
  t.after(() => proxy.close());
  const raw = await collect(mosquitto.url, 'mqttsn/+/seq', { protocolVersion: 5 });
  t.after(() => raw.close());
  const consumer = spawn(process.execPath, [DEDUP_CONSUMER, mosquitto.url, 'mqttsn/+/seq'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => consumer.kill('SIGKILL'));
  let out = '';
  let err = '';
  consumer.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  consumer.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  await waitUntil(() => err.includes('subscribed'), {
    timeoutMs: 10_000,
    description: 'consumer subscribed',
  });

  const gw = await spawnGateway([
    '--broker',
    proxy.url,
    '--data-dir',
    withTempDir(t, 'mqttsn-fleet-'),
    '--keepalive',
    '1',
    '--reconnect-initial',
    '100',
    '--reconnect-max',
    '200',
  ]);
  t.after(() => gw.signal('SIGKILL'));
  const dev = await device(t, gw, 'meter');
  const topicId = await dev.register('seq');
  // A backlog while the broker is unreachable, then a replay whose PUBACKs are lost mid-way (a
  // half-open link): the gateway sends again what the broker already delivered, until duplicates.
  proxy.refuse(true);
  proxy.cut();
  let next = 0;
  const backlog = async (count: number): Promise<void> => {
    for (let n = 0; n < count; n++) {
      const ack = await dev.publish({ topicId, qos: 1, data: `m${next}` });
      assert.equal(ack?.type === 'PUBACK' && ack.returnCode, ReturnCode.ACCEPTED);
      next++;
    }
  };
  const duplicates = (): number =>
    raw.messages.length - new Set(raw.messages.map((m) => m.payload.toString())).size;
  for (let round = 0; round < 10 && duplicates() === 0; round++) {
    await backlog(2000);
    const before = raw.messages.length;
    proxy.refuse(false);
    await waitUntil(() => raw.messages.length > before, { timeoutMs: 15_000, description: 'replay started' });
    proxy.blackhole(true);
    await sleep(300);
    proxy.blackhole(false);
    proxy.cut();
    await waitUntil(() => new Set(raw.messages.map((m) => m.payload.toString())).size === next, {
      timeoutMs: 30_000,
      description: 'the backlog delivered',
    });
    proxy.refuse(true);
    proxy.cut();
  }
  assert.ok(duplicates() > 0, 'the replay produced duplicates at the broker');
  const expected = Array.from({ length: next }, (_, n) => `mqttsn/meter/seq m${n}`);
  await waitUntil(() => out.split('\n').filter(Boolean).length >= next, {
    timeoutMs: 10_000,
    description: 'the consumer printed every message',
  });
  await sleep(200);
  const printed = out.split('\n').filter(Boolean);
  t.diagnostic(
    `${raw.messages.length} delivered by the broker, ${duplicates()} duplicates; consumer printed ${printed.length}`,
  );
  assert.deepEqual([...printed].sort(), [...expected].sort(), 'each message exactly once');
});
