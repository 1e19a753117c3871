/**
 * Where the gateway's RSS goes, from the floor up (issue 10: RSS ≤ 64 MB under load with the defaults):
 *
 *   npm run build && node --import tsx bench/memory-floor.ts [--build DIR] [--seconds 8] [--devices 200]
 *       [--arenas default,2] [--gateway-node-args="..."]
 *
 * Four stages, each a fresh child process, each given glibc's default malloc arenas and MALLOC_ARENA_MAX=2
 * (what the systemd unit, the image and the .deb launcher set); the "arenas" column says what the process
 * runs with (on Node 22.15+ the gateway sets 2 itself and re-executes, src/launch-arenas.ts):
 *   1. bare node (`node -e` with a timer);
 *   2. node with only the packages the gateway loads, used as it uses them (bench/memory-floor-modules.mjs:
 *      the launch's V8 flags, mqtt, mqtt-packet, pino, LevelDB opened with the gateway's options, one
 *      bound UDP socket), idle;
 *   3. the gateway (`DIR/dist/cli.js`, default settings) idle, connected to a local Mosquitto;
 *   4. the same gateway right after N devices (one QoS 1 message in flight each, as bench/hotpath.ts)
 *      published for S seconds.
 *
 * For each: RSS, its file-backed part (mostly the node binary's pages) and its anonymous part, and
 * within the anonymous part: V8's heap (used / resident), Buffers' memory outside it (arrayBuffers),
 * glibc's main arena ([heap], the main thread's malloc), the other threads' arenas (the libuv
 * threadpool: LevelDB's writes, its memtable; V8's helper threads), thread stacks, and what is left of
 * the other anonymous mappings once V8's heap is taken out (large mallocs of ≥ 128 KB, V8's own
 * bookkeeping). The anonymous mappings are told apart from /proc/<pid>/smaps: glibc's thread arenas are
 * 64 MB-aligned reservations, thread stacks sit above a 4 KB guard page. V8's figures come from
 * bench/memory-probe.cjs, preloaded, on SIGUSR2.
 *
 * Figures, not assertions; the machine is shared, but memory is much less sensitive to that than CPU.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { sleep, startMosquitto, tempDir } from '../test/helpers/index.js';
import { freeUdpPort, waitReady } from '../test/support/gateway-process.js';
import { Sensor } from './sensor.js';
import { cleanup, cleanups } from './support.js';

const { values } = parseArgs({
  options: {
    build: { type: 'string' },
    seconds: { type: 'string', default: '8' },
    devices: { type: 'string', default: '200' },
    arenas: { type: 'string', default: 'default,2' },
    stages: { type: 'string', default: 'bare,modules,idle,load' },
    'gateway-node-args': { type: 'string', default: '' },
  },
});
const HERE = fileURLToPath(new URL('..', import.meta.url));
const BUILD = path.resolve(values.build ?? HERE);
if (!existsSync(path.join(BUILD, 'dist/cli.js')))
  throw new Error(`${BUILD}/dist/cli.js: run npm run build there`);
const PROBE = path.join(HERE, 'bench/memory-probe.cjs');
const MODULES = path.join(HERE, 'bench/memory-floor-modules.mjs');
const seconds = Number(values.seconds);
const devices = Number(values.devices);
const arenaModes = values.arenas.split(',');
const stages = values.stages.split(',');
const gatewayNodeArgs = values['gateway-node-args'].split(' ').filter(Boolean);
const MB = 1024 * 1024;

interface Probe {
  usage: NodeJS.MemoryUsage;
  spaces: Array<{ name: string; used: number; committed: number; resident: number }>;
}

interface Row {
  stage: string;
  arenas: string;
  /** From /proc/<pid>/status, in MB. */
  rss: number;
  file: number;
  anon: number;
  /** From /proc/<pid>/smaps, in MB. */
  mainArena: number;
  threadArenas: number;
  stacks: number;
  otherAnon: number;
  probe: Probe;
}

