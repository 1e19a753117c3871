/**
 * The example configurations and deployment files cannot rot: every fixtures/config/*.yaml and
 * deploy/config.yaml loads through the real loader with the values it claims, the systemd unit keeps
 * its hardening and its ExecStart is accepted by node and by the CLI's parser, and the Dockerfile's
 * ENTRYPOINT and health check agree with both.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { loadConfig, parseCommandLine } from '../src/config/load.js';
import type { Config } from '../src/config/schema.js';
import { buildPredefined, lookupPredefined } from '../src/topics/predefined.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const fixturesDir = join(root, 'fixtures', 'config');
const deployDir = join(root, 'deploy');
const unitFile = join(deployDir, 'mqttsn-bridge.service');
const dockerfile = join(deployDir, 'Dockerfile');

/** The node flags that keep a Pi's memory low; the unit and the image must both use exactly these. */
const MEMORY_FLAGS = ['--max-semi-space-size=1', '--max-old-space-size=64'];

const load = (file: string, env: NodeJS.ProcessEnv = {}): Promise<Config> =>
  loadConfig({ argv: ['--config', file], env });

/** The environment of this process without MQTTSN_BRIDGE_* settings a developer may have exported. */
function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('MQTTSN_BRIDGE_')) env[key] = value;
  }
  return { ...env, ...extra };
}

/** What each example promises; every example file must have an entry. */
const expectations: Record<string, (file: string) => Promise<void>> = {
  'minimal.yaml': async (file) => {
    const config = await load(file);
    assert.deepEqual(config.broker.urls, ['mqtt://broker.lan:1883']);
    // Everything else is a default.
    const defaults = await loadConfig({ argv: [], env: {} });
    assert.deepEqual({ ...config, broker: { ...config.broker, urls: [] } }, defaults);
  },

  'tls-failover.yaml': async (file) => {
    const config = await load(file);
    assert.deepEqual(config.broker.urls, [
      'mqtts://mqtt-a.example.com:8883',
      'mqtts://mqtt-b.example.com:8883',
    ]);
    assert.equal(config.broker.clientId, 'shed-pi-gateway');
    assert.equal(config.broker.ca, '/etc/mqttsn-bridge/tls/ca.pem');
    assert.equal(config.broker.cert, '/etc/mqttsn-bridge/tls/client.crt');
    assert.equal(config.broker.key, '/etc/mqttsn-bridge/tls/client.key');
    assert.equal(config.broker.username, 'shed-pi');
    assert.equal(config.broker.rejectUnauthorized, true);
    assert.equal(config.broker.keepaliveSeconds, 20);
    assert.equal(config.broker.reconnectInitialMs, 1000);
    assert.equal(config.broker.reconnectMaxMs, 60_000);
    // No password in the file; the environment supplies it.
    assert.equal(config.broker.password, undefined);
    const withEnv = await load(file, { MQTTSN_BRIDGE_PASSWORD: 'from-the-environment' });
    assert.equal(withEnv.broker.password, 'from-the-environment');
  },

  'predefined-topics.yaml': async (file) => {
    const config = await load(file);
    assert.deepEqual(config.predefined, [
      { id: 1, topic: 'factory/alarms' },
      { id: 2, topic: 'factory/heartbeat' },
      { id: 2, topic: 'line/7/temperature', clientId: 'sensor7' },
      { id: 10, topic: 'line/7/humidity', clientId: 'sensor7' },
    ]);
    assert.equal(config.anonymousClientId, 'unconnected');
    // What the comments say about precedence is what the gateway does.
    const table = buildPredefined(
      config.predefined.map((p) => ({ clientId: p.clientId, topicId: p.id, topic: p.topic })),
    );
    assert.equal(lookupPredefined(table, 'sensor7', 2), 'line/7/temperature');
    assert.equal(lookupPredefined(table, 'sensor7', 1), 'factory/alarms');
    assert.equal(lookupPredefined(table, 'sensor8', 2), 'factory/heartbeat');
    assert.equal(lookupPredefined(table, 'sensor8', 10), undefined);
    assert.equal(lookupPredefined(table, undefined, 1), 'factory/alarms');
  },

  'sleeping-fleet.yaml': async (file) => {
    const config = await load(file);
    assert.equal(config.broker.sessionExpirySeconds, 604_800);
    assert.deepEqual(config.downlink, {
      retrySeconds: 15,
      maxRetries: 4,
      maxQueuedPerClient: 10,
      maxBytesPerClient: 1024 * 1024,
      maxBytes: 256 * 1024 * 1024,
      policy: 'drop-oldest',
      maxPacketSize: 65_535,
      bufferQos0ForSleepers: false,
    });
    assert.equal(config.limits.maxClients, 2000);
    assert.equal(config.limits.maxTopicsPerClient, 32);
    assert.equal(config.limits.maxPacketSize, 256);
    assert.equal(config.outbox.ttlSeconds, 86_400);
    assert.equal(config.outbox.policy, 'drop-oldest');
  },

  'deploy/config.yaml': async (file) => {
    const config = await load(file);
    assert.deepEqual(config.listen, ['0.0.0.0:1883']);
    assert.deepEqual(config.broker.urls, ['mqtt://127.0.0.1:1883']);
    assert.equal(config.broker.username, undefined);
    assert.equal(config.broker.password, undefined);
    assert.equal(config.broker.protocolVersion, 5);
    assert.equal(config.namespace, 'mqttsn/{clientId}/');
    assert.equal(config.gatewayId, 1);
    assert.equal(config.advertise, undefined);
    assert.equal(config.metrics, '127.0.0.1:18830');
    assert.equal(config.outbox.maxBytes, 128 * 1024 * 1024);
    assert.equal(config.outbox.policy, 'reject');
    assert.equal(config.logLevel, 'info');
    // The unit's --data-dir decides, so the file does not set one.
    assert.equal(config.dataDir, './data');
  },
};

