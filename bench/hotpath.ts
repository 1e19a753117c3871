/**
 * The hot-path figures of issue 10, this build beside another one (the previous main), interleaved:
 *
 *   npm run build && node --import tsx bench/hotpath.ts --baseline /tmp/base [--rounds 3] [--seconds 8]
 *       [--devices 200] [--fsync-us 0,10000] [--gateway-node-args=--max-semi-space-size=1]
 *       [--paho <path to MQTT-SNGateway>] [--broker-inflight 20]
 *
 * where /tmp/base is a built checkout of main (`git archive main | tar -x -C /tmp/base && cd /tmp/base &&
 * npm ci && npm run build`). Each trial starts a fresh gateway (`<dir>/dist/cli.js`, a child process)
 * against one shared Mosquitto, with the fsync shim ../shared/tools/slowsync.c preloaded (built once to a
 * temp path with gcc): with SLOWSYNC_US=0 it only counts fsyncs, with 10000 it is an SD card.
 *
 * Per trial: idle RSS after start; 1 device, QoS 1, one in flight: PUBACK p50; N devices: durable msg/s,
 * gateway CPU µs per message (utime+stime of the gateway process from /proc/<pid>/stat over the run),
 * RSS at the end and peak, RSS after 5 s idle; fsyncs per message (the shim's count at exit over every
 * message of the trial); "end anon" is the anonymous part of the end RSS (heaps), without the node
 * binary's pages. The machine is shared: old and new alternate, the summary gives medians.
 *
 * The disk's own fsync is measured first (fdatasync after a small append in a temp dir, as LevelDB
 * syncs its log), so the summary can say how far the lone device's p50 is above it: the goal is
 * "the disk's fsync latency + 100 µs" (with the shim, its delay is added to the disk's).
 *
 * `--paho` adds the Eclipse Paho MQTT-SN gateway as a third contender in the same rounds, against the same
 * Mosquitto with the same devices: build its MQTTSNGateway for UDP yourself (Release, i.e. -O3; see its
 * MQTTSNGateway/README.md) and pass the MQTT-SNGateway binary. The goals are relative to it (CPU per
 * message ≤ 0.4× Paho's, msg/s ≥ 2× Paho's), and the summary prints those ratios. Paho is not durable (it
 * never fsyncs), so it runs only in the fast-disk mode (fsync 0); how it is configured and kept off the
 * network (its multicast) is in bench/contenders.ts. That table also gives Mosquitto's CPU and this
 * process's (devices and subscriber) per message: on a small machine they share the gateway's cores, so
 * they bound its msg/s, and they differ by gateway (Paho opens a broker connection per device; ours
 * publishes MQTT 5 with a user property, which the subscriber parses).
 */
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, fdatasyncSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';
import { sleep, startMosquitto, tempDir } from '../test/helpers/index.js';
import { ourBuild, paho, type Contender } from './contenders.js';
import { SENSOR_PAYLOAD_BYTES, Sensor } from './sensor.js';
import { cleanup, cleanups, cpuSeconds, cpuTimes, median, percentile, rssMb } from './support.js';

const { values } = parseArgs({
  options: {
    baseline: { type: 'string' },
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '8' },
    devices: { type: 'string', default: '200' },
    'fsync-us': { type: 'string', default: '0,10000' },
    /** Extra node flags for the gateways, e.g. "--max-semi-space-size=1" (memory experiments). */
    'gateway-node-args': { type: 'string', default: '' },
    /** The Eclipse Paho MQTT-SN gateway's binary (MQTT-SNGateway), run beside ours for the ratios. */
    paho: { type: 'string' },
    /**
     * Mosquitto's max_inflight_messages, which it also announces as its receive maximum: the cap on the
     * gateway's uplink window. Mosquitto's own default is 20.
     */
    'broker-inflight': { type: 'string', default: '20' },
  },
});
const rounds = Number(values.rounds);
const seconds = Number(values.seconds);
const devices = Number(values.devices);
const fsyncModes = values['fsync-us'].split(',').map(Number);
const gatewayNodeArgs = values['gateway-node-args'].split(' ').filter(Boolean);
const HERE = fileURLToPath(new URL('..', import.meta.url));
const builds: Array<{ name: string; dir: string }> = [{ name: 'new', dir: HERE }];
if (values.baseline !== undefined) builds.push({ name: 'base', dir: path.resolve(values.baseline) });
for (const { dir } of builds)
  if (!existsSync(path.join(dir, 'dist/cli.js')))
    throw new Error(`${dir}/dist/cli.js: run npm run build there`);
