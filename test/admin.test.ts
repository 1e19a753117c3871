/**
 * The admin API through the real HTTP server of a real bridge (aedes as the broker, LevelDB in a temp
 * dir), with real MQTT-SN devices over UDP on 127.0.0.1 (src/client/).
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import pino from 'pino';
import { createBridge } from '../src/bridge.js';
import type { MqttSnClient } from '../src/client/client.js';
import { loadConfig } from '../src/config/load.js';
import { startRig, TOKEN } from './support/admin-rig.js';
import { collect, publishTo, waitUntil, withTempDir } from './helpers/index.js';

function tokenFile(t: TestContext, content = `${TOKEN}\n`): string {
  const file = path.join(withTempDir(t, 'admin-token-'), 'token');
  writeFileSync(file, content, { mode: 0o600 });
  return file;
}

async function json(response: Response): Promise<Record<string, unknown>> {
  return (await response.json()) as Record<string, unknown>;
}

test('without a token every admin route is off (404 saying so), and the status page does not mention them', async (t) => {
  const rig = await startRig(t, []);
  for (const [method, route] of [
    ['GET', '/admin/sessions'],
    ['POST', '/admin/sessions/x/kick'],
    ['DELETE', '/admin/sessions/x'],
    ['PUT', '/admin/traces/x'],
    ['GET', '/admin'],
  ] as const) {
    const response = await rig.api(method, route);
    assert.equal(response.status, 404, `${method} ${route}`);
    assert.match(String((await json(response)).error), /admin API is off/);
  }
  const page = await (await fetch(`${rig.base}/`)).text();
  assert.doesNotMatch(page, /\/admin/);
  const status = await (await fetch(`${rig.base}/api/status`)).text();
  assert.doesNotMatch(status, /admin/);
});

test('a token file turns the API on; missing, malformed and wrong tokens get 401 and are counted', async (t) => {
  const rig = await startRig(t, ['--admin-token-file', tokenFile(t)]);
  const refusals: Array<[string | null, RegExp]> = [
    [null, /missing/],
    ['', /missing/],
    ['Basic YWRtaW46YWRtaW4=', /malformed/],
    ['Bearer', /malformed/],
    ['Bearer  ', /malformed/],
    [`Bearer ${TOKEN}x`, /wrong token/],
    [`Bearer ${TOKEN.slice(0, -1)}`, /wrong token/],
    ['Bearer wrong', /wrong token/],
  ];
  for (const [auth, reason] of refusals) {
    // Also on paths that do not exist: without the token nobody learns which ones do.
    for (const route of ['/admin/sessions', '/admin/nothing-here']) {
      const response = await rig.api('GET', route, undefined, auth);
      assert.equal(response.status, 401, `${String(auth)} ${route}`);
      assert.match(response.headers.get('www-authenticate') ?? '', /^Bearer /);
      assert.match(String((await json(response)).error), reason);
    }
  }
  const ok = await rig.api('GET', '/admin/sessions');
  assert.equal(ok.status, 200);
  assert.deepEqual((await json(ok)).sessions, []);
  const metrics = await (await fetch(`${rig.base}/metrics`)).text();
  assert.match(metrics, /mqttsn_admin_requests_total\{outcome="unauthorized"\} 16\b/);
  assert.match(metrics, /mqttsn_admin_requests_total\{outcome="ok"\} 1\b/);
  // One rate-limited warning per kind of refusal, with the address in its context.
  const warnings = rig.lines.filter((l) => l.msg === 'admin API request refused: token missing or wrong');
  assert.deepEqual(warnings.map((l) => l.verdict).sort(), ['malformed', 'missing', 'wrong']);
  assert.ok(warnings.every((l) => l.address === '127.0.0.1' || l.address === '::ffff:127.0.0.1'));
});

test('a token given as a value works too; a short one or an unreadable file stops the start with a config error', async (t) => {
  const rig = await startRig(t, ['--admin-token', TOKEN]);
  assert.equal((await rig.api('GET', '/admin/sessions')).status, 200);
  await assert.rejects(
    startRig(t, ['--admin-token-file', tokenFile(t, 'short\n')]),
    (err: Error) => err.name === 'ConfigError' && /at least 16 characters/.test(err.message),
  );
  await assert.rejects(
    startRig(t, ['--admin-token-file', '/nonexistent/admin-token']),
    (err: Error) =>
      err.name === 'ConfigError' && /cannot read \/nonexistent\/admin-token \(ENOENT\)/.test(err.message),
  );
});

test('list and show: sessions with their state, address, clean flag, subscriptions and queue', async (t) => {
  const rig = await startRig(t, ['--admin-token-file', tokenFile(t)]);
  const active = await rig.device('sensor-active');
  await active.connect({ cleanSession: false });
  await active.subscribe({ type: 'normal', name: 'cmd/+' }, 1);
  const sleeper = await rig.device('sensor-sleeper');
  await sleeper.connect();
  await sleeper.sleep(600);
  const gone = await rig.device('sensor-gone');
  await gone.connect({ cleanSession: false });
  await gone.disconnect();

  const list = await json(await rig.api('GET', '/admin/sessions'));
  const sessions = (list.sessions as Array<Record<string, unknown>>).sort((a, b) =>
    String(a.clientId).localeCompare(String(b.clientId)),
  );
  assert.equal(typeof list.now, 'number');
  assert.deepEqual(
    sessions.map(({ clientId, state, cleanSession, subscriptions, queuedMessages }) => ({
      clientId,
      state,
      cleanSession,
      subscriptions,
      queuedMessages,
    })),
    [
      {
        clientId: 'sensor-active',
        state: 'active',
        cleanSession: false,
        subscriptions: 1,
        queuedMessages: 0,
      },
      {
        clientId: 'sensor-gone',
        state: 'disconnected',
        cleanSession: false,
        subscriptions: 0,
        queuedMessages: 0,
      },
      {
        clientId: 'sensor-sleeper',
        state: 'asleep',
        cleanSession: true,
        subscriptions: 0,
        queuedMessages: 0,
      },
    ],
  );
  assert.match(String(sessions[0]!.address), /^127\.0\.0\.1:\d+$/);
  assert.ok(Number(sessions[0]!.lastSeen) > 0);

  const detail = await json(await rig.api('GET', '/admin/sessions/sensor-active'));
  assert.deepEqual(detail.subscriptionList, [{ filter: 'mqttsn/sensor-active/cmd/+', qos: 1 }]);
  assert.equal(detail.keepAliveSeconds, 60);
});

test('kick: DISCONNECT to the device, the will published only when asked, a clean session ended', async (t) => {
  const rig = await startRig(t, ['--admin-token-file', tokenFile(t)]);
  const consumer = await collect(rig.broker.url, 'mqttsn/+/will');
  t.after(() => consumer.close());
  const connectWithWill = async (clientId: string): Promise<MqttSnClient> => {
    const device = await rig.device(clientId);
    await device.connect({ will: { topic: 'will', message: Buffer.from(`${clientId} gone`), qos: 1 } });
    return device;
  };

  const quiet = await connectWithWill('kick-quiet');
  const quietLost = new Promise<Error>((resolve) => quiet.once('lost', resolve));
  const first = await rig.api('POST', '/admin/sessions/kick-quiet/kick');
  assert.equal(first.status, 200);
  assert.deepEqual(await json(first), { clientId: 'kick-quiet', outcome: 'kicked', willPublished: false });
  assert.match((await quietLost).message, /DISCONNECT/i);

  const loud = await connectWithWill('kick-loud');
  const loudLost = new Promise<Error>((resolve) => loud.once('lost', resolve));
  const second = await rig.api('POST', '/admin/sessions/kick-loud/kick', { publishWill: true });
  assert.deepEqual(await json(second), { clientId: 'kick-loud', outcome: 'kicked', willPublished: true });
  await loudLost;
  // The outbox is one queue: had the first kick published a will, it would have arrived before this one.
  const [will] = await consumer.waitFor(1);
  assert.equal(will!.topic, 'mqttsn/kick-loud/will');
  assert.equal(will!.payload.toString(), 'kick-loud gone');

  const list = await json(await rig.api('GET', '/admin/sessions'));
  assert.deepEqual(list.sessions, [], 'clean sessions end with the kick');
  // Kicking what is not connected: 409 for a kept session, 404 for none.
  const kept = await rig.device('kick-kept');
  await kept.connect({ cleanSession: false });
  await kept.disconnect();
  const conflict = await rig.api('POST', '/admin/sessions/kick-kept/kick');
  assert.equal(conflict.status, 409);
  assert.match(String((await json(conflict)).error), /disconnected: nothing to kick/);
  const metrics = await (await fetch(`${rig.base}/metrics`)).text();
  assert.match(metrics, /mqttsn_admin_actions_total\{action="kick"\} 2\b/);
});

test('forget: the persistent session, its downlink queue and its broker subscription go, also from disk', async (t) => {
  const rig = await startRig(t, ['--admin-token-file', tokenFile(t)]);
  const device = await rig.device('forget-me');
  await device.connect({ cleanSession: false });
  await device.subscribe({ type: 'normal', name: 'cmd' }, 1);
  await device.disconnect();
  await publishTo(rig.broker.url, 'mqttsn/forget-me/cmd', 'while away', { qos: 1 });
  await waitUntil(async () => {
    const detail = await json(await rig.api('GET', '/admin/sessions/forget-me'));
    return detail.queuedMessages === 1;
  });
  assert.deepEqual([...rig.bridge.gateway.subscriptions.filters()], ['mqttsn/forget-me/cmd']);

  const response = await rig.api('DELETE', '/admin/sessions/forget-me');
  assert.equal(response.status, 200);
  assert.deepEqual(await json(response), {
    clientId: 'forget-me',
    outcome: 'forgotten',
    queuedMessages: 1,
    subscriptions: 1,
  });
  assert.deepEqual([...rig.bridge.gateway.subscriptions.filters()], []);
  assert.equal((await rig.api('GET', '/admin/sessions/forget-me')).status, 404);
  assert.equal((await rig.api('DELETE', '/admin/sessions/forget-me')).status, 404);

  // From disk too: a restart on the same data dir brings nothing back.
  await rig.stop();
  const config = await loadConfig({ argv: rig.args, env: {} });
  const restarted = await createBridge(config, { logger: pino({ level: 'silent' }) });
  t.after(() => restarted.stop());
  assert.deepEqual(
    [...restarted.gateway.sessions.all()].map((s) => s.clientId),
    [],
  );
});

test('unknown client ids, bad paths, methods and bodies get clear 404 / 405 / 400 answers', async (t) => {
  const rig = await startRig(t, ['--admin-token-file', tokenFile(t)]);
  const cases: Array<[string, string, unknown, number, RegExp]> = [
    ['GET', '/admin/sessions/nobody', undefined, 404, /no session for client id "nobody"/],
    ['POST', '/admin/sessions/nobody/kick', undefined, 404, /no session/],
    ['DELETE', '/admin/sessions/nobody', undefined, 404, /no session/],
    ['GET', '/admin/traces/nobody', undefined, 404, /not traced/],
    ['DELETE', '/admin/traces/nobody', undefined, 404, /not traced/],
    ['GET', '/admin/sessions/%E0%A4%A', undefined, 400, /percent-encoding/],
    ['GET', '/admin/sessions/a/b/c', undefined, 404, /no admin route/],
    ['GET', '/admin/constructor', undefined, 404, /no admin route/],
    ['POST', '/admin/sessions', undefined, 405, /not allowed/],
    ['POST', '/admin/sessions/nobody/kick', 'not json', 400, /not JSON/],
    ['POST', '/admin/sessions/nobody/kick', { publishWill: 'yes' }, 400, /publishWill/],
    ['POST', '/admin/sessions/nobody/kick', 'x'.repeat(5000), 413, /over 1024 bytes/],
  ];
  for (const [method, route, body, status, error] of cases) {
    const response = await rig.api(method, route, body);
    assert.equal(response.status, status, `${method} ${route}`);
    assert.match(String((await json(response)).error), error, `${method} ${route}`);
  }
  // A client id with a space, a percent sign and a non-ASCII letter, percent-encoded, is found.
  const device = await rig.device('küche 100%');
  await device.connect();
  const detail = await rig.api('GET', `/admin/sessions/${encodeURIComponent('küche 100%')}`);
  assert.equal((await json(detail)).clientId, 'küche 100%');
});