const exampleFiles = readdirSync(fixturesDir)
  .filter((name) => name.endsWith('.yaml'))
  .sort()
  .map((name) => ({ name, file: join(fixturesDir, name) }));

test('every example file is checked', () => {
  assert.ok(exampleFiles.length >= 4, 'fixtures/config holds the examples');
  for (const { name } of exampleFiles) {
    assert.ok(name in expectations, `fixtures/config/${name} has expectations in this test`);
  }
});

for (const { name, file } of [
  ...exampleFiles,
  { name: 'deploy/config.yaml', file: join(deployDir, 'config.yaml') },
]) {
  test(`example ${name} validates and says what it means`, async () => {
    await expectations[name]!(file);
    // Examples are copied by users: they must not teach storing the password in the file.
    const raw = parseYaml(readFileSync(file, 'utf8')) as { broker?: Record<string, unknown> };
    assert.equal(raw.broker?.password, undefined, `${name} has no broker.password`);
    for (const url of (raw.broker?.urls as string[] | undefined) ?? []) {
      assert.doesNotMatch(url, /\/\/[^/]*@/, `${name}: no credentials in broker URLs`);
    }
  });
}

test('check-config on an example exits 0 and never prints the password from the environment', () => {
  const secret = `pw-${Math.random().toString(36).slice(2)}-secret`;
  const result = spawnSync(
    process.execPath,
    ['--import', 'tsx', 'src/cli.ts', 'check-config', join(fixturesDir, 'tls-failover.yaml')],
    { cwd: root, encoding: 'utf8', env: cleanEnv({ MQTTSN_BRIDGE_PASSWORD: secret }) },
  );
  assert.equal(result.status, 0, result.stderr);
  assert.ok(!result.stdout.includes(secret), 'the password is not in stdout');
  assert.ok(!result.stderr.includes(secret), 'the password is not in stderr');
  const printed = JSON.parse(result.stdout) as Config;
  assert.equal(printed.broker.password, '********');
  assert.equal(printed.broker.username, 'shed-pi');
  assert.equal(printed.broker.urls.length, 2);
});

