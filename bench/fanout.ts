/**
 * Downlink fan-out: N simulated devices subscribed to one shared predefined topic, the cloud publishing
 * M QoS 1 messages to it through a local Mosquitto; how fast the gateway gets each one to every device.
 *
 *   npm run build && node --import tsx bench/fanout.ts [--devices 1000] [--messages 20] [--payload 32]
 *
 * The gateway runs compiled (dist/cli.js) as a child process, with `--predefined 1=bench/broadcast`.
 * Every device has its own UDP socket on 127.0.0.1, CONNECTs, SUBSCRIBEs to predefined id 1 at QoS 1
 * and acknowledges each PUBLISH with a PUBACK at once (callback-driven: no promise, timer or
 * allocation per message), so the gateway's one-exchange-in-flight window per device keeps moving.
 *
 * Two modes, each M messages: "one at a time" (the next is published once every device has the
 * previous one: the latency of a single broadcast) and "back to back" (all M published at once: the
 * throughput of the fan-out). Per mode: time from the broker publish until the first / the last device
 * has a message (p50 and max over the messages), delivered device-messages per second, the gateway's
 * CPU time (utime + stime from /proc) and RSS. Figures, not assertions: run on purpose, not in `npm test`.
 *
 * `--profile DIR` runs the gateway with --cpu-prof into DIR (written when it exits), as does
 * GATEWAY_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof".
 */
import dgram from 'node:dgram';
import os from 'node:os';
import { parseArgs } from 'node:util';
import mqtt, { type MqttClient } from 'mqtt';
import { encode } from '../src/codec/index.js';
import { startMosquitto, tempDir, type MosquittoHandle, type TempDir } from '../test/helpers/index.js';
import { spawnGateway, type GatewayProcess } from '../test/support/gateway-process.js';
import { cleanup, cleanups, cpuSeconds, machineCpuSeconds, percentile, rssMb } from './support.js';

const { values } = parseArgs({
  options: {
    devices: { type: 'string', default: '1000' },
    messages: { type: 'string', default: '20' },
    payload: { type: 'string', default: '32' },
    concurrency: { type: 'string', default: '100' },
    profile: { type: 'string' },
  },
});
const deviceCount = Number(values.devices);
const messageCount = Number(values.messages);
const payloadSize = Number(values.payload);
const concurrency = Number(values.concurrency);
const downlinkQueue = Math.max(100, messageCount);
// The devices read the message index from the 1-byte length form of PUBLISH (7-byte header).
if (!(payloadSize >= 4 && payloadSize <= 248)) throw new Error('--payload must be 4..248 bytes');
if (!(deviceCount >= 1 && messageCount >= 1 && concurrency >= 1)) throw new Error('bad --devices/--messages');

const HOST = '127.0.0.1';
const TOPIC = 'bench/broadcast';
const PREDEFINED_ID = 1;
const WARMUP = 2;
/**
 * A mode ends early, reporting what is missing, when no device has received anything for this long
 * (longer than the gateway's default T_retry of 10 s, so one round of resends can still arrive).
 */
const STALL_MS = 15_000;

/** Arrivals per message index, shared by all devices: typed arrays, written in place. */
class Tally {
  readonly count: Uint32Array;
  readonly first: Float64Array;
  readonly last: Float64Array;
  readonly publishedAt: Float64Array;
  /** Arrivals of any message (progress, for stall detection). */
  total = 0;
  /** Runs when message k has reached every device. */
  onComplete: ((k: number) => void) | undefined;

  constructor(
    capacity: number,
    private readonly devices: number,
  ) {
    this.count = new Uint32Array(capacity);
    this.first = new Float64Array(capacity);
    this.last = new Float64Array(capacity);
    this.publishedAt = new Float64Array(capacity);
  }

  arrived(k: number, now: number): void {
    if (k >= this.count.length) return;
    this.total++;
    const n = ++this.count[k]!;
    if (n === 1) this.first[k] = now;
    this.last[k] = now;
    if (n === this.devices) this.onComplete?.(k);
  }
}