if (values.paho !== undefined && !existsSync(values.paho)) throw new Error(`${values.paho}: no such file`);
const contenders: Contender[] = [
  ...builds.map(({ name, dir }) => ourBuild(name, dir, gatewayNodeArgs)),
  ...(values.paho === undefined ? [] : [paho(values.paho, devices)]),
];

const SHIM_SOURCE = path.join(HERE, '../../shared/tools/slowsync.c');
const SHIM = `/tmp/slowsync-bench-${process.pid}.so`;

interface Broker {
  url: string;
  pid: number | undefined;
}

interface Trial {
  build: string;
  fsyncUs: number;
  idleRssMb: number;
  oneP50Ms: number;
  msgPerS: number;
  p50Ms: number;
  cpuUsPerMsg: number;
  /** The kernel's part of it (stime): system calls, mostly the sockets'. */
  kernelCpuUsPerMsg: number;
  /** Mosquitto's CPU and this process's (the devices and the counting subscriber), per message of the load. */
  brokerCpuUsPerMsg: number;
  benchCpuUsPerMsg: number;
  endRssMb: number;
  endAnonMb: number;
  peakRssMb: number;
  idleAfterRssMb: number;
  fsyncsPerMsg: number;
  arrived: string;
}

async function runSensors(port: number, count: number, runSeconds: number, tag: string) {
  const sensors = Array.from({ length: count }, (_, i) => new Sensor(port, `${tag}-${i}`, 1));
  await Promise.all(sensors.map((s) => s.connect()));
  const started = performance.now();
  const until = started + runSeconds * 1000;
  const watchdog = setInterval(() => {
    const now = performance.now();
    for (const s of sensors) {
      s.retransmitIfStalled(now, 2000);
      s.abandonIfPast(now, until + 10_000);
    }
  }, 500);
  const acked = (await Promise.all(sensors.map((s) => s.runQos1(until)))).reduce((a, b) => a + b, 0);
  clearInterval(watchdog);
  const elapsed = (performance.now() - started) / 1000;
  const latencies = sensors.flatMap((s) => s.latencies).sort((a, b) => a - b);
  const refused = sensors.reduce((sum, s) => sum + s.refused, 0);
  if (refused > 0) console.log(`${tag}: ${refused} PUBACKs refused (return code ≠ 0)`);
  const abandoned = sensors.filter((s) => s.abandoned).length;
  if (abandoned > 0) console.log(`${tag}: ${abandoned} devices got no PUBACK 10 s after the end; gave up`);
  sensors.forEach((s) => s.close());
  return { acked, elapsed, p50: percentile(latencies, 50) };
}