/** [Service] settings of a unit file; a key given several times keeps every value in order. */
function serviceSection(text: string): Map<string, string[]> {
  const settings = new Map<string, string[]>();
  let section = '';
  // Backslash-newline continues a line.
  for (const rawLine of text.replace(/\\\n/g, ' ').split('\n')) {
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = header[1]!;
      continue;
    }
    if (section !== 'Service') continue;
    const eq = line.indexOf('=');
    assert.ok(eq > 0, `a key=value line: ${line}`);
    const key = line.slice(0, eq).trim();
    settings.set(key, [...(settings.get(key) ?? []), line.slice(eq + 1).trim()]);
  }
  return settings;
}

/** ExecStart= / ENTRYPOINT split into the node binary, node's own flags and the CLI's arguments. */
function splitCommand(argv: string[]): { node: string; nodeFlags: string[]; script: string; args: string[] } {
  const scriptAt = argv.findIndex((a) => a.endsWith('dist/cli.js'));
  assert.ok(scriptAt > 0, `the command runs dist/cli.js: ${argv.join(' ')}`);
  return {
    node: argv[0]!,
    nodeFlags: argv.slice(1, scriptAt),
    script: argv[scriptAt]!,
    args: argv.slice(scriptAt + 1),
  };
}

test('the systemd unit is hardened and sets up its user, directories, restarts and stop', () => {
  const service = serviceSection(readFileSync(unitFile, 'utf8'));
  const one = (key: string): string | undefined => service.get(key)?.at(-1);
  const expected: Record<string, string> = {
    // READY=1 after the store is open and the sockets are bound, sent by systemd-notify (a child).
    Type: 'notify',
    NotifyAccess: 'all',
    ExecReload: '/bin/kill -HUP $MAINPID',
    SyslogIdentifier: 'mqttsn-bridge',
    SyslogLevelPrefix: 'true',
    DynamicUser: 'yes',
    StateDirectory: 'mqttsn-bridge',
    ConfigurationDirectory: 'mqttsn-bridge',
    Restart: 'on-failure',
    KillSignal: 'SIGTERM',
    NoNewPrivileges: 'yes',
    ProtectSystem: 'strict',
    ProtectHome: 'yes',
    PrivateTmp: 'yes',
    PrivateDevices: 'yes',
    ProtectKernelTunables: 'yes',
    ProtectKernelModules: 'yes',
    ProtectKernelLogs: 'yes',
    ProtectControlGroups: 'yes',
    RestrictNamespaces: 'yes',
    RestrictRealtime: 'yes',
    RestrictSUIDSGID: 'yes',
    LockPersonality: 'yes',
    // V8's JIT needs writable+executable memory.
    MemoryDenyWriteExecute: 'no',
    SystemCallArchitectures: 'native',
    // Ports above 1024 need no capability.
    CapabilityBoundingSet: '',
    AmbientCapabilities: '',
  };
  for (const [key, value] of Object.entries(expected)) {
    assert.equal(one(key), value, `${key}=${value}`);
  }
  assert.deepEqual(
    one('RestrictAddressFamilies')?.split(/\s+/).sort(),
    ['AF_INET', 'AF_INET6', 'AF_UNIX'],
    'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX',
  );
  assert.ok(Number(one('RestartSec')) >= 1, 'RestartSec keeps a failing start from spinning');
  // A configuration error (exit 2) is not retried.
  assert.equal(one('RestartPreventExitStatus'), '2');
  // Room for the graceful drain (the uplink alone waits up to 3 s for PUBACKs).
  assert.ok(Number(one('TimeoutStopSec')) >= 10, 'TimeoutStopSec allows the graceful stop');
  assert.ok(service.get('SystemCallFilter')?.includes('@system-service'));
  assert.equal(one('SystemCallErrorNumber'), 'EPERM', 'a filtered call fails instead of killing node');
  assert.equal(service.get('ExecStart')?.length, 1, 'one ExecStart');
});