/** The anonymous mappings of a process, in MB, by what made them (see the header). */
function anonymousParts(pid: number): Pick<Row, 'mainArena' | 'threadArenas' | 'stacks' | 'otherAnon'> {
  interface Mapping {
    start: bigint;
    end: bigint;
    perm: string;
    file: boolean;
    name: string;
    rssKb: number;
  }
  const maps: Mapping[] = [];
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ (\d+)\s*(.*)$/.exec(line);
    if (head)
      maps.push({
        start: BigInt(`0x${head[1]}`),
        end: BigInt(`0x${head[2]}`),
        perm: head[3]!,
        file: head[4] !== '0',
        name: head[5]!,
        rssKb: 0,
      });
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss && maps.length > 0) maps[maps.length - 1]!.rssKb = Number(rss[1]);
  }
  const parts = { mainArena: 0, threadArenas: 0, stacks: 0, otherAnon: 0 };
  const ARENA = 64n * BigInt(MB); // glibc's HEAP_MAX_SIZE on 64-bit: each thread arena reserves this, aligned
  maps.forEach((m, i) => {
    if (m.file || (m.name !== '' && m.name !== '[heap]')) return; // files, [stack], [vdso]…
    const kb = m.rssKb / 1024;
    const next = maps[i + 1];
    const prev = maps[i - 1];
    if (m.name === '[heap]') parts.mainArena += kb;
    else if (
      m.perm.startsWith('rw') &&
      m.start % ARENA === 0n &&
      (m.end - m.start === ARENA ||
        (next?.start === m.end && next.perm === '---p' && next.end - m.start === ARENA))
    )
      parts.threadArenas += kb;
    else if (
      m.perm.startsWith('rw') &&
      prev?.end === m.start &&
      prev.perm === '---p' &&
      prev.end - prev.start === 4096n &&
      m.end - m.start <= 8n * BigInt(MB) + 4096n
    )
      parts.stacks += kb;
    else parts.otherAnon += kb;
  });
  return parts;
}

/** MALLOC_ARENA_MAX in the environment the process runs with now, or 'default'. */
function arenaMaxOf(pid: number): string {
  const entry = readFileSync(`/proc/${pid}/environ`, 'utf8')
    .split('\0')
    .find((e) => e.startsWith('MALLOC_ARENA_MAX='));
  return entry?.slice('MALLOC_ARENA_MAX='.length) ?? 'default';
}

function statusMb(pid: number, field: string): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1]) / 1024;
}

async function measure(child: ChildProcess, probeFile: string, stage: string, arenas: string): Promise<Row> {
  const pid = child.pid!;
  const row = {
    stage,
    // What the process runs with (the gateway may have set it and re-executed itself), and what it was given.
    arenas: `${arenaMaxOf(pid)}${arenaMaxOf(pid) === arenas ? '' : ` (given ${arenas})`}`,
    rss: statusMb(pid, 'VmRSS'),
    file: statusMb(pid, 'RssFile'),
    anon: statusMb(pid, 'RssAnon'),
    ...anonymousParts(pid),
  };
  rmSync(probeFile, { force: true });
  child.kill('SIGUSR2');
  for (let waited = 0; !existsSync(probeFile); waited += 20) {
    if (waited > 5000) throw new Error(`${stage}: no memory probe report`);
    await sleep(20);
  }
  await sleep(50); // written in one writeFileSync: let it finish
  return { ...row, probe: JSON.parse(readFileSync(probeFile, 'utf8')) as Probe };
}

function start(args: string[], arenas: string, cwd = BUILD): { child: ChildProcess; probeFile: string } {
  const probeFile = `/tmp/memory-floor-${process.pid}.json`;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    MEMORY_PROBE_FILE: probeFile,
    MQTTSN_BRIDGE_LOG_LEVEL: 'warn',
  };
  delete env.MALLOC_ARENA_MAX;
  if (arenas !== 'default') env.MALLOC_ARENA_MAX = arenas;
  const child = spawn(process.execPath, ['--require', PROBE, ...args], {
    cwd,
    env,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    child.kill('SIGTERM');
    await exited;
  };
  cleanups.push(stop);
  return { child, probeFile };
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode === null) {
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    await exited;
  }
}

async function load(port: number): Promise<number> {
  const sensors = Array.from({ length: devices }, (_, i) => new Sensor(port, `floor-${i}`, 1));
  await Promise.all(sensors.map((s) => s.connect()));
  const until = performance.now() + seconds * 1000;
  const watchdog = setInterval(
    () => sensors.forEach((s) => s.retransmitIfStalled(performance.now(), 2000)),
    500,
  );
  const acked = (await Promise.all(sensors.map((s) => s.runQos1(until)))).reduce((a, b) => a + b, 0);
  clearInterval(watchdog);
  sensors.forEach((s) => s.close());
  return acked;
}

