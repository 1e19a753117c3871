import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfigError, loadConfig, parseCommandLine, validateConfig } from '../src/config/load.js';
import { withTempDir } from './helpers/index.js';

test('defaults need no configuration at all', async () => {
  const config = await loadConfig({ argv: [], env: {} });
  assert.deepEqual(config.listen, ['0.0.0.0:1883']);
  assert.equal(config.namespace, 'mqttsn/{clientId}/');
  assert.deepEqual(config.broker.urls, []);
  assert.equal(config.outbox.policy, 'reject');
  assert.equal(config.outbox.bufferQos0, true);
});

test('flags override the environment, which overrides the file', async (t) => {
  const dir = withTempDir(t);
  const file = join(dir, 'bridge.yaml');
  writeFileSync(
    file,
    'dataDir: /from/file\nnamespace: "file/{clientId}/"\nbroker:\n  window: 8\n  urls: [mqtt://file:1883]\n',
  );
  const config = await loadConfig({
    argv: [
      '--config',
      file,
      '--namespace',
      'flag/{clientId}/',
      '--broker',
      'mqtt://a:1',
      '--broker',
      'mqtt://b:2',
      '--no-buffer-qos0',
      '--predefined',
      '3=x/y',
      '--predefined',
      'dev:4=z',
    ],
    env: {
      MQTTSN_BRIDGE_NAMESPACE: 'env/{clientId}/',
      MQTTSN_BRIDGE_WINDOW: '16',
      MQTTSN_BRIDGE_DATA_DIR: '/from/env',
    },
  });
  assert.equal(config.namespace, 'flag/{clientId}/');
  assert.equal(config.dataDir, '/from/env');
  assert.equal(config.broker.window, 16);
  assert.deepEqual(config.broker.urls, ['mqtt://a:1', 'mqtt://b:2']);
  assert.equal(config.outbox.bufferQos0, false);
  assert.deepEqual(config.predefined, [
    { id: 3, topic: 'x/y' },
    { id: 4, topic: 'z', clientId: 'dev' },
  ]);
});

test('errors name the key, the value, where it came from and what was expected', async (t) => {
  const reject = async (argv: string[], env: NodeJS.ProcessEnv, pattern: RegExp): Promise<void> => {
    await assert.rejects(loadConfig({ argv, env }), (err: unknown) => {
      assert.ok(err instanceof ConfigError, String(err));
      assert.match(err.message, pattern);
      return true;
    });
  };
  await reject(['--window', 'lots'], {}, /--window: expected a number, got "lots"/);
  await reject(['--window', '0'], {}, /broker\.window = 0 \(from --window\): Too small/);
  await reject(['--broker', 'http://x'], {}, /broker\.urls.*mqtt:\/\//);
  await reject(['--outbox-policy', 'drop-newest'], {}, /outbox\.policy = "drop-newest".*reject.*drop-oldest/);
  await reject(
    [],
    { MQTTSN_BRIDGE_MAX_CLIENTS: '-1' },
    /limits\.maxClients = -1 \(from MQTTSN_BRIDGE_MAX_CLIENTS\)/,
  );
  await reject(['--listen', 'nowhere'], {}, /HOST:PORT/);
  await reject(['--namespace', 'x/{client}/'], {}, /namespace/);
  await reject(['--predefined', 'one=a'], {}, /--predefined: topic id must be an integer/);
  const dir = withTempDir(t);
  const file = join(dir, 'typo.yaml');
  writeFileSync(file, 'lisen: ["0.0.0.0:1"]\noutbox:\n  maxMesages: 3\n');
  await reject(['--config', file], {}, /unknown setting lisen; did you mean listen\?/);
  await reject(['--config', file], {}, /unknown setting outbox\.maxMesages; did you mean maxMessages\?/);
  await reject(['--config', join(dir, 'missing.yaml')], {}, /cannot read config file .*ENOENT/);
});

test('unknown flags are refused with a suggestion', () => {
  assert.throws(() => parseCommandLine(['--lisen', 'x']), /unknown option --lisen; did you mean --listen\?/);
  assert.throws(() => parseCommandLine(['frobnicate']), /unknown command "frobnicate"/);
  assert.equal(parseCommandLine(['check-config', 'a.yaml']).configFile, 'a.yaml');
});

const cli = (args: string[]): ReturnType<typeof spawnSync> =>
  spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], {
    encoding: 'utf8',
    env: { ...process.env, MQTTSN_BRIDGE_LOG_LEVEL: 'silent' },
  });

