/**
 * The install stories in the README, run for real: a release tarball (`npm pack`) installed with
 * `npm install -g` (here into a private prefix) shows every default in --help and relays a device's
 * QoS 1 PUBLISH to Mosquitto under whatever node is first on PATH (CI runs this on 20, 22 and 24);
 * without the optional packages it still runs against a real broker and says what is missing; and
 * `npm ci --omit=dev` in a checkout succeeds instead of failing on tsc; and another project that
 * installs the tarball can `import('mqttsn-bridge')` and run a gateway through `createBridge`.
 */
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { cpSync, existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { formatDefault } from '../src/config/defaults.js';
import { settings } from '../src/config/settings.js';
import { requireMosquitto, startMosquitto, tempDir, withTempDir } from './helpers/index.js';
import { relayThroughInstalled } from './support/installed.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const NPM_FLAGS = ['--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'];

function run(
  command: string,
  args: string[],
  cwd: string,
  env: NodeJS.ProcessEnv = {},
): SpawnSyncReturns<string> {
  const result = spawnSync(command, args, { cwd, encoding: 'utf8', env: { ...process.env, ...env } });
  assert.equal(result.status, 0, `${command} ${args.join(' ')}:\n${result.stdout}\n${result.stderr}`);
  return result;
}

/** `npm pack` once per file: it runs prepack (the build), so the tarball carries a fresh dist/. */
const packDir = tempDir('mqttsn-pack-');
after(() => packDir.cleanup());
let tarball: string | undefined;
function pack(): string {
  if (tarball !== undefined) return tarball;
  const out = packDir.path;
  run('npm', ['pack', '--pack-destination', out, '--loglevel=error'], root);
  const [name] = readdirSync(out).filter((f) => /^mqttsn-bridge-\d+\.\d+\.\d+\.tgz$/.test(f));
  assert.ok(name, `npm pack wrote ${readdirSync(out).join(', ')}`);
  tarball = join(out, name);
  return tarball;
}

test('npm pack → npm install -g: --help shows every default and the program relays QoS 1', async (t) => {
  if (!requireMosquitto(t)) return;
  const prefix = withTempDir(t, 'mqttsn-global-');
  run('npm', ['install', '-g', '--prefix', prefix, ...NPM_FLAGS, pack()], root);
  const bin = join(prefix, 'bin', 'mqttsn-bridge');
  assert.ok(existsSync(bin), 'the bin is linked into PREFIX/bin');

  const help = run(bin, ['--help'], prefix).stdout;
  for (const s of settings) {
    const shown = formatDefault(s.path);
    if (shown !== '')
      assert.ok(help.includes(`file key ${s.path}, default ${shown}`), `--help: ${s.path} ${shown}`);
  }
  assert.match(help, /file key listen, default 0\.0\.0\.0:1883/);

  const broker = await startMosquitto();
  t.after(() => broker.stop());
  const data = withTempDir(t, 'mqttsn-global-data-');
  const { code, output } = await relayThroughInstalled(bin, ['--data-dir', data], broker.url);
  assert.equal(code, 0, output);
  const version = run(bin, ['--version'], prefix).stdout.trim();
  assert.equal(
    version,
    JSON.parse(run('node', ['-p', 'JSON.stringify(require("./package.json").version)'], root).stdout),
  );
  assert.ok(output.includes(`"version":"${version}"`), 'the installed program logged its version');
  t.diagnostic(`relayed under node ${process.version}`);
});

test('installed without optional packages: a real broker works, the embedded one and pretty logs say what is missing', async (t) => {
  if (!requireMosquitto(t)) return;
  const prefix = withTempDir(t, 'mqttsn-minimal-');
  // A local install: npm install -g does not honour --omit=optional (npm 11.19), a project does.
  run('npm', ['install', '--prefix', prefix, '--omit=optional', ...NPM_FLAGS, pack()], prefix);
  assert.ok(existsSync(join(prefix, 'node_modules', 'mqttsn-bridge')));
  assert.ok(!existsSync(join(prefix, 'node_modules', 'aedes')), 'aedes not installed');
  assert.ok(!existsSync(join(prefix, 'node_modules', 'pino-pretty')), 'pino-pretty not installed');
  const bin = join(prefix, 'node_modules', '.bin', 'mqttsn-bridge');

  const data = withTempDir(t, 'mqttsn-minimal-data-');
  const embedded = spawnSync(bin, ['--data-dir', data, '--listen', '127.0.0.1:0'], { encoding: 'utf8' });
  assert.equal(embedded.status, 2, 'a configuration error: systemd does not restart it in a loop');
  assert.match(embedded.stderr, /optional package aedes, which is not installed\. Pass --broker/);

  const broker = await startMosquitto();
  t.after(() => broker.stop());
  const { code, output } = await relayThroughInstalled(
    bin,
    ['--data-dir', data, '--log-format', 'pretty'],
    broker.url,
  );
  assert.equal(code, 0, output);
  assert.match(
    output,
    /pino-pretty \(optional\) is not installed: logging JSON instead of --log-format pretty/,
  );
});

test('npm ci --omit=dev in a checkout succeeds and says how to get dist/', (t) => {
  const checkout = withTempDir(t, 'mqttsn-checkout-');
  for (const entry of [
    'package.json',
    'package-lock.json',
    'tsconfig.json',
    'tsconfig.build.json',
    'src',
    'scripts',
  ])
    cpSync(join(root, entry), join(checkout, entry), { recursive: true });
  const result = run(
    'npm',
    ['ci', '--omit=dev', ...NPM_FLAGS.filter((f) => f !== '--loglevel=error')],
    checkout,
  );
  assert.match(
    result.stderr + result.stdout,
    /TypeScript is not installed \(--omit=dev\), so dist\/ was not built/,
  );
  assert.ok(!existsSync(join(checkout, 'node_modules', 'typescript')));
});

/**
 * Run by node in a project that installed the tarball: the root export loads, a configuration is
 * built with its loader, and createBridge starts a gateway that answers SEARCHGW on a real UDP
 * socket, then stops. Prints one JSON line for the test to check.
 */
const EMBEDDER = `
import dgram from 'node:dgram';
const api = await import('mqttsn-bridge');
const config = await api.loadConfig({
  argv: ['--data-dir', process.argv[2], '--listen', '127.0.0.1:0', '--broker', process.argv[3], '--gateway-id', '42', '--log-level', 'silent'],
  env: {},
});
const bridge = await api.createBridge(config, { version: 'embedded' });
const { port } = bridge.gateway.addresses()[0];
const socket = dgram.createSocket('udp4');
const answer = await new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error('no GWINFO')), 5000);
  socket.on('message', (msg) => { clearTimeout(timer); resolve([...msg]); });
  socket.send(Buffer.from([3, 0x01, 0]), port, '127.0.0.1'); // SEARCHGW, radius 0
});
socket.close();
await bridge.stop();
console.log(JSON.stringify({ exports: Object.keys(api).sort(), answer }));
`;

test('another project imports mqttsn-bridge and runs a gateway through createBridge', (t) => {
  const project = withTempDir(t, 'mqttsn-embedder-');
  writeFileSync(
    join(project, 'package.json'),
    JSON.stringify({ name: 'embedder', private: true, type: 'module' }),
  );
  run('npm', ['install', '--omit=optional', ...NPM_FLAGS, pack()], project);
  writeFileSync(join(project, 'embed.mjs'), EMBEDDER);
  const data = withTempDir(t, 'mqttsn-embedder-data-');
  // Nothing listens on port 9 (discard) of 127.0.0.1: the uplink keeps retrying while the gateway works.
  const result = run('node', ['embed.mjs', data, 'mqtt://127.0.0.1:9'], project, {
    MQTTSN_BRIDGE_LOG_LEVEL: 'silent',
  });
  const line = result.stdout.trim().split('\n').pop()!;
  const { exports, answer } = JSON.parse(line) as { exports: string[]; answer: number[] };
  for (const name of [
    'createBridge',
    'loadConfig',
    'validateConfig',
    'configSchema',
    'ConfigError',
    'systemClock',
  ])
    assert.ok(exports.includes(name), `the root export has ${name}: ${exports.join(', ')}`);
  assert.deepEqual(answer, [3, 0x02, 42], 'GWINFO from gateway 42');
});
