/**
 * Many gateways, one broker: real gateway processes against a real Mosquitto (MQTT 5).
 * - Two installations with the default identity (same hostname, same gateway id, as Pis cloned from
 *   one image) get distinct uplink client ids, never kick each other off, and lose no command.
 * - Two gateways configured with the same --uplink-client-id detect the session takeover, say so,
 *   turn /healthz non-200 and back off instead of fighting.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { ReturnCode } from '../src/codec/constants.js';
import {
  MqttSnTestClient,
  publishTo,
  requireMosquitto,
  sleep,
  startMosquitto,
  waitUntil,
  withTempDir,
} from './helpers/index.js';
import { openStore } from '../src/store/db.js';
import { Outbox } from '../src/store/outbox.js';
import { uplinkIdentity } from '../src/uplink/identity.js';
import { spawnGateway, type GatewayProcess } from './support/gateway-process.js';
import { silent } from './support/uplink-rig.js';

async function gateway(t: TestContext, brokerUrl: string, extra: string[] = []): Promise<GatewayProcess> {
  const gw = await spawnGateway([
    '--broker',
    brokerUrl,
    '--data-dir',
    withTempDir(t, 'mqttsn-identity-'),
    '--metrics',
    '127.0.0.1:0',
    ...extra,
  ]);
  t.after(async () => {
    await gw.signal('SIGKILL');
  });
  return gw;
}

function logLines(gw: GatewayProcess): Array<Record<string, unknown>> {
  return gw
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

const connects = (gw: GatewayProcess): number =>
  logLines(gw).filter((l) => l.msg === 'uplink connected').length;

function timeline(...gws: GatewayProcess[]): string {
  return gws
    .flatMap((gw, i) => logLines(gw).map((l): Record<string, unknown> & { gw: number } => ({ ...l, gw: i })))
    .filter((l) => typeof l.msg === 'string' && /uplink (connected|disconnected)|taken over/.test(l.msg))
    .sort((x, y) => Number(x.time) - Number(y.time))
    .map(
      (l) =>
        `${String(l.time).slice(-5)} ${'AB'[l.gw]} ${String(l.msg).slice(0, 40)} ${String(l.reason ?? '')}`,
    )
    .join('\n');
}

function observeUrl(gw: GatewayProcess): string {
  const url = /"url":"(http:\/\/127\.0\.0\.1:\d+\/)"/.exec(gw.output())?.[1];
  assert.ok(url, 'the gateway logged its status page address');
  return url;
}

/** A device subscribed to `cmd` that acknowledges every PUBLISH and remembers the payloads. */
async function commandListener(
  t: TestContext,
  gw: GatewayProcess,
  clientId: string,
): Promise<{ received: Set<string>; stop: () => void }> {
  const dev = await MqttSnTestClient.create({ gatewayPort: gw.udpPort });
  t.after(() => dev.close());
  assert.equal((await dev.connect({ clientId, duration: 60 })).returnCode, ReturnCode.ACCEPTED);
  await dev.send({
    type: 'SUBSCRIBE',
    dup: false,
    qos: 1,
    msgId: 1,
    topicIdType: 'normal',
    topicName: 'cmd',
  });
  const suback = await dev.next('SUBACK', 5000);
  assert.ok(suback.type === 'SUBACK' && suback.returnCode === ReturnCode.ACCEPTED);
  const received = new Set<string>();
  let running = true;
  void (async () => {
    while (running) {
      const p = await dev.next('PUBLISH', 60_000).catch(() => undefined);
      if (p?.type !== 'PUBLISH') continue;
      received.add(Buffer.from(p.data).toString());
      if (p.qos === 1) await dev.send({ type: 'PUBACK', topicId: p.topicId, msgId: p.msgId, returnCode: 0 });
    }
  })();
  return { received, stop: () => (running = false) };
}