test('the command line: --help teaches, a bad flag exits non-zero with a message, check-config masks secrets', (t) => {
  const help = cli(['--help']);
  assert.equal(help.status, 0);
  for (const flag of [
    '--broker',
    '--listen',
    '--data-dir',
    '--namespace',
    '--predefined',
    '--config',
    '--log-level',
    'MQTTSN_BRIDGE_BROKER',
  ]) {
    assert.ok(String(help.stdout).includes(flag), `--help mentions ${flag}`);
  }
  const bad = cli(['--window', 'x']);
  assert.equal(bad.status, 2);
  assert.match(String(bad.stderr), /mqttsn-bridge: --window: expected a number/);

  const dir = withTempDir(t);
  const file = join(dir, 'c.yaml');
  writeFileSync(file, 'broker:\n  urls: ["mqtt://user:hunter2@broker:1883"]\n  password: hunter2\n');
  const checked = cli(['check-config', file]);
  assert.equal(checked.status, 0, String(checked.stderr));
  assert.ok(!String(checked.stdout).includes('hunter2'), 'secrets masked');
  assert.equal(JSON.parse(String(checked.stdout)).broker.password, '********');
});

test('every setting in the schema has a flag, an environment variable and --help text', async () => {
  const { settings } = await import('../src/config/settings.js');
  const config = await loadConfig({
    argv: [
      '--advertise',
      '127.0.0.1:1',
      '--metrics',
      '127.0.0.1:0',
      '--presence-topic',
      'p/{clientId}',
      '--stats-topic',
      's',
    ],
    env: {},
  });
  const leaves = (value: unknown, prefix = ''): string[] =>
    value !== null && typeof value === 'object' && !Array.isArray(value)
      ? Object.entries(value).flatMap(([k, v]) => leaves(v, prefix ? `${prefix}.${k}` : k))
      : [prefix];
  // Optional keys without a default do not appear in the parsed config; list them explicitly.
  const optional = [
    'broker.clientId',
    'broker.username',
    'broker.password',
    'broker.ca',
    'broker.cert',
    'broker.key',
    'admin.token',
    'admin.tokenFile',
    'site',
  ];
  const schemaPaths = new Set([...leaves(config), ...optional]);
  const documented = new Set(settings.map((s) => s.path));
  assert.deepEqual(
    [...schemaPaths].filter((p) => !documented.has(p)),
    [],
    'settings without a flag',
  );
  assert.deepEqual(
    [...documented].filter((p) => !schemaPaths.has(p)),
    [],
    'flags without a setting',
  );
});

test('a {site} namespace needs --site, and a site is one topic level: refused at load, so check-config says so', async () => {
  await assert.rejects(
    loadConfig({ argv: ['--namespace', 'mqttsn/{site}/{clientId}/'], env: {} }),
    /site.*the namespace uses \{site\}: set --site NAME/,
  );
  await assert.rejects(
    loadConfig({ argv: ['--namespace', 'mqttsn/{site}/{clientId}/', '--site', 'a/b'], env: {} }),
    /site = "a\/b" \(from --site\)/,
  );
  const config = await loadConfig({
    argv: ['--namespace', 'mqttsn/{site}/{clientId}/', '--site', 'plant-a'],
    env: {},
  });
  assert.equal(config.site, 'plant-a');
});

test('a predefined topic id defined twice is refused', async () => {
  await assert.rejects(
    loadConfig({ argv: ['--predefined', '3=a', '--predefined', '3=b'], env: {} }),
    /predefined\.1\.id.*defined twice/,
  );
  await loadConfig({ argv: ['--predefined', '3=a', '--predefined', 'dev:3=b'], env: {} });
});

test('the README documents every flag and environment variable', async () => {
  const { settings, envName } = await import('../src/config/settings.js');
  const readme = (await import('node:fs')).readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const missing = settings.filter(
    (s) =>
      !readme.includes(`--${s.kind === 'boolean' ? '[no-]' : ''}${s.flag}`) || !readme.includes(envName(s)),
  );
  assert.deepEqual(
    missing.map((s) => s.flag),
    [],
  );
});

test('a reload applies the settings the table marks live and names those that need a restart', async () => {
  const { liveSettingChanges } = await import('../src/config/live.js');
  const current = validateConfig({});
  const next = validateConfig({ namespace: 'site/', limits: { maxClients: 5 }, logLevel: 'debug' });
  const { applied, needsRestart, config } = liveSettingChanges(current, next);
  assert.deepEqual([...applied].sort(), ['limits', 'logLevel']);
  assert.deepEqual(needsRestart, ['namespace']);
  assert.equal(config.namespace, current.namespace, 'the namespace waits for a restart');
  assert.equal(config.limits.maxClients, 5);
  assert.equal(config.logLevel, 'debug');
});