/**
 * One device: its own socket, acknowledges PUBLISH (PUBACK) and REGISTER (REGACK) from one reused
 * buffer each. Reuse is safe: with one exchange in flight the gateway sends nothing new to this
 * device before it has read our answer.
 */
class Device {
  readonly socket = dgram.createSocket('udp4');
  private readonly puback = Buffer.from([7, 0x0d, 0, 0, 0, 0, 0]);
  private readonly regack = Buffer.from([7, 0x0b, 0, 0, 0, 0, 0]);
  /** Index of the next message this device has not seen (a DUP resend is not counted twice). */
  private next = 0;
  duplicates = 0;
  private pending:
    { bytes: Uint8Array; type: number; sentAt: number; resolve: (m: Buffer) => void } | undefined;

  constructor(
    private readonly port: number,
    readonly clientId: string,
    private readonly tally: Tally,
  ) {
    this.socket.on('message', (msg) => this.onMessage(msg));
  }

  private onMessage(msg: Buffer): void {
    const type = msg[1];
    if (type === 0x0c) {
      // PUBLISH: length, type, flags, topic id (2), msg id (2), data. PUBACK copies topic id + msg id.
      msg.copy(this.puback, 2, 3, 7);
      this.socket.send(this.puback, this.port, HOST);
      const k = msg.readUInt32BE(7);
      if (k >= this.next) {
        this.next = k + 1;
        this.tally.arrived(k, performance.now());
      } else this.duplicates++;
      return;
    }
    if (type === 0x0a) {
      // REGISTER (not expected for a predefined topic): accept it.
      msg.copy(this.regack, 2, 2, 6);
      this.socket.send(this.regack, this.port, HOST);
      return;
    }
    const pending = this.pending;
    if (pending && type === pending.type) {
      this.pending = undefined;
      pending.resolve(msg);
    }
  }

  private request(bytes: Uint8Array, type: number): Promise<Buffer> {
    return new Promise((resolve) => {
      this.pending = { bytes, type, sentAt: performance.now(), resolve };
      this.socket.send(bytes, this.port, HOST);
    });
  }

  /** Set-up only (not per message): a lost datagram is sent again after a second. */
  resendIfStalled(now: number): boolean {
    if (!this.pending || now - this.pending.sentAt < 1000) return false;
    this.pending.sentAt = now;
    this.socket.send(this.pending.bytes, this.port, HOST);
    return true;
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.socket.bind(0, HOST, resolve));
    const connack = await this.request(
      encode({
        type: 'CONNECT',
        will: false,
        cleanSession: true,
        protocolId: 1,
        duration: 3600, // no PINGREQ needed during the run
        clientId: this.clientId,
      }),
      0x05,
    );
    if (connack[2] !== 0) throw new Error(`${this.clientId}: CONNACK return code ${connack[2]}`);
    const suback = await this.request(
      encode({
        type: 'SUBSCRIBE',
        dup: false,
        qos: 1,
        msgId: 1,
        topicIdType: 'predefined',
        topicId: PREDEFINED_ID,
      }),
      0x13,
    );
    if (suback[7] !== 0) throw new Error(`${this.clientId}: SUBACK return code ${suback[7]}`);
  }

  close(): void {
    this.socket.close();
  }
}