async function trial(
  contender: Contender,
  fsyncUs: number,
  broker: Broker,
  arrivedCount: () => number,
): Promise<Trial> {
  const report = `/tmp/slowsync-bench-${process.pid}-${contender.name}-${fsyncUs}.txt`;
  rmSync(report, { force: true });
  const shim = { LD_PRELOAD: SHIM, SLOWSYNC_US: String(fsyncUs), SLOWSYNC_REPORT: report };
  const gw = await contender.start(broker.url, shim);
  const pid = gw.pid;
  await sleep(1000);
  const idleRssMb = rssMb(pid, 'VmRSS');
  const before = arrivedCount();
  const one = await runSensors(gw.port, 1, 2, `one-${contender.name}`);
  const cpuBefore = cpuTimes(pid);
  const [brokerBefore, benchBefore] = [cpuSeconds(broker.pid), process.cpuUsage()];
  const many = await runSensors(gw.port, devices, seconds, `load-${contender.name}`);
  const cpuAfter = cpuTimes(pid);
  const kernelCpu = cpuAfter.system - cpuBefore.system;
  const cpu = cpuAfter.user - cpuBefore.user + kernelCpu;
  const endRssMb = rssMb(pid, 'VmRSS');
  const endAnonMb = rssMb(pid, 'RssAnon');
  const total = one.acked + many.acked;
  for (let waited = 0; arrivedCount() - before < total && waited < 30_000; waited += 50) await sleep(50);
  const arrived = `${arrivedCount() - before}/${total}`;
  const brokerCpu = cpuSeconds(broker.pid) - brokerBefore;
  const { user, system } = process.cpuUsage(benchBefore);
  await sleep(5000);
  const idleAfterRssMb = rssMb(pid, 'VmRSS');
  const peakRssMb = rssMb(pid, 'VmHWM');
  await gw.stop();
  const syncs = existsSync(report) ? Number(/syncs=(\d+)/.exec(readFileSync(report, 'utf8'))?.[1]) : NaN;
  rmSync(report, { force: true });
  return {
    build: contender.name,
    fsyncUs,
    idleRssMb,
    oneP50Ms: one.p50,
    msgPerS: many.acked / many.elapsed,
    p50Ms: many.p50,
    cpuUsPerMsg: (cpu * 1e6) / many.acked,
    kernelCpuUsPerMsg: (kernelCpu * 1e6) / many.acked,
    brokerCpuUsPerMsg: (brokerCpu * 1e6) / many.acked,
    benchCpuUsPerMsg: (user + system) / many.acked,
    endRssMb,
    endAnonMb,
    peakRssMb,
    idleAfterRssMb,
    fsyncsPerMsg: syncs / total,
    arrived,
  };
}

/** p50 of fdatasync after a 200-byte append, in ms: a lone device's PUBACK cannot come sooner. */
function diskFsyncP50Ms(samples = 400): number {
  const dir = tempDir('mqttsn-hotpath-fsync-');
  const fd = openSync(path.join(dir.path, 'log'), 'a');
  const record = Buffer.alloc(200, 0x61);
  const times: number[] = [];
  try {
    for (let i = 0; i < samples; i++) {
      writeSync(fd, record);
      const started = performance.now();
      fdatasyncSync(fd);
      times.push(performance.now() - started);
    }
  } finally {
    closeSync(fd);
    dir.cleanup();
  }
  return percentile(
    times.sort((a, b) => a - b),
    50,
  );
}

const COLUMNS: Array<[string, (t: Trial) => string]> = [
  ['build', (t) => t.build],
  ['fsync µs', (t) => String(t.fsyncUs)],
  ['idle RSS MB', (t) => t.idleRssMb.toFixed(1)],
  ['1-dev p50 ms', (t) => t.oneP50Ms.toFixed(3)],
  [`${devices}-dev msg/s`, (t) => t.msgPerS.toFixed(0)],
  ['p50 ms', (t) => t.p50Ms.toFixed(2)],
  ['CPU µs/msg', (t) => t.cpuUsPerMsg.toFixed(1)],
  ['end RSS MB', (t) => t.endRssMb.toFixed(1)],
  // The anonymous part of it (heaps); the rest is mapped files, mostly the node binary's pages.
  ['end anon MB', (t) => t.endAnonMb.toFixed(1)],
  ['peak RSS MB', (t) => t.peakRssMb.toFixed(1)],
  ['idle-after RSS MB', (t) => t.idleAfterRssMb.toFixed(1)],
  ['fsyncs/msg', (t) => t.fsyncsPerMsg.toFixed(4)],
  ['arrived', (t) => t.arrived],
];

function row(t: Trial): string {
  return COLUMNS.map(([name, get]) => get(t).padStart(name.length)).join(' | ');
}