test('two installations with the default identity: distinct client ids, no reconnects, 20 of 20 commands each', async (t) => {
  if (!requireMosquitto(t)) return;
  const broker = await startMosquitto();
  t.after(() => broker.stop());
  // Same hostname, same (default) gateway id: what cloned Pis look like to the broker.
  const [a, b] = await Promise.all([gateway(t, broker.url), gateway(t, broker.url)]);
  const ids = [a, b].map((gw) => logLines(gw).find((l) => l.msg === 'uplink client id')?.clientId);
  assert.match(String(ids[0]), /^mqttsn-bridge-.+-[0-9a-f]{8}$/);
  assert.notEqual(ids[0], ids[1]);
  const devA = await commandListener(t, a, 'dev-a');
  const devB = await commandListener(t, b, 'dev-b');
  await sleep(300); // the broker subscriptions are in place
  // 20 commands to each device over ~15 s.
  for (let i = 0; i < 20; i++) {
    await Promise.all([
      publishTo(broker.url, 'mqttsn/dev-a/cmd', `a${i}`, { qos: 1 }),
      publishTo(broker.url, 'mqttsn/dev-b/cmd', `b${i}`, { qos: 1 }),
    ]);
    await sleep(750);
  }
  await waitUntil(() => devA.received.size === 20 && devB.received.size === 20, {
    timeoutMs: 10_000,
    description: `20 commands each (got ${devA.received.size} and ${devB.received.size})`,
  });
  devA.stop();
  devB.stop();
  assert.equal(connects(a), 1, 'gateway A never reconnected');
  assert.equal(connects(b), 1, 'gateway B never reconnected');
});

test('two gateways with one explicit client id: takeover detected, logged, /healthz 503, bounded reconnects', async (t) => {
  if (!requireMosquitto(t)) return;
  const broker = await startMosquitto();
  t.after(() => broker.stop());
  const clientId = `shared-${process.pid}`;
  const a = await gateway(t, broker.url, ['--uplink-client-id', clientId]);
  const b = await gateway(t, broker.url, ['--uplink-client-id', clientId]);
  const unhealthy: string[] = [];
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    for (const gw of [a, b]) {
      const res = await fetch(`${observeUrl(gw)}healthz`);
      const body = await res.text();
      if (res.status !== 200) unhealthy.push(body.trim());
    }
    await sleep(250);
  }
  const errors = [...logLines(a), ...logLines(b)].filter(
    (l) => typeof l.msg === 'string' && l.msg.includes('session taken over') && l.clientId === clientId,
  );
  assert.ok(errors.length >= 1, `a takeover was logged with the client id:\n${a.output().slice(-3000)}`);
  assert.ok(
    errors.every((l) => l.level === 50),
    'logged as an error',
  );
  assert.ok(
    unhealthy.some((reason) => /taken over/.test(reason)),
    `/healthz said so: ${JSON.stringify(unhealthy.slice(0, 3))}`,
  );
  const metrics = await (await fetch(`${observeUrl(a)}metrics`)).text();
  const metricsB = await (await fetch(`${observeUrl(b)}metrics`)).text();
  const takeovers = [metrics, metricsB].map((m) =>
    Number(/^mqttsn_uplink_session_takeovers_total (\d+)$/m.exec(m)?.[1]),
  );
  assert.ok(takeovers[0]! + takeovers[1]! >= 1, `takeovers counted: ${takeovers.join(', ')}`);
  // Backing off (5 s, doubling, half jittered): a handful of connections in 20 s, not a fight.
  const total = connects(a) + connects(b);
  t.diagnostic(`uplink connections in 20 s, both gateways: ${total}; takeovers logged: ${errors.length}`);
  assert.ok(total <= 8, `connections in 20 s: ${total}\n${timeline(a, b)}`);
});

test('the default identity is generated once per data dir; an older data dir keeps its old id', async (t) => {
  const host = { hostname: 'pi', gatewayId: 1 };
  const idOf = async (dir: string, configured?: string): Promise<{ clientId: string; source: string }> => {
    const store = await openStore(dir);
    try {
      return await uplinkIdentity(store, { ...host, configured });
    } finally {
      await store.close();
    }
  };
  const fresh = withTempDir(t, 'identity-fresh-');
  const first = await idOf(fresh);
  assert.equal(first.source, 'generated');
  assert.match(first.clientId, /^mqttsn-bridge-pi-[0-9a-f]{8}$/);
  assert.deepEqual(await idOf(fresh), { clientId: first.clientId, source: 'stored' });
  assert.notEqual((await idOf(withTempDir(t, 'identity-other-'))).clientId, first.clientId);
  assert.deepEqual(await idOf(fresh, 'explicit-id'), { clientId: 'explicit-id', source: 'configured' });

  // A data dir written by a version without identities: messages already carry the old id.
  const old = withTempDir(t, 'identity-old-');
  const store = await openStore(old);
  const outbox = await Outbox.open(store, { gatewayId: 'mqttsn-bridge-pi-1', logger: silent });
  outbox.append({ clientId: 'd', topic: 't', payload: Buffer.from('x'), retain: false, qos: 1 });
  await outbox.close();
  await store.close();
  assert.deepEqual(await idOf(old), { clientId: 'mqttsn-bridge-pi-1', source: 'adopted' });
  assert.deepEqual(await idOf(old), { clientId: 'mqttsn-bridge-pi-1', source: 'stored' });
});
