/**
 * Memory with the default launch (issue 10: RSS within 64 MB without flags in a unit file). The real
 * compiled gateway (`node dist/cli.js`, no node flags, as `mqttsn-bridge` runs) against aedes:
 * V8's young generation stays at its starting size, and what only --metrics needs is not loaded.
 * Sizes come from the gateway's own /metrics and from the modules it loaded, not from RSS (which
 * depends on the machine).
 */
import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { arenaEnvironment, canExecute, reexecWithMallocArenas } from '../src/launch-arenas.js';
import { defaultMemoryFlags } from '../src/launch-flags.js';
import { freePort, MqttSnTestClient, startAedes, waitUntil, withTempDir } from './helpers/index.js';
import { spawnGateway } from './support/gateway-process.js';

const LOADED_PACKAGES = fileURLToPath(new URL('./support/loaded-packages.mjs', import.meta.url));
const UNLINK_NODE = fileURLToPath(new URL('./support/unlink-node.mjs', import.meta.url));
const MB = 1024 * 1024;

async function gateway(
  t: TestContext,
  args: string[],
  nodeArgs: string[] = [],
  env: NodeJS.ProcessEnv = { MALLOC_ARENA_MAX: undefined },
  node?: string,
) {
  const dir = withTempDir(t, 'mqttsn-memory-');
  const broker = await startAedes();
  t.after(() => broker.close());
  const loaded = join(dir, 'loaded.txt');
  const gw = await spawnGateway(['--broker', broker.url, '--data-dir', join(dir, 'data'), ...args], {
    compiled: true,
    nodeArgs: ['--import', LOADED_PACKAGES, ...nodeArgs],
    env: { LOADED_PACKAGES_FILE: loaded, ...env },
    ...(node === undefined ? {} : { node }),
  });
  t.after(() => gw.signal('SIGKILL'));
  /** Stops the gateway (SIGTERM, a clean exit) and returns what test/support/loaded-packages.mjs saw. */
  const stop = async (): Promise<{ packages: string[]; numberCache: number }> => {
    assert.equal(await gw.signal('SIGTERM'), 0, gw.output());
    return JSON.parse(readFileSync(loaded, 'utf8')) as { packages: string[]; numberCache: number };
  };
  return { gw, broker, stop, stopAndListPackages: async () => (await stop()).packages };
}

async function newSpaceBytes(port: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const line = /^nodejs_heap_space_size_total_bytes\{space="new"\} (\d+)/m.exec(text);
  assert.ok(line, 'the new space size is on /metrics');
  return Number(line[1]);
}

test('a gateway launched without node flags keeps the young generation at its starting size', async (t) => {
  const port = await freePort();
  const { gw, stopAndListPackages } = await gateway(t, ['--metrics', `127.0.0.1:${port}`]);
  // Loading the modules and starting grows an unconstrained young generation to 2 × 16 MB; with
  // the growth factor at 1 it stays at 2 × 1 MB (V8's start) whatever runs.
  const size = await newSpaceBytes(port);
  assert.ok(size <= 4 * MB, `new space ${size / MB} MB, expected its starting size (2 MB)\n${gw.output()}`);
  assert.ok((await stopAndListPackages()).includes('prom-client'), 'with --metrics, prom-client serves it');
});

/** The memory flags the gateway says, in its "ready" line, that it applied. */
async function appliedFlags(gw: { output(): string }): Promise<string[]> {
  const readyLine = (): { memoryFlags?: string[] } | undefined =>
    gw
      .output()
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { msg?: string; memoryFlags?: string[] })
      .find((entry) => entry.msg === 'mqttsn-bridge ready');
  await waitUntil(() => readyLine() !== undefined);
  const flags = readyLine()?.memoryFlags;
  assert.ok(flags, `a ready line with memoryFlags:\n${gw.output()}`);
  return flags;
}

test("an operator's own young-generation flag wins over the default", async (t) => {
  // What the gateway applied, from its own start-up line: whether the young generation then grows
  // depends on how much start-up happens to keep alive, so its size cannot tell (it did not, once).
  const { gw } = await gateway(t, [], ['--max-semi-space-size=8']);
  assert.deepEqual(await appliedFlags(gw), ['--optimize-for-size']);
  const defaults = await gateway(t, []);
  assert.deepEqual(await appliedFlags(defaults.gw), ['--semi-space-growth-factor=1', '--optimize-for-size']);
});

test('without --metrics, the gateway does not load prom-client or the embedded broker', async (t) => {
  const { stopAndListPackages } = await gateway(t, []);
  const packages = await stopAndListPackages();
  assert.ok(packages.includes('mqtt'), `the preload sees CommonJS packages: ${packages.join(' ')}`);
  assert.ok(!packages.includes('prom-client'), `prom-client is loaded: ${packages.join(' ')}`);
  assert.ok(!packages.includes('aedes'), `aedes is loaded: ${packages.join(' ')}`);
});

test("mqtt-packet's table of 65,536 packet-id Buffers (6 MB of heap) is never built", async (t) => {
  const { gw, broker, stop } = await gateway(t, []);
  const arrived = new Promise<string>((resolve) =>
    broker.broker.on('publish', (packet) => {
      if (packet.topic.endsWith('/memo')) resolve(packet.payload.toString());
    }),
  );
  // A device message all the way to the broker: the uplink's CONNECT, the PUBLISH and its packet id,
  // and the outbox record are all encoded by mqtt-packet.
  const device = await MqttSnTestClient.create({ gatewayPort: gw.udpPort });
  t.after(() => device.close());
  await device.connect({ clientId: 'memo-1', duration: 60 });
  const ack = await device.publish({ topicId: await device.register('memo'), qos: 1, data: 'hello' });
  assert.equal(ack?.type, 'PUBACK');
  assert.equal(await arrived, 'hello');
  const { numberCache } = await stop();
  assert.equal(numberCache, 0, 'entries in mqtt-packet/numbers.js cache');
});