test("the unit's ExecStart: absolute node, the memory flags, and arguments the CLI accepts", async () => {
  const service = serviceSection(readFileSync(unitFile, 'utf8'));
  const execStart = service.get('ExecStart')![0]!;
  assert.doesNotMatch(execStart, /["'$%]/, 'no quoting or expansion: split on spaces is exact');
  const { node, nodeFlags, script, args } = splitCommand(execStart.split(/\s+/));
  assert.match(node, /^\/.+\/node$/, 'an absolute path to node');
  assert.match(script, /^\/.+\/mqttsn-bridge\/dist\/cli\.js$/, 'the installed package');
  assert.deepEqual(nodeFlags, MEMORY_FLAGS);
  assert.ok(service.get('Environment')?.includes('MALLOC_ARENA_MAX=2'), 'fewer malloc arenas');

  const commandLine = parseCommandLine(args);
  assert.equal(commandLine.command, 'run');
  const stateDir = `/var/lib/${service.get('StateDirectory')![0]}`;
  const configDir = `/etc/${service.get('ConfigurationDirectory')![0]}`;
  assert.equal(commandLine.configFile, `${configDir}/config.yaml`);
  assert.equal(commandLine.flags.get('dataDir'), stateDir);

  // With deploy/config.yaml in place of /etc/mqttsn-bridge/config.yaml: the flag wins over the file.
  const config = await loadConfig({
    commandLine: { ...commandLine, configFile: join(deployDir, 'config.yaml') },
    env: {},
  });
  assert.equal(config.dataDir, stateDir);
});

test('node accepts the memory flags and they cap the heap', () => {
  const result = spawnSync(
    process.execPath,
    [
      ...MEMORY_FLAGS,
      '-e',
      'process.stdout.write(String(require("node:v8").getHeapStatistics().heap_size_limit))',
    ],
    { encoding: 'utf8' },
  );
  assert.equal(result.status, 0, result.stderr);
  const limitMb = Number(result.stdout) / 1024 / 1024;
  assert.ok(limitMb >= 64 && limitMb < 96, `heap limit ${limitMb.toFixed(1)} MB`);
});

test('the Dockerfile: multi-stage, non-root, /data, the same flags, an ENTRYPOINT the CLI accepts', async () => {
  const text = readFileSync(dockerfile, 'utf8');
  const instructions = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const all = (name: string): string[] =>
    instructions.filter((l) => l.startsWith(`${name} `)).map((l) => l.slice(name.length + 1).trim());

  const froms = all('FROM');
  assert.ok(froms.length >= 2, 'multi-stage');
  for (const from of froms) {
    assert.match(from, /^node:\$\{NODE_VERSION\}-bookworm-slim\b/, 'Debian bookworm slim for all stages');
    assert.doesNotMatch(from, /--platform/, 'every stage builds for the target platform');
  }
  const nodeVersion = Number(/^ARG NODE_VERSION=(\d+)$/m.exec(text)?.[1]);
  assert.ok(nodeVersion >= 20, 'node >= 20 (package.json engines)');
  // No per-architecture steps: the same Dockerfile builds amd64, arm64 and arm/v7.
  assert.doesNotMatch(instructions.join('\n'), /amd64|x86_64|aarch64|arm64|armv7|armhf|TARGETARCH/);
  assert.ok(
    all('RUN').some((r) => /npm ci\b/.test(r)),
    'npm ci with dev dependencies',
  );
  assert.ok(
    all('RUN').some((r) => /npm prune --omit=dev/.test(r)),
    'dev dependencies pruned',
  );

  const users = all('USER');
  assert.ok(users.length > 0 && !['root', '0'].includes(users.at(-1)!), 'runs as a non-root user');
  assert.deepEqual(all('VOLUME'), ['/data']);
  const exposed = all('EXPOSE').flatMap((e) => e.split(/\s+/));
  assert.ok(exposed.includes('1883/udp'), 'EXPOSE 1883/udp');
  // The image must not switch metrics on by variable: that silently overrode a config file's
  // `metrics:` and, with --network host, served the page on every interface.
  const imageEnv = Object.fromEntries(
    all('ENV')
      .join(' ')
      .split(/\s+/)
      .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
  );
  assert.equal(imageEnv.MQTTSN_BRIDGE_METRICS, undefined, 'no MQTTSN_BRIDGE_METRICS in the image');
  assert.equal(imageEnv.MQTTSN_BRIDGE_DATA_DIR, '/data', 'the data dir is a variable');
  assert.equal(imageEnv.MALLOC_ARENA_MAX, '2', 'fewer malloc arenas, as in the systemd unit');
  assert.ok(exposed.includes('18830/tcp'), 'EXPOSE the documented metrics port');

  const healthcheck = all('HEALTHCHECK')[0];
  assert.ok(healthcheck, 'a HEALTHCHECK');
  assert.match(healthcheck, /docker-healthcheck\.mjs/);
  assert.ok(
    all('COPY').some((c) => c.startsWith('deploy/docker-healthcheck.mjs ')),
    'the health check script is in the image',
  );

  const entrypoint = JSON.parse(all('ENTRYPOINT')[0]!) as string[];
  const { node, nodeFlags, args } = splitCommand(entrypoint);
  assert.equal(node, 'node');
  assert.deepEqual(nodeFlags, MEMORY_FLAGS, 'the same memory flags as the systemd unit');
  // Nothing after cli.js: `docker run IMAGE pub -p ...` reaches the device client unchanged.
  assert.deepEqual(args, [], 'the ENTRYPOINT adds no arguments of its own');
  const commandLine = parseCommandLine([...args, '--config', '/config/config.yaml']);
  assert.equal(commandLine.command, 'run');
  // `docker run IMAGE check-config FILE` works through the same ENTRYPOINT.
  const checking = parseCommandLine([...args, 'check-config', '/config/config.yaml']);
  assert.equal(checking.command, 'check-config');
  assert.equal(checking.configFile, '/config/config.yaml');
  // The environment the image sets: /data, and the config file keeps its say over metrics.
  const config = await loadConfig({ argv: args, env: imageEnv });
  assert.equal(config.dataDir, '/data');
  assert.equal(config.metrics, undefined, 'metrics stay off until configured');

  const ignored = readFileSync(join(root, '.dockerignore'), 'utf8').split('\n');
  for (const entry of ['node_modules', 'dist', 'data', 'test/artifacts', '.git']) {
    assert.ok(ignored.includes(entry), `.dockerignore lists ${entry}`);
  }
});

test("the image's health check: 200 is healthy, 503 or no answer is not, no metrics address passes", async (t) => {
  let status = 200;
  const server = createServer((req, res) => {
    res.statusCode = req.url === '/healthz' ? status : 404;
    res.end(status === 200 ? 'ok' : 'uplink disconnected and outbox at 95% of its quota');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    if (server.listening) server.close();
  });
  const { port } = server.address() as AddressInfo;

  // The check reads the gateway's command line and environment from /proc/PID: a stand-in process
  // whose command line ends in dist/cli.js and whose environment carries the address plays it.
  const check = async (metrics: string): Promise<{ code: number; output: string }> => {
    const target = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', '/app/dist/cli.js'], {
      env: cleanEnv(metrics === '' ? {} : { MQTTSN_BRIDGE_METRICS: metrics }),
      stdio: 'ignore',
    });
    try {
      return await new Promise((resolve) => {
        execFile(
          process.execPath,
          [join(deployDir, 'docker-healthcheck.mjs')],
          { env: cleanEnv({ MQTTSN_BRIDGE_HEALTHCHECK_PID: String(target.pid) }), timeout: 15_000 },
          (err, stdout, stderr) => {
            const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
            resolve({ code, output: `${stdout}${stderr}` });
          },
        );
      });
    } finally {
      target.kill('SIGKILL');
    }
  };

  assert.equal((await check(`127.0.0.1:${port}`)).code, 0);
  // A wildcard address (as in the image) is checked over loopback.
  assert.equal((await check(`0.0.0.0:${port}`)).code, 0);
  status = 503;
  const unhealthy = await check(`127.0.0.1:${port}`);
  assert.equal(unhealthy.code, 1);
  assert.match(unhealthy.output, /503 uplink disconnected/);
  server.close();
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal((await check(`127.0.0.1:${port}`)).code, 1, 'nothing listening');
  assert.equal((await check('')).code, 0, 'metrics off: nothing to check');
  assert.equal((await check('nonsense')).code, 1, 'a malformed address is reported');
});