/** Every trial: per fsync mode, `rounds` rounds of each contender that applies, interleaved. */
async function runRounds(broker: Broker, arrivedCount: () => number): Promise<Trial[]> {
  const trials: Trial[] = [];
  for (const fsyncUs of fsyncModes) {
    const here = contenders.filter((c) => c.durable || fsyncUs === 0);
    for (let round = 0; round < rounds; round++) {
      // Alternate the order, so no contender always gets the quieter part of a round.
      const order = round % 2 === 0 ? here : [...here].reverse();
      for (const contender of order) {
        const t = await trial(contender, fsyncUs, broker, arrivedCount);
        trials.push(t);
        console.log(row(t));
      }
    }
  }
  return trials;
}

/** The median of each figure over a contender's trials in one fsync mode; undefined if it did not run. */
function medianTrial(trials: Trial[], name: string, fsyncUs: number): Trial | undefined {
  const mine = trials.filter((t) => t.build === name && t.fsyncUs === fsyncUs);
  if (mine.length === 0) return undefined;
  const med = (get: (t: Trial) => number): number => median(mine.map(get));
  return {
    build: name,
    fsyncUs,
    idleRssMb: med((t) => t.idleRssMb),
    oneP50Ms: med((t) => t.oneP50Ms),
    msgPerS: med((t) => t.msgPerS),
    p50Ms: med((t) => t.p50Ms),
    cpuUsPerMsg: med((t) => t.cpuUsPerMsg),
    kernelCpuUsPerMsg: med((t) => t.kernelCpuUsPerMsg),
    brokerCpuUsPerMsg: med((t) => t.brokerCpuUsPerMsg),
    benchCpuUsPerMsg: med((t) => t.benchCpuUsPerMsg),
    endRssMb: med((t) => t.endRssMb),
    endAnonMb: med((t) => t.endAnonMb),
    peakRssMb: med((t) => t.peakRssMb),
    idleAfterRssMb: med((t) => t.idleAfterRssMb),
    fsyncsPerMsg: med((t) => t.fsyncsPerMsg),
    arrived: '',
  };
}

function printMedians(trials: Trial[]): void {
  console.log('');
  console.log('medians:');
  console.log(
    COLUMNS.filter(([name]) => name !== 'arrived')
      .map(([name]) => name)
      .join(' | '),
  );
  for (const fsyncUs of fsyncModes)
    for (const { name } of contenders) {
      const summary = medianTrial(trials, name, fsyncUs);
      if (summary) console.log(row(summary).replace(/ \|\s*$/, ''));
    }
}

function printLatencyGoal(trials: Trial[], fsyncMs: number): void {
  console.log('');
  for (const fsyncUs of fsyncModes)
    for (const contender of contenders) {
      const summary = medianTrial(trials, contender.name, fsyncUs);
      if (!summary) continue;
      if (!contender.durable) {
        console.log(
          `${contender.name}, fsync ${fsyncUs} µs: 1-dev p50 = ${(summary.oneP50Ms * 1000).toFixed(0)} µs (no fsync)`,
        );
        continue;
      }
      const above = summary.oneP50Ms - fsyncMs - fsyncUs / 1000;
      console.log(
        `${contender.name}, fsync ${fsyncUs} µs: 1-dev p50 − (disk fsync + shim delay) = ${(above * 1000).toFixed(0)} µs (goal ≤ 100)`,
      );
    }
}

/** The figures issue 10 states relative to Paho's, with its goals; ratio = ours / Paho's. */
const BESIDE_PAHO: Array<[string, (t: Trial) => number, number, string]> = [
  ['CPU µs/msg', (t) => t.cpuUsPerMsg, 1, 'ratio ≤ 0.4 (stretch 0.33)'],
  ['of it kernel', (t) => t.kernelCpuUsPerMsg, 1, '(system calls)'],
  [`${devices}-dev msg/s`, (t) => t.msgPerS, 0, 'ratio ≥ 2'],
  ['1-dev p50 ms', (t) => t.oneP50Ms, 3, ''],
  ['idle RSS MB', (t) => t.idleRssMb, 1, ''],
  ['end RSS MB', (t) => t.endRssMb, 1, 'ours ≤ 64 MB'],
  ['peak RSS MB', (t) => t.peakRssMb, 1, ''],
  // Not the gateway's: on a small machine they share its cores, so they bound its msg/s.
  ['Mosquitto µs/msg', (t) => t.brokerCpuUsPerMsg, 1, '(Paho: a broker connection per device)'],
  ['bench µs/msg', (t) => t.benchCpuUsPerMsg, 1, '(the devices and the counting subscriber)'],
];