async function inLanes<T>(items: T[], lanes: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(lanes, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

interface ModeResult {
  name: string;
  indices: number[];
  gatewayCpu: number;
  mosquittoCpu: number;
  benchCpu: number;
  /** Everything else on the machine meanwhile (other people's tests): how noisy the figures are. */
  otherCpu: number;
  rss: number;
  peak: number;
  wallMs: number;
}

async function main(): Promise<void> {
  const mosquitto: MosquittoHandle = await startMosquitto({
    extraConfig: 'max_queued_messages 1000000\n',
  });
  cleanups.push(() => mosquitto.stop());
  const data: TempDir = tempDir('mqttsn-bench-fanout-');
  cleanups.push(() => data.cleanup());
  const nodeArgs = (process.env.GATEWAY_NODE_ARGS ?? '').split(' ').filter(Boolean);
  if (values.profile) nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${values.profile}`);
  const gw: GatewayProcess = await spawnGateway(
    [
      '--broker',
      mosquitto.url,
      '--data-dir',
      data.path,
      '--log-level',
      'warn',
      '--max-clients',
      String(deviceCount + 100),
      // Every simulated device speaks from 127.0.0.1: the per-address bound would refuse all but 256.
      '--max-sessions-per-address',
      String(deviceCount + 100),
      '--predefined',
      `${PREDEFINED_ID}=${TOPIC}`,
      // Back to back, each device's queue holds all M at once; the default (100) would drop the oldest.
      '--downlink-queue',
      String(downlinkQueue),
    ],
    { env: { MQTTSN_BRIDGE_LOG_LEVEL: 'warn' }, nodeArgs, compiled: true },
  );
  cleanups.push(async () => {
    await gw.signal('SIGTERM');
  });

  const capacity = WARMUP * 5 + 2 * messageCount;
  const tally = new Tally(capacity, deviceCount);
  let nextIndex = 0;
  const devices = Array.from({ length: deviceCount }, (_, i) => new Device(gw.udpPort, `fan-${i}`, tally));
  cleanups.push(() => devices.forEach((d) => d.close()));
  const publisher: MqttClient = await mqtt.connectAsync(mosquitto.url, {
    clientId: `bench-fanout-pub-${process.pid}`,
    protocolVersion: 5,
    reconnectPeriod: 0,
  });
  cleanups.push(() => publisher.endAsync());

  const idleRss = rssMb(gw.pid, 'VmRSS');
  let resends = 0;
  const watchdog = setInterval(() => {
    const now = performance.now();
    for (const d of devices) if (d.resendIfStalled(now)) resends++;
  }, 250);
  const setupStarted = performance.now();
  await inLanes(devices, concurrency, (d) => d.start());
  const setupMs = performance.now() - setupStarted;
  clearInterval(watchdog);

  // Completion of one message at every device, or of a whole set.
  const waiters = new Map<number, () => void>();
  tally.onComplete = (k) => waiters.get(k)?.();
  const allArrived = (indices: number[], stallMs = STALL_MS): Promise<boolean> =>
    new Promise((resolve) => {
      let left = indices.length;
      let seen = tally.total;
      let quietSince = performance.now();
      const timer = setInterval(() => {
        const now = performance.now();
        if (tally.total !== seen) {
          seen = tally.total;
          quietSince = now;
        } else if (now - quietSince >= stallMs) {
          clearInterval(timer);
          for (const k of indices) waiters.delete(k);
          resolve(false);
        }
      }, 250);
      for (const k of indices) {
        waiters.set(k, () => {
          waiters.delete(k);
          if (--left === 0) {
            clearInterval(timer);
            resolve(true);
          }
        });
      }
    });
  const publish = (k: number): void => {
    const payload = Buffer.alloc(payloadSize, 0x61);
    payload.writeUInt32BE(k, 0);
    tally.publishedAt[k] = performance.now();
    publisher.publish(TOPIC, payload, { qos: 1 });
  };

  // Warm-up (JIT, the broker subscription in place): until one message reaches every device.
  let warm = false;
  for (let attempt = 0; attempt < WARMUP * 5 && !warm; attempt++) {
    const k = nextIndex++;
    const done = allArrived([k], 5000);
    publish(k);
    warm = (await done) && attempt + 1 >= WARMUP;
  }
  if (!warm) throw new Error('warm-up messages did not reach every device');
  const setupRss = rssMb(gw.pid, 'VmRSS');

  const runMode = async (name: string, backToBack: boolean): Promise<ModeResult> => {
    const indices = Array.from({ length: messageCount }, () => nextIndex++);
    const cpu0 = cpuSeconds(gw.pid);
    const mq0 = cpuSeconds(mosquitto.pid);
    const own0 = process.cpuUsage();
    const all0 = machineCpuSeconds();
    const started = performance.now();
    if (backToBack) {
      const done = allArrived(indices);
      for (const k of indices) publish(k);
      await done;
    } else {
      for (const k of indices) {
        const done = allArrived([k]);
        publish(k);
        if (!(await done)) break;
      }
    }
    const wallMs = performance.now() - started;
    const own = process.cpuUsage(own0);
    const gatewayCpu = cpuSeconds(gw.pid) - cpu0;
    const mosquittoCpu = cpuSeconds(mosquitto.pid) - mq0;
    const benchCpu = (own.user + own.system) / 1e6;
    return {
      name,
      indices,
      gatewayCpu,
      mosquittoCpu,
      benchCpu,
      otherCpu: Math.max(0, machineCpuSeconds() - all0 - gatewayCpu - mosquittoCpu - benchCpu),
      rss: rssMb(gw.pid, 'VmRSS'),
      peak: rssMb(gw.pid, 'VmHWM'),
      wallMs,
    };
  };

  const results = [await runMode('one at a time', false), await runMode('back to back', true)];
  const duplicates = devices.reduce((n, d) => n + d.duplicates, 0);

  console.log(
    `node ${process.version}, ${os.platform()} ${os.arch()}, ${os.cpus().length} CPUs, load avg ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  console.log(
    `${deviceCount} devices (one UDP socket each, 127.0.0.1), ${messageCount} messages per mode, QoS 1, ` +
      `payload ${payloadSize} B, predefined ${PREDEFINED_ID}=${TOPIC}, --downlink-queue ${downlinkQueue}, ` +
      `gateway pid ${gw.pid} (dist/cli.js)`,
  );
  console.log(
    `set-up: ${deviceCount} CONNECT + SUBSCRIBE in ${(setupMs / 1000).toFixed(2)} s ` +
      `(${Math.round(deviceCount / (setupMs / 1000))} devices/s, ${resends} resends), ` +
      `gateway RSS idle ${idleRss.toFixed(1)} MB -> ${setupRss.toFixed(1)} MB with ${deviceCount} devices`,
  );
  console.log('');
  console.log(
    'mode          | first device p50 ms | all devices p50 ms | max ms | device-msgs/s | delivered      | gw CPU s | gw CPU µs/msg | gw CPU % | RSS MB (peak)',
  );
  for (const r of results) {
    const all = r.indices.map((k) => tally.last[k]! - tally.publishedAt[k]!).sort((a, b) => a - b);
    const first = r.indices.map((k) => tally.first[k]! - tally.publishedAt[k]!).sort((a, b) => a - b);
    const delivered = r.indices.reduce((n, k) => n + tally.count[k]!, 0);
    const from = Math.min(...r.indices.map((k) => tally.publishedAt[k]!));
    const to = Math.max(...r.indices.map((k) => tally.last[k]!));
    const rate = delivered / ((to - from) / 1000);
    console.log(
      [
        r.name.padEnd(13),
        percentile(first, 50).toFixed(1).padStart(19),
        percentile(all, 50).toFixed(1).padStart(18),
        all[all.length - 1]!.toFixed(1).padStart(6),
        String(Math.round(rate)).padStart(13),
        `${delivered}/${deviceCount * messageCount}`.padStart(14),
        r.gatewayCpu.toFixed(2).padStart(8),
        ((r.gatewayCpu * 1e6) / delivered).toFixed(1).padStart(13),
        String(Math.round((r.gatewayCpu / (r.wallMs / 1000)) * 100)).padStart(8),
        `${r.rss.toFixed(0)} (${r.peak.toFixed(0)})`,
      ].join(' | '),
    );
  }
  console.log('');
  for (const r of results)
    console.log(
      `${r.name}: wall ${(r.wallMs / 1000).toFixed(2)} s; CPU s gateway ${r.gatewayCpu.toFixed(2)}, ` +
        `mosquitto ${r.mosquittoCpu.toFixed(2)}, this simulator ${r.benchCpu.toFixed(2)}, ` +
        `other processes ${r.otherCpu.toFixed(2)} (of ${((os.cpus().length * r.wallMs) / 1000).toFixed(2)} available)`,
    );
  console.log(`duplicate PUBLISH (DUP resends seen by devices): ${duplicates}`);
}

try {
  await main();
} finally {
  await cleanup();
}
