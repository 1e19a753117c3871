/**
 * Memory with many sleeping clients: S devices CONNECT (CleanSession=0), SUBSCRIBE to `cmd/#` at QoS 1
 * and go to sleep (DISCONNECT with a duration); the cloud then parks one QoS 1 message for each of K of
 * them (stored durably in LevelDB until they wake); two samples of W of those wake up to collect it.
 *
 *   npm run build && node --import tsx bench/sleepers.ts [--clients 10000] [--parked 1000] [--wake 100]
 *     [--sockets N] [--sleep 3600] [--heap-snapshots DIR] [--profile DIR]
 *
 * The gateway runs compiled (dist/cli.js) as a child process against a local Mosquitto, with
 * `--metrics` on a free local port; its memory comes from /metrics (process_resident_memory_bytes,
 * nodejs_heap_size_used_bytes) before any client, with all S asleep, and with K messages parked.
 *
 * By default every client has its own UDP socket on 127.0.0.1 (as real devices have their own
 * address), which needs `ulimit -n` above S. `--sockets N` (N < S) reuses a pool of N sockets instead:
 * each socket is one lane that takes its clients one after the other, CONNECT → SUBACK → DISCONNECT
 * finished before the next client id speaks from the same address (the gateway keys sessions by client
 * id; a CONNECT from an address that belonged to a sleeping client only unbinds that address).
 *
 * Waking (§6.14): PINGREQ(clientId) from the client's socket; the gateway sends REGISTER (the wildcard
 * subscription has no topic id yet), then the PUBLISH, each acknowledged, then PINGRESP. Timed from
 * PINGREQ to PINGRESP, one client at a time, then for another sample all at once.
 *
 * `--heap-snapshots DIR` also writes a gateway heap snapshot at each stage (SIGUSR2; V8 collects
 * garbage first) and reports the heap used right after it: the live heap, without the garbage that
 * `heap used` otherwise includes. `--profile DIR` writes a gateway CPU profile (--cpu-prof) on exit.
 * Figures, not assertions: run on purpose, not in `npm test`.
 */
import { execFileSync } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdirSync, readdirSync } from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import mqtt, { type MqttClient } from 'mqtt';
import { encode } from '../src/codec/index.js';
import { freePort, startMosquitto, tempDir, type MosquittoHandle } from '../test/helpers/index.js';
import { spawnGateway, type GatewayProcess } from '../test/support/gateway-process.js';
import { cleanup, cleanups, cpuSeconds, machineCpuSeconds, percentile, rssMb } from './support.js';

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '10000' },
    sockets: { type: 'string' },
    concurrency: { type: 'string', default: '200' },
    parked: { type: 'string', default: '1000' },
    wake: { type: 'string', default: '100' },
    sleep: { type: 'string', default: '3600' },
    profile: { type: 'string' },
    'heap-snapshots': { type: 'string' },
  },
});
const snapshotDir = values['heap-snapshots'];
const clientCount = Number(values.clients);
const socketCount = Math.min(clientCount, Number(values.sockets ?? clientCount));
const pooled = socketCount < clientCount;
// A pool socket is a lane: its clients take turns. Own sockets: `concurrency` clients at a time.
const lanes = pooled ? socketCount : Math.min(clientCount, Number(values.concurrency));
const parkedCount = Math.min(clientCount, Number(values.parked));
const wakeCount = Math.min(parkedCount, Number(values.wake));
const sleepSeconds = Number(values.sleep);
if (!(clientCount >= 1 && socketCount >= 1 && lanes >= 1 && sleepSeconds >= 1))
  throw new Error('bad --clients/--sockets/--concurrency/--sleep');

const HOST = '127.0.0.1';
const ID_WIDTH = String(clientCount - 1).length;
/** Client ids sort in creation order, so the status API's first rows are the parked clients. */
const idOf = (i: number): string => `s${String(i).padStart(ID_WIDTH, '0')}`;
const SETTLE_MS = 1500;