async function runStage(stage: string, arenas: string, broker: string): Promise<Row> {
  const data = tempDir('mqttsn-memory-floor-');
  try {
    if (stage === 'bare') {
      const { child, probeFile } = start(['-e', 'setInterval(() => {}, 1 << 30)'], arenas);
      await sleep(1500);
      const row = await measure(child, probeFile, 'bare node', arenas);
      await stopChild(child);
      return row;
    }
    if (stage === 'modules') {
      const { child, probeFile } = start([MODULES, path.join(data.path, 'db'), BUILD], arenas);
      await sleep(2500);
      const row = await measure(child, probeFile, 'node + gateway packages, idle', arenas);
      await stopChild(child);
      return row;
    }
    const port = await freeUdpPort();
    const { child, probeFile } = start(
      [
        ...gatewayNodeArgs,
        path.join(BUILD, 'dist/cli.js'),
        ...['--listen', `127.0.0.1:${port}`, '--broker', broker, '--data-dir', path.join(data.path, 'db')],
        ...['--log-level', 'warn', '--max-clients', '100000'],
      ],
      arenas,
    );
    await waitReady(
      port,
      () => child.exitCode !== null,
      () => `(${BUILD}: its output is above)`,
    );
    await sleep(1500);
    let row: Row;
    if (stage === 'idle') row = await measure(child, probeFile, 'gateway idle', arenas);
    else {
      const acked = await load(port);
      row = await measure(child, probeFile, `gateway, end of ${devices}-device load`, arenas);
      console.error(`  (${stage}, arenas ${arenas}: ${acked} messages acknowledged in ${seconds} s)`);
    }
    await stopChild(child);
    return row;
  } finally {
    data.cleanup();
  }
}

const COLUMNS: Array<[string, (r: Row) => string]> = [
  ['stage', (r) => r.stage],
  ['arenas', (r) => r.arenas],
  ['RSS', (r) => r.rss.toFixed(1)],
  ['file', (r) => r.file.toFixed(1)],
  ['anon', (r) => r.anon.toFixed(1)],
  ['V8 used/resident', (r) => `${heap(r, 'used')}/${heap(r, 'resident')}`],
  ['  new', (r) => space(r, 'new_space')],
  ['  old', (r) => space(r, 'old_space')],
  ['  code', (r) => space(r, 'code_space')],
  ['  large', (r) => space(r, 'large_object_space', 'code_large_object_space', 'new_large_object_space')],
  ['arrayBuffers', (r) => (r.probe.usage.arrayBuffers / MB).toFixed(1)],
  ['main arena', (r) => r.mainArena.toFixed(1)],
  ['thread arenas', (r) => r.threadArenas.toFixed(1)],
  ['stacks', (r) => r.stacks.toFixed(1)],
  ['other anon − V8', (r) => (r.otherAnon - sum(r, 'resident') / MB).toFixed(1)],
];

function sum(r: Row, field: 'used' | 'resident', names?: string[]): number {
  return r.probe.spaces.filter((s) => !names || names.includes(s.name)).reduce((a, s) => a + s[field], 0);
}
function heap(r: Row, field: 'used' | 'resident'): string {
  return (sum(r, field) / MB).toFixed(1);
}
function space(r: Row, ...names: string[]): string {
  return `${(sum(r, 'used', names) / MB).toFixed(1)}/${(sum(r, 'resident', names) / MB).toFixed(1)}`;
}

async function main(): Promise<void> {
  const mosquitto = await startMosquitto();
  cleanups.push(() => mosquitto.stop());
  console.log(`node ${process.version}, build ${BUILD}; MB; "used/resident" of V8's heap spaces`);
  const rows: Row[] = [];
  for (const stage of stages)
    for (const arenas of arenaModes) {
      const row = await runStage(stage, arenas, mosquitto.url);
      rows.push(row);
    }
  const widths = COLUMNS.map(([name, get]) => Math.max(name.length, ...rows.map((r) => get(r).length)));
  const line = (cells: string[]): string =>
    `| ${cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  console.log(line(COLUMNS.map(([name]) => name)));
  console.log(
    `|${widths.map((w, i) => (i < 2 ? `:${'-'.repeat(w + 1)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`,
  );
  for (const r of rows) console.log(line(COLUMNS.map(([, get]) => get(r))));
}

try {
  await main();
} finally {
  await cleanup();
}
