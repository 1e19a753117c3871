/**
 * `mqttsn-bridge ctl` as a real child process against a real gateway child process (aedes as the
 * broker, devices over UDP on 127.0.0.1): what it prints, and its errors for an unreachable gateway,
 * a refused token, an unknown client id and a wrong command line.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { MqttSnClient } from '../src/client/client.js';
import {
  collect,
  freePort,
  startAedes,
  uniqueClientId,
  waitForPort,
  waitUntil,
  withTempDir,
} from './helpers/index.js';
import { spawnGateway, type GatewayProcess } from './support/gateway-process.js';

const CLI = fileURLToPath(new URL('../src/cli.ts', import.meta.url));
const TOKEN = 'ctl-token-0123456789abcdef0123';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function ctl(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', CLI, 'ctl', ...args],
      // Only what the test gives: no MQTTSN_BRIDGE_* of the developer's shell.
      { env: { PATH: process.env.PATH, ...env }, timeout: 60_000 },
      (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

function file(t: TestContext, name: string, content: string): string {
  const where = path.join(withTempDir(t, 'ctl-'), name);
  writeFileSync(where, content, { mode: 0o600 });
  return where;
}

/** The gateway processes by their config file (the SIGHUP test signals one). */
const gateways = new Map<string, GatewayProcess>();

/** A gateway child process configured by a config file with its metrics address and admin token file. */
async function startGateway(t: TestContext, extra: Record<string, unknown> = {}) {
  const broker = await startAedes();
  t.after(() => broker.close());
  const httpPort = await freePort();
  const tokenFile = file(t, 'admin-token', `${TOKEN}\n`);
  const config = file(
    t,
    'config.json',
    JSON.stringify({
      dataDir: withTempDir(t, 'ctl-data-'),
      metrics: `0.0.0.0:${httpPort}`,
      admin: { tokenFile },
      broker: { urls: [broker.url], protocolVersion: 4, clientId: uniqueClientId('gw') },
      ...extra,
    }),
  );
  const gateway = await spawnGateway(['-c', config]);
  t.after(() => gateway.signal('SIGTERM'));
  gateways.set(config, gateway);
  await waitForPort(httpPort);
  const device = async (clientId: string): Promise<MqttSnClient> => {
    const client = await MqttSnClient.open({ port: gateway.udpPort, clientId });
    t.after(() => client.close());
    return client;
  };
  return { broker, httpPort, tokenFile, config, device };
}

test('ctl --help teaches; a wrong command line exits 2 and says what is wrong', async () => {
  const help = await ctl(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /Usage:\n {2}mqttsn-bridge ctl \[options\] list/);
  assert.match(help.stdout, /--token-file FILE/);
  const none = await ctl([]);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /Usage:/);
  const unknown = await ctl(['--url', 'http://127.0.0.1:1', '--token-file', '/dev/null', 'frobnicate']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown command "frobnicate": list, show, kick, forget or trace/);
  const missing = await ctl(['kick']);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /kick takes one client id/);
  const nowhere = await ctl(['list']);
  assert.equal(nowhere.code, 2);
  assert.match(nowhere.stderr, /where is the gateway\?/);
});