test("each default memory flag yields to the operator's own, from the command line or NODE_OPTIONS", () => {
  const both = ['--semi-space-growth-factor=1', '--optimize-for-size'];
  assert.deepEqual(defaultMemoryFlags([]), both);
  assert.deepEqual(defaultMemoryFlags(['--max-old-space-size=64'], '--enable-source-maps'), both);
  assert.deepEqual(defaultMemoryFlags(['--max-semi-space-size=2']), ['--optimize-for-size']);
  assert.deepEqual(defaultMemoryFlags(['--max_semi_space_size=2']), ['--optimize-for-size']);
  assert.deepEqual(defaultMemoryFlags([], '--min-semi-space-size=1'), ['--optimize-for-size']);
  assert.deepEqual(defaultMemoryFlags([], '--no-optimize-for-size'), ['--semi-space-growth-factor=1']);
  assert.deepEqual(defaultMemoryFlags(['--semi-space-growth-factor=2', '--optimize_for_size']), []);
});

/** MALLOC_ARENA_MAX in the environment the gateway process runs with now (after any exec). */
function arenaMaxOf(pid: number | undefined): string | undefined {
  const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
  return environ.find((entry) => entry.startsWith('MALLOC_ARENA_MAX='))?.slice('MALLOC_ARENA_MAX='.length);
}

test('a plain launch runs under MALLOC_ARENA_MAX=2 (re-exec in place where Node has process.execve)', async (t) => {
  // Node 22.15+ / 23.11+ can replace the process with itself under the new environment; Node 20 cannot,
  // and then starts as it is. The pid is the one spawned either way: no wrapper process is left behind.
  const canExec = typeof (process as { execve?: unknown }).execve === 'function';
  const { gw, stopAndListPackages } = await gateway(t, []);
  assert.equal(arenaMaxOf(gw.pid), canExec ? '2' : undefined, `${process.version}\n${gw.output()}`);
  const ready = gw
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { msg?: string; mallocArenaMax?: string | null })
    .find((entry) => entry.msg === 'mqttsn-bridge ready');
  assert.equal(ready?.mallocArenaMax, canExec ? '2' : null, 'the ready line says what the gateway runs with');
  // The exec kept the node flags: the preload that lists the packages ran in the gateway.
  assert.ok((await stopAndListPackages()).includes('mqtt'));
});

test('a gateway whose node cannot be executed again starts with the default arenas instead of aborting', async (t) => {
  // A failed process.execve aborts Node (exit 134) rather than throwing. Here the gateway runs from a
  // copy of node that a preload removes before the CLI starts, as a package upgrade or a sandbox
  // without execve would leave it: the CLI must see that and start as it is.
  const dir = withTempDir(t, 'mqttsn-node-copy-');
  const node = join(dir, 'node');
  copyFileSync(process.execPath, node);
  chmodSync(node, 0o755);
  const { gw, stopAndListPackages } = await gateway(t, [], ['--import', UNLINK_NODE], undefined, node);
  assert.equal(existsSync(node), false, 'the preload removed the copy');
  assert.equal(arenaMaxOf(gw.pid), undefined, gw.output());
  assert.ok((await stopAndListPackages()).includes('mqtt'), 'the gateway ran and stopped cleanly');
});

test('the arena re-exec runs only when this node can be executed, and returns if the exec is refused', () => {
  const env = process.env.MALLOC_ARENA_MAX;
  delete process.env.MALLOC_ARENA_MAX;
  try {
    let execs = 0;
    const execve = (): never => {
      execs++;
      throw new Error('refused');
    };
    reexecWithMallocArenas(execve, () => false);
    assert.equal(execs, 0, 'not executable: no exec');
    if (process.platform === 'linux') {
      reexecWithMallocArenas(execve, () => true);
      assert.equal(execs, 1, 'executable: one exec, and a refused one returns');
    }
    assert.equal(canExecute(process.execPath), true);
    assert.equal(canExecute(join(fileURLToPath(new URL('.', import.meta.url)), 'no-such-node')), false);
  } finally {
    if (env !== undefined) process.env.MALLOC_ARENA_MAX = env;
  }
});

test("an operator's own MALLOC_ARENA_MAX is kept as it is", async (t) => {
  const { gw } = await gateway(t, [], [], { MALLOC_ARENA_MAX: '4' });
  assert.equal(arenaMaxOf(gw.pid), '4');
});

test('the arena re-exec is for the gateway on Linux only, never for the short-lived tools', () => {
  assert.equal(arenaEnvironment({}, ['--broker', 'mqtt://b'], 'linux')?.MALLOC_ARENA_MAX, '2');
  assert.equal(arenaEnvironment({}, [], 'linux')?.MALLOC_ARENA_MAX, '2');
  assert.equal(arenaEnvironment({ MALLOC_ARENA_MAX: '8' }, [], 'linux'), undefined);
  assert.equal(arenaEnvironment({}, [], 'darwin'), undefined);
  for (const tool of ['pub', 'sub', 'ctl', 'dead-letters', 'check-config', '--help', '--version'])
    assert.equal(arenaEnvironment({}, [tool, 'x'], 'linux'), undefined, tool);
});
