/**
 * A lone device's PUBLISH-to-PUBACK latency (QoS 1, one message in flight), beside the floors it is
 * made of, measured in the same run and under the same fsync shim:
 *
 *   npm run build && node --import tsx bench/latency.ts [--baseline /tmp/base] [--seconds 4]
 *       [--rounds 2] [--fsync-us 0,10000]
 *
 * Floors, each in its own child process with ../shared/tools/slowsync.c preloaded like the gateway:
 * - fdatasync: a 200-byte append then fdatasync on the main thread (what the disk costs);
 * - fdatasync via the threadpool: the same through fs.fdatasync (adds libuv's hand-off both ways);
 * - LevelDB sync batch: a chained batch of one ~100-byte put written with {sync: true}, with the
 *   gateway's LevelDB options (store/db.ts), one at a time (what the outbox's one write costs);
 * - UDP echo: a datagram to another node process and back on 127.0.0.1 (what the radio side costs);
 * - UDP echo after idle (with the shim only): the same, each ping after the shim's delay of quiet. A
 *   process (and, in a VM, its CPU) that slept that long wakes slower: on the 2-core VM of issue 10 an
 *   echo costs ~100 µs back to back and ~350 µs after 10 ms of quiet, and a lone device's round trip
 *   at 10 ms has about four such wake-ups (the syncing thread, the main thread, the device, the worker).
 * Then the gateway (`<dir>/dist/cli.js`, a child process, against one shared Mosquitto) with one device
 * (bench/sensor.ts) publishing back to back. The summary gives each build's p50 minus the floors: what
 * the gateway itself adds on top of one LevelDB sync and one UDP round trip.
 */