test('ctl list, show, trace, kick --will and forget against a running gateway, reading its config file', async (t) => {
  const { broker, config, device } = await startGateway(t);
  const empty = await ctl(['-c', config, 'list']);
  assert.equal(empty.code, 0, empty.stderr);
  assert.equal(empty.stdout, 'no sessions\n');

  const wills = await collect(broker.url, 'mqttsn/+/will');
  t.after(() => wills.close());
  const sensor = await device('ctl-sensor');
  await sensor.connect({ will: { topic: 'will', message: Buffer.from('bye') } });
  const kept = await device('ctl-kept');
  await kept.connect({ cleanSession: false });
  await kept.subscribe({ type: 'normal', name: 'cmd' }, 1);

  const list = await ctl(['-c', config, 'list']);
  assert.equal(list.code, 0, list.stderr);
  const rows = list.stdout.trimEnd().split('\n');
  assert.match(rows[0]!, /^CLIENT ID\s+STATE\s+ADDRESS\s+CLEAN\s+SUBS\s+QUEUED\s+LAST SEEN$/);
  assert.match(rows[1]!, /^ctl-kept\s+active\s+127\.0\.0\.1:\d+\s+no\s+1\s+0 \(0 B\)\s+\d+ s ago$/);
  assert.match(rows[2]!, /^ctl-sensor\s+active\s+127\.0\.0\.1:\d+\s+yes\s+0\s+0 \(0 B\)\s+\d+ s ago$/);

  const show = await ctl(['-c', config, 'show', 'ctl-kept']);
  assert.match(show.stdout, /subscriptions: \n {2}mqttsn\/ctl-kept\/cmd \(QoS 1\)\n/);

  const json = await ctl(['-c', config, '--json', 'list']);
  assert.deepEqual(
    (JSON.parse(json.stdout) as { sessions: Array<{ clientId: string }> }).sessions
      .map((s) => s.clientId)
      .sort(),
    ['ctl-kept', 'ctl-sensor'],
  );

  assert.equal((await ctl(['-c', config, 'trace', 'on', 'ctl-sensor'])).stdout, 'tracing ctl-sensor\n');
  await sensor.ping();
  const traced = await ctl(['-c', config, 'trace', 'show', 'ctl-sensor']);
  assert.match(traced.stdout, /<- 127\.0\.0\.1:\d+ PINGREQ 2 B 0216\n {4}\{"type":"PINGREQ"\}\n/);
  assert.match(traced.stdout, /-> 127\.0\.0\.1:\d+ PINGRESP 2 B 0217\n/);
  assert.match((await ctl(['-c', config, 'trace', 'list'])).stdout, /^ctl-sensor\s+2\s+admin API$/m);

  const lost = new Promise<Error>((resolve) => sensor.once('lost', resolve));
  const kick = await ctl(['-c', config, 'kick', 'ctl-sensor', '--will']);
  assert.equal(kick.code, 0, kick.stderr);
  assert.equal(kick.stdout, 'kicked ctl-sensor: will published\n');
  await lost;
  const [will] = await wills.waitFor(1);
  assert.equal(will!.payload.toString(), 'bye');

  const forget = await ctl(['-c', config, 'forget', 'ctl-kept']);
  assert.equal(forget.stdout, 'forgot ctl-kept: 1 subscriptions, 0 queued messages dropped\n');
  assert.equal((await ctl(['-c', config, 'list'])).stdout, 'no sessions\n');
});

test('ctl errors: connection refused, a wrong token (401), an unknown client id (404), each one clear line and exit 1', async (t) => {
  const { httpPort, tokenFile, config } = await startGateway(t);
  const closed = await freePort();
  const refused = await ctl(['--metrics', `127.0.0.1:${closed}`, '--token-file', tokenFile, 'list']);
  assert.equal(refused.code, 1);
  assert.equal(
    refused.stderr,
    `mqttsn-bridge ctl: cannot reach http://127.0.0.1:${closed} (ECONNREFUSED): is the gateway running, with --metrics at this address?\n`,
  );

  const wrong = await ctl(['--metrics', `127.0.0.1:${httpPort}`, 'list'], {
    MQTTSN_BRIDGE_ADMIN_TOKEN: 'not-the-token-but-long-enough',
  });
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /^mqttsn-bridge ctl: the gateway refused the token \(401: wrong token\)/);

  const unknown = await ctl(['-c', config, 'kick', 'nobody']);
  assert.equal(unknown.code, 1);
  assert.equal(unknown.stderr, 'mqttsn-bridge ctl: 404: no session for client id "nobody"\n');

  // The environment names the gateway and the token file as the config file does.
  const fromEnv = await ctl(['trace', 'list'], {
    MQTTSN_BRIDGE_METRICS: `127.0.0.1:${httpPort}`,
    MQTTSN_BRIDGE_ADMIN_TOKEN_FILE: tokenFile,
  });
  assert.equal(fromEnv.code, 0, fromEnv.stderr);
  assert.equal(fromEnv.stdout, 'no device traced (at most 32)\n');
});

test('a real SIGHUP re-reads --trace-client from the config file; ctl trace list shows where each trace came from', async (t) => {
  const { config, device } = await startGateway(t, { traceClients: ['hup-a'] });
  const before = await ctl(['-c', config, 'trace', 'list']);
  assert.match(before.stdout, /^hup-a\s+0\s+--trace-client$/m);
  assert.equal((await ctl(['-c', config, 'trace', 'on', 'hup-api'])).code, 0);

  const settings = JSON.parse(readFileSync(config, 'utf8')) as Record<string, unknown>;
  writeFileSync(config, JSON.stringify({ ...settings, traceClients: ['hup-b'] }));
  const gateway = gateways.get(config)!;
  const reloaded = gateway.output().length;
  gateway.notify('SIGHUP');
  await waitUntil(() => /"applied":\["traceClients"\]/.test(gateway.output().slice(reloaded)));

  const b = await device('hup-b');
  await b.connect();
  const after = await ctl(['-c', config, 'trace', 'list']);
  assert.doesNotMatch(after.stdout, /^hup-a\s/m);
  assert.match(after.stdout, /^hup-b\s+2\s+--trace-client$/m);
  assert.match(after.stdout, /^hup-api\s+0\s+admin API$/m);
});