/** Ours (each build) beside Paho in the fast-disk mode, and the ratios the goals are stated in. */
function printBesidePaho(trials: Trial[]): void {
  const theirs = medianTrial(trials, 'paho', 0);
  if (!theirs) return;
  const ours = builds.flatMap(({ name }) => medianTrial(trials, name, 0) ?? []);
  const header = [
    'figure',
    ...ours.map((t) => t.build),
    'paho',
    ...ours.map((t) => `${t.build}/paho`),
    'goal',
  ];
  const widths = header.map((h, i) =>
    i === 0 ? Math.max(...BESIDE_PAHO.map(([label]) => label.length)) : Math.max(h.length, 8),
  );
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === 0 || i === cells.length - 1 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join(' | ');
  console.log('');
  console.log(
    'beside Paho, fsync 0 µs (medians; Paho is not durable: it never fsyncs, ours fsyncs every batch):',
  );
  console.log(line(header).trimEnd());
  for (const [label, get, digits, goal] of BESIDE_PAHO) {
    const figures = [...ours, theirs].map((t) => get(t).toFixed(digits));
    const ratios = ours.map((t) => (get(t) / get(theirs)).toFixed(2));
    console.log(line([label, ...figures, ...ratios, goal]).trimEnd());
  }
}

async function main(): Promise<void> {
  execFileSync('gcc', ['-O2', '-shared', '-fPIC', '-o', SHIM, SHIM_SOURCE, '-ldl']);
  cleanups.push(() => rmSync(SHIM, { force: true }));
  const mosquitto = await startMosquitto({
    extraConfig: `max_queued_messages 1000000\nmax_inflight_messages ${Number(values['broker-inflight'])}\n`,
  });
  cleanups.push(() => mosquitto.stop());
  const sub = await mqtt.connectAsync(mosquitto.url, {
    protocolVersion: 5,
    clientId: `hotpath-sub-${process.pid}`,
  });
  cleanups.push(() => sub.endAsync());
  let arrived = 0;
  sub.on('message', () => arrived++);
  for (const filter of new Set(contenders.map((c) => c.topicFilter)))
    await sub.subscribeAsync(filter, { qos: 1 });
  console.log(
    `node ${process.version}, ${rounds} rounds, ${seconds} s at ${devices} devices, payload ${SENSOR_PAYLOAD_BYTES} B, Mosquitto max_inflight_messages ${values['broker-inflight']}`,
  );
  if (values.paho !== undefined) {
    console.log(`paho: ${values.paho} (not durable: it never fsyncs; runs with fsync 0 only)`);
    if (!fsyncModes.includes(0)) console.log('paho: --fsync-us has no 0, so Paho does not run');
  }
  const fsyncMs = diskFsyncP50Ms();
  console.log(`this disk's fdatasync alone: p50 ${(fsyncMs * 1000).toFixed(0)} µs`);
  console.log(COLUMNS.map(([name]) => name).join(' | '));
  const trials = await runRounds({ url: mosquitto.url, pid: mosquitto.pid }, () => arrived);
  printMedians(trials);
  printLatencyGoal(trials, fsyncMs);
  if (fsyncModes.some((us) => us > 0))
    console.log(
      `limit with a slow fsync: ${devices} devices ÷ fsync time (e.g. 10 ms → ${devices * 100} msg/s)`,
    );
  printBesidePaho(trials);
}

try {
  await main();
} finally {
  await cleanup();
}