import { execFileSync, spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { closeSync, fdatasync, fdatasyncSync, openSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Level } from 'level';
import { sleep, startMosquitto } from '../test/helpers/index.js';
import { freeUdpPort, waitReady } from '../test/support/gateway-process.js';
import { LEVELDB_MEMORY } from '../src/store/db.js';
import { Sensor } from './sensor.js';
import { cleanup, cleanups, median, percentile } from './support.js';

const { values } = parseArgs({
  options: {
    baseline: { type: 'string' },
    rounds: { type: 'string', default: '2' },
    seconds: { type: 'string', default: '4' },
    'fsync-us': { type: 'string', default: '0,10000' },
    /** Internal: run one floor in this (child) process and print its samples as JSON. */
    floor: { type: 'string' },
  },
});
const seconds = Number(values.seconds);
const HERE = fileURLToPath(new URL('..', import.meta.url));
const SHIM_SOURCE = path.join(HERE, '../../shared/tools/slowsync.c');
const SHIM = `/tmp/slowsync-latency-${process.pid}.so`;

type Floor = 'fdatasync' | 'fdatasync-pool' | 'level-sync' | 'udp-echo' | 'udp-echo-idle';
const FLOORS: Floor[] = ['fdatasync', 'fdatasync-pool', 'level-sync', 'udp-echo', 'udp-echo-idle'];

/** Samples in ms until `until` (performance.now()), one operation at a time. */
async function sampleFloor(floor: Floor, until: number): Promise<number[]> {
  const times: number[] = [];
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mqttsn-latency-'));
  try {
    if (floor === 'fdatasync' || floor === 'fdatasync-pool') {
      const fd = openSync(path.join(dir, 'log'), 'a');
      const record = Buffer.alloc(200, 0x61);
      while (performance.now() < until) {
        writeSync(fd, record);
        const started = performance.now();
        if (floor === 'fdatasync') fdatasyncSync(fd);
        else await new Promise<void>((resolve, reject) => fdatasync(fd, (e) => (e ? reject(e) : resolve())));
        times.push(performance.now() - started);
      }
      closeSync(fd);
    } else if (floor === 'level-sync') {
      const db = new Level<Buffer, Buffer>(dir, {
        ...LEVELDB_MEMORY,
        keyEncoding: 'buffer',
        valueEncoding: 'buffer',
      });
      await db.open();
      const value = Buffer.alloc(100, 0x61);
      for (let seq = 0; performance.now() < until; seq++) {
        const key = Buffer.alloc(8);
        key.writeDoubleBE(seq);
        const started = performance.now();
        await db.batch().put(key, value).write({ sync: true });
        times.push(performance.now() - started);
      }
      await db.close();
    } else {
      // The echo side is a second node process, as the gateway is for a device.
      const echo = spawn(process.execPath, [
        '-e',
        "const s=require('dgram').createSocket('udp4');s.on('message',(m,r)=>s.send(m,r.port,r.address));" +
          "s.bind(0,'127.0.0.1',()=>console.log(s.address().port));",
      ]);
      const port = await new Promise<number>((resolve) =>
        echo.stdout.once('data', (d) => resolve(Number(String(d)))),
      );
      const socket = dgram.createSocket('udp4');
      await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
      const packet = Buffer.alloc(33, 0x61);
      const quietMs = floor === 'udp-echo-idle' ? Number(process.env.SLOWSYNC_US) / 1000 : 0;
      while (performance.now() < until) {
        if (quietMs > 0) await sleep(quietMs);
        const started = performance.now();
        await new Promise<void>((resolve) => {
          socket.once('message', () => resolve());
          socket.send(packet, port, '127.0.0.1');
        });
        times.push(performance.now() - started);
      }
      socket.close();
      echo.kill();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return times;
}

/** One floor in a child process with the shim preloaded (the shim cannot be loaded into this one). */
function runFloor(floor: Floor, fsyncUs: number): Promise<number[]> {
  const child = spawn(
    process.execPath,
    [...process.execArgv, fileURLToPath(import.meta.url), '--floor', floor, '--seconds', String(seconds)],
    {
      env: { ...process.env, LD_PRELOAD: SHIM, SLOWSYNC_US: String(fsyncUs) },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) =>
    child.once('exit', (code) =>
      code === 0 ? resolve(JSON.parse(out) as number[]) : reject(new Error(`floor ${floor} exited ${code}`)),
    ),
  );
}

/** A gateway from `dir` with the shim preloaded; ready once it answers SEARCHGW. */
async function startGateway(dir: string, broker: string, fsyncUs: number) {
  const port = await freeUdpPort();
  const data = mkdtempSync(path.join(os.tmpdir(), 'mqttsn-latency-gw-'));
  const child = spawn(
    process.execPath,
    [
      path.join(dir, 'dist/cli.js'),
      ...['--listen', `127.0.0.1:${port}`, '--broker', broker, '--data-dir', data, '--log-level', 'warn'],
    ],
    {
      env: { ...process.env, LD_PRELOAD: SHIM, SLOWSYNC_US: String(fsyncUs) },
      stdio: ['ignore', 'inherit', 'inherit'],
    },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    child.kill('SIGTERM');
    await exited;
    rmSync(data, { recursive: true, force: true });
  };
  cleanups.push(stop);
  await waitReady(
    port,
    () => child.exitCode !== null,
    () => `(${dir}: its output is above)`,
  );
  return { port, pid: child.pid, stop };
}

async function loneDevice(dir: string, broker: string, fsyncUs: number): Promise<number[]> {
  const gw = await startGateway(dir, broker, fsyncUs);
  try {
    await sleep(500);
    const sensor = new Sensor(gw.port, `lat-${process.pid}`, 1);
    await sensor.connect();
    // The first half second warms the JIT and LevelDB up; only the rest is counted.
    await sensor.runQos1(performance.now() + 500);
    sensor.latencies = [];
    await sensor.runQos1(performance.now() + seconds * 1000);
    sensor.close();
    return sensor.latencies;
  } finally {
    await gw.stop();
    cleanups.splice(cleanups.indexOf(gw.stop), 1);
  }
}

interface Figures {
  p50: number;
  p90: number;
  n: number;
}

function figures(samples: number[]): Figures {
  const sorted = [...samples].sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), p90: percentile(sorted, 90), n: sorted.length };
}

const us = (ms: number): string => (ms * 1000).toFixed(0).padStart(6);

async function main(): Promise<void> {
  const builds: Array<{ name: string; dir: string }> = [{ name: 'new', dir: HERE }];
  if (values.baseline !== undefined) builds.push({ name: 'base', dir: path.resolve(values.baseline) });
  for (const { dir } of builds)
    if (!existsSync(path.join(dir, 'dist/cli.js')))
      throw new Error(`${dir}/dist/cli.js: run npm run build there`);
  execFileSync('gcc', ['-O2', '-shared', '-fPIC', '-o', SHIM, SHIM_SOURCE, '-ldl']);
  cleanups.push(() => rmSync(SHIM, { force: true }));
  const mosquitto = await startMosquitto();
  cleanups.push(() => mosquitto.stop());
  const fsyncModes = values['fsync-us'].split(',').map(Number);
  console.log(`node ${process.version}, ${values.rounds} rounds of ${seconds} s each; µs`);
  for (const fsyncUs of fsyncModes) {
    const runs = new Map<string, number[][]>();
    const add = (name: string, samples: number[]): void => {
      runs.set(name, [...(runs.get(name) ?? []), samples]);
    };
    for (let round = 0; round < Number(values.rounds); round++) {
      for (const floor of FLOORS)
        if (floor !== 'udp-echo-idle' || fsyncUs > 0) add(floor, await runFloor(floor, fsyncUs));
      // Alternate which build goes first, so neither always gets the quieter half of a round.
      const order = round % 2 === 0 ? builds : [...builds].reverse();
      for (const build of order)
        add(`gateway ${build.name}`, await loneDevice(build.dir, mosquitto.url, fsyncUs));
    }
    // Per name: the median over rounds of each round's p50 and p90.
    const summary = new Map<string, Figures>();
    for (const [name, rounds] of runs) {
      const each = rounds.map(figures);
      summary.set(name, {
        p50: median(each.map((f) => f.p50)),
        p90: median(each.map((f) => f.p90)),
        n: each.reduce((a, f) => a + f.n, 0),
      });
    }
    console.log(`\nfsync shim ${fsyncUs} µs      p50     p90   samples`);
    for (const [name, f] of summary)
      console.log(`${name.padEnd(22)} ${us(f.p50)}  ${us(f.p90)}  ${String(f.n).padStart(7)}`);
    const raw = summary.get('fdatasync')!.p50;
    const level = summary.get('level-sync')!.p50;
    const udp = summary.get(fsyncUs > 0 ? 'udp-echo-idle' : 'udp-echo')!.p50;
    for (const build of builds) {
      const p50 = summary.get(`gateway ${build.name}`)!.p50;
      console.log(
        `${build.name}: p50 − fdatasync ${us(p50 - raw)}; − LevelDB sync ${us(p50 - level)}; ` +
          `− LevelDB sync − UDP echo${fsyncUs > 0 ? ' after idle' : ''} ${us(p50 - level - udp)} ` +
          '(goal: p50 − fdatasync ≤ 100)',
      );
    }
  }
}

if (values.floor !== undefined) {
  const samples = await sampleFloor(values.floor as Floor, performance.now() + Math.min(seconds, 2) * 1000);
  process.stdout.write(JSON.stringify(samples));
} else
  try {
    await main();
  } finally {
    await cleanup();
  }