const T = { CONNACK: 0x05, REGISTER: 0x0a, PUBLISH: 0x0c, SUBACK: 0x13, PINGRESP: 0x17, DISCONNECT: 0x18 };

/**
 * One UDP socket: request/answer with a resend after a second (set-up traffic, a promise per step is
 * fine here), and a device's answers to what the gateway sends: REGACK to REGISTER, PUBACK to PUBLISH.
 */
class Endpoint {
  readonly socket = dgram.createSocket('udp4');
  private pending:
    { bytes: Uint8Array; type: number; sentAt: number; resolve: (m: Buffer) => void } | undefined;
  /** Payloads of PUBLISHes received (acknowledged), for whoever is using the socket now. */
  onPublish: ((data: Buffer) => void) | undefined;
  resends = 0;

  constructor(private readonly port: number) {
    this.socket.on('message', (msg) => this.onMessage(msg));
  }

  bind(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.socket.once('error', reject);
      this.socket.bind(0, HOST, () => {
        this.socket.off('error', reject);
        resolve();
      });
    });
  }

  private onMessage(msg: Buffer): void {
    const type = msg[1];
    if (type === T.REGISTER) {
      // REGACK: topic id and msg id of the REGISTER, accepted.
      this.socket.send(Buffer.from([7, 0x0b, msg[2]!, msg[3]!, msg[4]!, msg[5]!, 0]), this.port, HOST);
      return;
    }
    if (type === T.PUBLISH) {
      this.socket.send(Buffer.from([7, 0x0d, msg[3]!, msg[4]!, msg[5]!, msg[6]!, 0]), this.port, HOST);
      this.onPublish?.(msg.subarray(7));
      return;
    }
    const pending = this.pending;
    if (pending && type === pending.type) {
      this.pending = undefined;
      pending.resolve(msg);
    }
  }

  request(bytes: Uint8Array, type: number): Promise<Buffer> {
    return new Promise((resolve) => {
      this.pending = { bytes, type, sentAt: performance.now(), resolve };
      this.socket.send(bytes, this.port, HOST);
    });
  }

  resendIfStalled(now: number, afterMs: number): void {
    if (!this.pending || now - this.pending.sentAt < afterMs) return;
    this.pending.sentAt = now;
    this.resends++;
    this.socket.send(this.pending.bytes, this.port, HOST);
  }

  close(): void {
    this.socket.close();
  }
}

/** CONNECT (CleanSession=0) → SUBSCRIBE cmd/# QoS 1 → DISCONNECT(sleep): the client is asleep. */
async function putToSleep(ep: Endpoint, clientId: string): Promise<void> {
  const connack = await ep.request(
    encode({ type: 'CONNECT', will: false, cleanSession: false, protocolId: 1, duration: 60, clientId }),
    T.CONNACK,
  );
  if (connack[2] !== 0) throw new Error(`${clientId}: CONNACK return code ${connack[2]}`);
  const suback = await ep.request(
    encode({ type: 'SUBSCRIBE', dup: false, qos: 1, msgId: 1, topicIdType: 'normal', topicName: 'cmd/#' }),
    T.SUBACK,
  );
  if (suback[7] !== 0) throw new Error(`${clientId}: SUBACK return code ${suback[7]}`);
  await ep.request(encode({ type: 'DISCONNECT', duration: sleepSeconds }), T.DISCONNECT);
}

/** The gateway's open file limit matters less than ours: one socket per client needs an fd each. */
function openFileLimit(): number {
  try {
    const out = execFileSync('/bin/sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim();
    return out === 'unlimited' ? Infinity : Number(out);
  } catch {
    return NaN;
  }
}

interface Memory {
  rss: number;
  heapUsed: number;
  /** Heap used right after a heap snapshot (a full GC): --heap-snapshots only. */
  heapLive: number;
  heapTotal: number;
  external: number;
  asleep: number;
}

async function metrics(base: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${base}metrics`)).text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line === '') continue;
    const space = line.lastIndexOf(' ');
    out.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return out;
}

/**
 * Three scrapes half a second apart: RSS of the last, the lowest heap used (least garbage). With
 * --heap-snapshots, then a snapshot (the gateway is blocked while V8 writes it; the next scrape waits)
 * and the heap used after it.
 */
async function memory(base: string, gw: GatewayProcess, label: string): Promise<Memory> {
  let heapUsed = Infinity;
  let m = new Map<string, number>();
  for (let i = 0; i < 3; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, 500));
    m = await metrics(base);
    heapUsed = Math.min(heapUsed, m.get('nodejs_heap_size_used_bytes') ?? NaN);
  }
  let heapLive = NaN;
  if (snapshotDir !== undefined && gw.pid !== undefined) {
    const count = readdirSync(snapshotDir).length;
    process.kill(gw.pid, 'SIGUSR2');
    await sleep(300);
    heapLive = (await metrics(base)).get('nodejs_heap_size_used_bytes') ?? NaN;
    const files = readdirSync(snapshotDir).filter((f) => f.endsWith('.heapsnapshot'));
    if (files.length <= count) throw new Error(`no heap snapshot written for "${label}"`);
    console.error(`heap snapshot "${label}": ${snapshotDir}/${files.sort().at(-1)}`);
  }
  return {
    rss: m.get('process_resident_memory_bytes') ?? NaN,
    heapUsed,
    heapLive,
    heapTotal: m.get('nodejs_heap_size_total_bytes') ?? NaN,
    external: m.get('nodejs_external_memory_bytes') ?? NaN,
    asleep: m.get('mqttsn_devices{state="asleep"}') ?? NaN,
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** True when `promise` settles within `ms` (its timer cleared either way), false otherwise. */
async function withTimeout(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** CPU seconds of the gateway, and of processes other than the gateway, Mosquitto and this one. */
function cpuMeter(gw: GatewayProcess, mosquitto: MosquittoHandle): () => { gateway: number; others: number } {
  const gw0 = cpuSeconds(gw.pid);
  const mq0 = cpuSeconds(mosquitto.pid);
  const own0 = process.cpuUsage();
  const all0 = machineCpuSeconds();
  return () => {
    const gateway = cpuSeconds(gw.pid) - gw0;
    const own = process.cpuUsage(own0);
    const others =
      machineCpuSeconds() -
      all0 -
      gateway -
      (cpuSeconds(mosquitto.pid) - mq0) -
      (own.user + own.system) / 1e6;
    return { gateway, others: Math.max(0, others) };
  };
}

async function main(): Promise<void> {
  const limit = openFileLimit();
  if (!pooled && limit < clientCount + 256) {
    throw new Error(
      `one UDP socket per client needs ${clientCount + 256} open files, but ulimit -n is ${limit}. ` +
        `Raise it (e.g. \`ulimit -n ${clientCount + 1024}\` in this shell) or reuse a pool: --sockets 1000`,
    );
  }

  const mosquitto: MosquittoHandle = await startMosquitto({ extraConfig: 'max_queued_messages 1000000\n' });
  cleanups.push(() => mosquitto.stop());
  const data = tempDir('mqttsn-bench-sleepers-');
  cleanups.push(() => data.cleanup());
  const metricsPort = await freePort();
  const nodeArgs = (process.env.GATEWAY_NODE_ARGS ?? '').split(' ').filter(Boolean);
  if (values.profile) nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${values.profile}`);
  if (snapshotDir !== undefined) {
    mkdirSync(snapshotDir, { recursive: true });
    nodeArgs.push('--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${snapshotDir}`);
  }
  const gw: GatewayProcess = await spawnGateway(
    [
      '--broker',
      mosquitto.url,
      '--data-dir',
      data.path,
      '--log-level',
      'warn',
      '--max-clients',
      String(clientCount + 100),
      // Every simulated device speaks from 127.0.0.1: the per-address bound would refuse all but 256.
      '--max-sessions-per-address',
      String(clientCount + 100),
      '--metrics',
      `${HOST}:${metricsPort}`,
    ],
    { env: { MQTTSN_BRIDGE_LOG_LEVEL: 'warn' }, nodeArgs, compiled: true },
  );
  cleanups.push(async () => {
    await gw.signal('SIGTERM');
  });
  const base = `http://${HOST}:${metricsPort}/`;

  const endpoints: Endpoint[] = [];
  cleanups.push(() => endpoints.forEach((e) => e.close()));
  const publisher: MqttClient = await mqtt.connectAsync(mosquitto.url, {
    clientId: `bench-sleepers-pub-${process.pid}`,
    protocolVersion: 5,
    reconnectPeriod: 0,
  });
  cleanups.push(() => publisher.endAsync());

  await sleep(SETTLE_MS);
  const before = await memory(base, gw, 'before any client');

  // 1. S clients connect, subscribe and fall asleep, `lanes` at a time.
  const endpointOf: Endpoint[] = new Array(clientCount);
  const watchdog = setInterval(() => {
    const now = performance.now();
    for (const ep of endpoints) ep.resendIfStalled(now, 1000);
  }, 250);
  const sleepCpu = cpuMeter(gw, mosquitto);
  const started = performance.now();
  await Promise.all(
    Array.from({ length: lanes }, async (_, lane) => {
      let shared: Endpoint | undefined;
      for (let i = lane; i < clientCount; i += lanes) {
        let ep = shared;
        if (!ep) {
          ep = new Endpoint(gw.udpPort);
          endpoints.push(ep);
          await ep.bind();
          if (pooled) shared = ep;
        }
        endpointOf[i] = ep;
        await putToSleep(ep, idOf(i));
      }
    }),
  );
  const sleepMs = performance.now() - started;
  const sleepCpuUsed = sleepCpu();
  clearInterval(watchdog);
  const setupResends = endpoints.reduce((n, e) => n + e.resends, 0);
  await sleep(SETTLE_MS);
  const asleep = await memory(base, gw, 'all asleep');
  if (asleep.asleep !== clientCount)
    throw new Error(`expected ${clientCount} asleep, /metrics says ${asleep.asleep}`);

  // 2. A connected sentinel: a message to it after the K parked ones arrives once they are all stored
  //    (the gateway takes broker messages one at a time, in order). Its own subscription is the last,
  //    so once a probe reaches it every sleeper's broker subscription is in place too.
  const sentinel = new Endpoint(gw.udpPort);
  endpoints.push(sentinel);
  await sentinel.bind();
  await sentinel.request(
    encode({
      type: 'CONNECT',
      will: false,
      cleanSession: true,
      protocolId: 1,
      duration: 600,
      clientId: 'sentinel',
    }),
    T.CONNACK,
  );
  await sentinel.request(
    encode({ type: 'SUBSCRIBE', dup: false, qos: 1, msgId: 1, topicIdType: 'normal', topicName: 'cmd/#' }),
    T.SUBACK,
  );
  const sentinelGot = (text: string): Promise<void> =>
    new Promise((resolve) => {
      sentinel.onPublish = (d) => {
        if (d.toString() === text) resolve();
      };
    });
  for (let attempt = 0; ; attempt++) {
    if (attempt === 50) throw new Error('the sentinel never received its probe');
    const got = sentinelGot(`probe ${attempt}`);
    publisher.publish('mqttsn/sentinel/cmd/probe', `probe ${attempt}`, { qos: 1 });
    if (await withTimeout(got, 200)) break;
  }

  // 3. One QoS 1 message for each of the first K clients, parked durably until they wake.
  const parkCpu = cpuMeter(gw, mosquitto);
  const parkStarted = performance.now();
  const parked = sentinelGot('all parked');
  for (let i = 0; i < parkedCount; i++)
    publisher.publish(`mqttsn/${idOf(i)}/cmd/set`, `command for ${idOf(i)}`, { qos: 1 });
  publisher.publish('mqttsn/sentinel/cmd/done', 'all parked', { qos: 1 });
  await parked;
  const parkMs = performance.now() - parkStarted;
  const parkCpuUsed = parkCpu();
  const status = (await (await fetch(`${base}api/status`)).json()) as {
    devices: { total: number; shown: Array<{ clientId: string; state: string; queued: number }> };
  };
  const shownParked = status.devices.shown.filter(
    (d) => /^s\d+$/.test(d.clientId) && Number(d.clientId.slice(1)) < parkedCount,
  );
  const shownQueued = shownParked.reduce((n, d) => n + d.queued, 0);
  await sleep(SETTLE_MS);
  const withParked = await memory(base, gw, 'parked');

  // 4. Wake parked clients: a sample one at a time, then another sample all at once. Each wakes from
  //    its own socket; with a pool, the burst uses a fresh socket per client (a new address, which the
  //    gateway rebinds to), since clients of one pool socket cannot wait for their answers together.
  const wake = async (ep: Endpoint, i: number): Promise<number | undefined> => {
    let data = '';
    ep.onPublish = (d) => (data = d.toString());
    const t0 = performance.now();
    const answered = await withTimeout(
      ep.request(encode({ type: 'PINGREQ', clientId: idOf(i) }), T.PINGRESP),
      5000,
    );
    const ms = performance.now() - t0;
    ep.onPublish = undefined;
    return answered && data === `command for ${idOf(i)}` ? ms : undefined;
  };
  const sampleOf = (offset: number): number[] =>
    Array.from({ length: wakeCount }, (_, w) => Math.floor((w * parkedCount) / wakeCount) + offset).filter(
      (i) => i < parkedCount,
    );
  const oneByOne: number[] = [];
  let wakeFailures = 0;
  for (const i of sampleOf(0)) {
    const ms = await wake(endpointOf[i]!, i);
    if (ms === undefined) wakeFailures++;
    else oneByOne.push(ms);
  }
  const burstSample = parkedCount >= 2 * wakeCount ? sampleOf(1) : [];
  const burstEndpoints = pooled
    ? await Promise.all(
        burstSample.map(async () => {
          const ep = new Endpoint(gw.udpPort);
          endpoints.push(ep);
          await ep.bind();
          return ep;
        }),
      )
    : burstSample.map((i) => endpointOf[i]!);
  const burstStarted = performance.now();
  const burstResults = await Promise.all(burstSample.map((i, n) => wake(burstEndpoints[n]!, i)));
  const burstMs = performance.now() - burstStarted;
  const burst = burstResults.filter((ms): ms is number => ms !== undefined);
  wakeFailures += burstResults.length - burst.length;
  oneByOne.sort((a, b) => a - b);
  burst.sort((a, b) => a - b);
  const afterWake = await metrics(base);

  const cpuText = (used: { gateway: number; others: number }, ms: number): string =>
    `gateway CPU ${used.gateway.toFixed(2)} s, other processes ${used.others.toFixed(2)} s ` +
    `of ${((os.cpus().length * ms) / 1000).toFixed(2)} s`;
  const mb = (bytes: number): string => (bytes / 1048576).toFixed(1);
  const perItem = (a: number, b: number, n: number): string => `${((b - a) / n / 1024).toFixed(2)} KB`;
  console.log(
    `node ${process.version}, ${os.platform()} ${os.arch()}, ${os.cpus().length} CPUs, load avg ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  console.log(
    `${clientCount} sleeping clients (CleanSession=0, SUBSCRIBE cmd/# QoS 1, DISCONNECT duration ${sleepSeconds} s), ` +
      (pooled
        ? `${socketCount} pooled UDP sockets (one lane each)`
        : `one UDP socket each (${lanes} at a time, ulimit -n ${limit})`) +
      `, ${parkedCount} parked QoS 1 messages, ${wakeCount} + ${wakeCount} woken; gateway pid ${gw.pid} (dist/cli.js), 127.0.0.1`,
  );
  console.log('');
  console.log(
    `connect + subscribe + sleep: ${clientCount} clients in ${(sleepMs / 1000).toFixed(2)} s ` +
      `(${Math.round(clientCount / (sleepMs / 1000))} clients/s, ${setupResends} resends); ` +
      cpuText(sleepCpuUsed, sleepMs),
  );
  console.log(
    `park ${parkedCount} QoS 1 messages (broker publish → stored for the sleeper): ${(parkMs / 1000).toFixed(2)} s ` +
      `(${Math.round(parkedCount / (parkMs / 1000))} msgs/s); ${cpuText(parkCpuUsed, parkMs)}; ` +
      `status API: ${shownParked.length} of them shown, ${shownQueued} queued`,
  );
  const wakeLine = (label: string, times: number[], extra = ''): void =>
    console.log(
      `wake ${label}: p50 ${percentile(times, 50).toFixed(2)} ms, p99 ${percentile(times, 99).toFixed(2)} ms, ` +
        `max ${(times[times.length - 1] ?? NaN).toFixed(2)} ms (${times.length} clients${extra})`,
    );
  console.log('wake = PINGREQ(clientId) → REGISTER/REGACK → PUBLISH/PUBACK → PINGRESP, timed to PINGRESP:');
  wakeLine('one at a time', oneByOne);
  if (burst.length > 0)
    wakeLine(
      'all at once  ',
      burst,
      `, all done in ${burstMs.toFixed(1)} ms${pooled ? ', fresh sockets' : ''}`,
    );
  if (wakeFailures > 0) console.log(`wake failures (no PINGRESP within 5 s, or no message): ${wakeFailures}`);
  console.log('');
  const live = snapshotDir !== undefined;
  console.log(
    'gateway memory                 | RSS MB | heap used MB | heap total MB | external MB | Δ RSS          | Δ heap used' +
      (live ? '    | live heap MB | Δ live heap' : ''),
  );
  const row = (label: string, m: Memory, from?: Memory, n?: number, unit?: string): void =>
    console.log(
      [
        label.padEnd(30),
        mb(m.rss).padStart(6),
        mb(m.heapUsed).padStart(12),
        mb(m.heapTotal).padStart(13),
        mb(m.external).padStart(11),
        (from && n ? `${perItem(from.rss, m.rss, n)}/${unit}` : '').padEnd(14),
        (from && n ? `${perItem(from.heapUsed, m.heapUsed, n)}/${unit}` : '').padEnd(14),
        ...(live
          ? [mb(m.heapLive).padStart(12), from && n ? `${perItem(from.heapLive, m.heapLive, n)}/${unit}` : '']
          : []),
      ]
        .join(' | ')
        .trimEnd(),
    );
  row('before any client', before);
  row(`${clientCount} asleep`, asleep, before, clientCount, 'client');
  row(`+ ${parkedCount} messages parked`, withParked, asleep, parkedCount, 'msg');
  if (!live)
    console.log(
      'heap used includes garbage not yet collected, so its Δ is rough; --heap-snapshots DIR gives the live heap.',
    );
  if (live)
    console.log(
      'note: with --heap-snapshots, RSS after the first snapshot includes what writing it took; ' +
        'take RSS from a run without it. "live heap" is the heap used right after the snapshot’s full GC.',
    );
  console.log(
    `after waking ${oneByOne.length + burst.length}: RSS ${mb(afterWake.get('process_resident_memory_bytes') ?? NaN)} MB; ` +
      `gateway peak RSS (VmHWM) ${rssMb(gw.pid, 'VmHWM').toFixed(1)} MB; this simulator RSS ${mb(process.memoryUsage().rss)} MB`,
  );
}

try {
  await main();
} finally {
  await cleanup();
}
