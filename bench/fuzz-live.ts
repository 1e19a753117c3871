/**
 * Live fuzz of the running gateway (issue 8, "Must show"): the real gateway process against a Mosquitto
 * child process, with well-behaved QoS 1 devices publishing throughout, while hostile datagrams arrive
 * from many source ports on 127.0.0.1: random bytes, valid packets of all 28 types (in whatever state
 * the gateway is), mutated ones, and raw unsanitised strings in every string field.
 *
 *   npm run fuzz:live -- [--datagrams 1000000] [--seed N] [--max-seconds 900] [--backlog 2000]
 *
 * --backlog 0 floods as fast as the loopback takes datagrams (the kernel then drops most of them before
 * the gateway reads them); the default keeps at most 2,000 in the gateway's socket buffer, so nearly all
 * are processed.
 *
 * At the end it checks and prints: every message the good devices had acknowledged arrived at a
 * Mosquitto subscriber, the gateway never crashed, RSS before / after / peak, and the log lines it
 * wrote. Exits non-zero when a check fails. Everything stays on 127.0.0.1.
 */
import dgram, { type Socket } from 'node:dgram';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { encode } from '../src/codec/index.js';
import type { Packet, PlainPacket } from '../src/codec/types.js';
import {
  collect,
  freePort,
  MqttSnTestClient,
  sleep,
  startMosquitto,
  tempDir,
  type Collector,
} from '../test/helpers/index.js';
import { spawnGateway, type GatewayProcess } from '../test/support/gateway-process.js';
import { cleanup, cleanups, rssMb } from './support.js';
import { prng } from '../test/helpers/prng.js';

export interface FuzzOptions {
  datagrams: number;
  seed?: number;
  /** Good QoS 1 devices publishing throughout. */
  devices?: number;
  /** Source sockets sending at once; one is replaced by a fresh port every `rotateEvery` datagrams. */
  senders?: number;
  rotateEvery?: number;
  /** Stop sending after this long whatever the count (the loop is bounded in time as well). */
  maxSeconds?: number;
  /**
   * Flow control (default on): keep at most this many datagrams sent but not yet received by the gateway
   * (its mqttsn_datagrams_received_total, polled), so the flood is processed rather than dropped by the
   * kernel's socket buffer. 0: no flow control, as fast as the loopback takes them.
   */
  backlog?: number;
  /** Progress lines (default: none). */
  progress?: (line: string) => void;
}

export interface FuzzResult {
  ok: boolean;
  failures: string[];
  datagramsSent: number;
  sendErrors: number;
  sourcePorts: number;
  seconds: number;
  acked: number;
  arrived: number;
  missing: string[];
  crashed: boolean;
  rssMb: { before: number; after: number; peak: number };
  logLines: number;
  warnLines: number;
  /** Log lines by message. */
  logKinds: Record<string, number>;
  /** From the gateway's /metrics at the end. */
  gateway: { datagramsReceived: number; malformed: number; errors: number };
}

export { prng };

/** Byte sequences no broker string may hold, and a few that MQTT treats specially. */
const HOSTILE_BYTES: number[][] = [
  [0x00],
  [0x09],
  [0x0a],
  [0x1f],
  [0x7f],
  [0xc2, 0x80], // U+0080 (C1)
  [0xc2, 0x9f], // U+009F (C1)
  [0xef, 0xb7, 0x90], // U+FDD0
  [0xef, 0xbf, 0xbe], // U+FFFE
  [0xef, 0xbf, 0xbf], // U+FFFF
  [0xf0, 0x9f, 0xbf, 0xbe], // U+1FFFE
  [0xc0, 0xaf], // overlong '/'
  [0xe0, 0x80, 0xaf], // overlong '/'
  [0xed, 0xa0, 0x80], // encoded surrogate
  [0xf4, 0x90, 0x80, 0x80], // beyond U+10FFFF
  [0xff],
  [0x80],
  [0xe2, 0x82], // truncated
  [0x2b], // +
  [0x23], // #
  [0x24], // $
  [0x2f], // /
];

export class Generator {
  constructor(private readonly rand: () => number) {}

  int(n: number): number {
    return Math.floor(this.rand() * n);
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }

  /** A raw string field: mostly plain ASCII with hostile byte sequences spliced in. */
  rawString(maxLen = 40): Buffer {
    const parts: Buffer[] = [];
    const n = 1 + this.int(maxLen);
    for (let i = 0; i < n; i++) {
      parts.push(
        this.rand() < 0.25 ? Buffer.from(this.pick(HOSTILE_BYTES)) : Buffer.from([0x61 + this.int(26)]),
      );
    }
    return Buffer.concat(parts);
  }

  /** A valid string for encode(): a fuzz client id or topic, sometimes with characters the broker refuses. */
  text(kind: 'id' | 'topic'): string {
    if (kind === 'id') return `fz${this.int(200)}`;
    const levels = ['a', 'b', 'cmd', '+', '#', 'x\u007f', 't\u0085', '\ufffe', '$SYS', '', 'temp'];
    const n = 1 + this.int(3);
    return Array.from({ length: n }, () => this.pick(levels)).join('/');
  }

  /** A valid packet of any of the 28 types (the codec encodes it; its content may still be hostile). */
  packet(): Packet {
    const u16 = (): number => this.int(0x10000);
    const qos = (): 0 | 1 | 2 => this.int(3) as 0 | 1 | 2;
    const rc = (): 0 | 1 | 2 | 3 => this.int(4) as 0 | 1 | 2 | 3;
    const topicIdType = (): 'normal' | 'predefined' | 'short' =>
      this.pick(['normal', 'predefined', 'short'] as const);
    const plain = (): PlainPacket => {
      switch (this.int(27)) {
        case 0:
          return { type: 'ADVERTISE', gwId: this.int(256), duration: u16() };
        case 1:
          return { type: 'SEARCHGW', radius: this.int(256) };
        case 2:
          return { type: 'GWINFO', gwId: this.int(256) };
        case 3:
          return {
            type: 'CONNECT',
            will: this.rand() < 0.3,
            cleanSession: this.rand() < 0.7,
            protocolId: this.rand() < 0.9 ? 1 : this.int(256),
            duration: this.pick([0, 1, 10, 60, 3600]),
            clientId: this.text('id'),
          };
        case 4:
          return { type: 'CONNACK', returnCode: rc() };
        case 5:
          return { type: 'WILLTOPICREQ' };
        case 6:
          return { type: 'WILLTOPIC', qos: qos(), retain: this.rand() < 0.5, willTopic: this.text('topic') };
        case 7:
          return { type: 'WILLMSGREQ' };
        case 8:
          return { type: 'WILLMSG', willMsg: this.bytes(this.int(64)) };
        case 9:
          return { type: 'REGISTER', topicId: u16(), msgId: u16(), topicName: this.text('topic') || 'a' };
        case 10:
          return { type: 'REGACK', topicId: u16(), msgId: u16(), returnCode: rc() };
        case 11:
          return {
            type: 'PUBLISH',
            dup: this.rand() < 0.2,
            qos: this.pick([-1, 0, 1, 2] as const),
            retain: this.rand() < 0.2,
            topicIdType: topicIdType(),
            topicId: this.rand() < 0.5 ? this.int(8) : u16(),
            msgId: u16(),
            data: this.bytes(this.int(this.rand() < 0.01 ? 1500 : 64)),
          };
        case 12:
          return { type: 'PUBACK', topicId: u16(), msgId: u16(), returnCode: rc() };
        case 13:
          return { type: 'PUBCOMP', msgId: u16() };
        case 14:
          return { type: 'PUBREC', msgId: u16() };
        case 15:
          return { type: 'PUBREL', msgId: u16() };
        case 16: {
          const tit = topicIdType();
          return tit === 'normal'
            ? {
                type: 'SUBSCRIBE',
                dup: false,
                qos: qos(),
                msgId: u16(),
                topicIdType: tit,
                topicName: this.text('topic') || '#',
              }
            : { type: 'SUBSCRIBE', dup: false, qos: qos(), msgId: u16(), topicIdType: tit, topicId: u16() };
        }
        case 17:
          return { type: 'SUBACK', qos: qos(), topicId: u16(), msgId: u16(), returnCode: rc() };
        case 18: {
          const tit = topicIdType();
          return tit === 'normal'
            ? { type: 'UNSUBSCRIBE', msgId: u16(), topicIdType: tit, topicName: this.text('topic') || '#' }
            : { type: 'UNSUBSCRIBE', msgId: u16(), topicIdType: tit, topicId: u16() };
        }
        case 19:
          return { type: 'UNSUBACK', msgId: u16() };
        case 20:
          return this.rand() < 0.5 ? { type: 'PINGREQ' } : { type: 'PINGREQ', clientId: this.text('id') };
        case 21:
          return { type: 'PINGRESP' };
        case 22:
          return this.rand() < 0.5
            ? { type: 'DISCONNECT' }
            : { type: 'DISCONNECT', duration: this.pick([0, 1, 30, 3600]) };
        case 23:
          return { type: 'WILLTOPICUPD', qos: qos(), retain: false, willTopic: this.text('topic') };
        case 24:
          return { type: 'WILLTOPICRESP', returnCode: rc() };
        case 25:
          return { type: 'WILLMSGUPD', willMsg: this.bytes(this.int(64)) };
        default:
          return { type: 'WILLMSGRESP', returnCode: rc() };
      }
    };
    // The 28th type: the same, through a forwarder encapsulation.
    if (this.rand() < 0.05) {
      return {
        type: 'ENCAPSULATED',
        radius: this.int(4),
        wirelessNodeId: this.bytes(this.int(8)),
        packet: plain(),
      };
    }
    return plain();
  }

  /** Raw datagrams with unsanitised strings in every string field (built by hand: encode() would refuse). */
  rawStringPacket(): Buffer {
    const s = this.rawString();
    const frame = (type: number, body: Buffer): Buffer => {
      const n = body.length + 2;
      return n <= 255
        ? Buffer.concat([Buffer.from([n, type]), body])
        : Buffer.concat([Buffer.from([0x01, (n + 2) >> 8, (n + 2) & 0xff, type]), body]);
    };
    const u16 = (v: number): Buffer => Buffer.from([v >> 8, v & 0xff]);
    switch (this.int(9)) {
      case 0: // CONNECT client id
        return frame(0x04, Buffer.concat([Buffer.from([this.pick([0x04, 0x0c, 0x00]), 0x01]), u16(60), s]));
      case 1: // REGISTER topic name
        return frame(0x0a, Buffer.concat([u16(0), u16(this.int(0x10000)), s]));
      case 2: // SUBSCRIBE topic name
        return frame(
          0x12,
          Buffer.concat([Buffer.from([this.pick([0x00, 0x20, 0x40])]), u16(this.int(0x10000)), s]),
        );
      case 3: // UNSUBSCRIBE topic name
        return frame(0x14, Buffer.concat([Buffer.from([0x00]), u16(this.int(0x10000)), s]));
      case 4: // WILLTOPIC / WILLTOPICUPD
        return frame(
          this.pick([0x07, 0x1a]),
          Buffer.concat([Buffer.from([this.pick([0x00, 0x20, 0x30])]), s]),
        );
      case 5: // PINGREQ client id
        return frame(0x16, s);
      case 6: {
        // PUBLISH QoS −1 with a short topic of two raw bytes (issue 8's datagram is one of these)
        const two = Buffer.concat([s, s]).subarray(0, 2);
        return frame(
          0x0c,
          Buffer.concat([
            Buffer.from([0x62]),
            two.length === 2 ? two : Buffer.from('A\x7f'),
            u16(0),
            Buffer.from('x'),
          ]),
        );
      }
      case 7: // Paho's QoS −1 long-name form: topic id = name length, name prefixes the payload
        return frame(
          0x0c,
          Buffer.concat([Buffer.from([0x60]), u16(s.length), u16(0), s, Buffer.from('payload')]),
        );
      default: // PUBLISH QoS 0/1/2 on a short name of raw bytes
        return frame(
          0x0c,
          Buffer.concat([
            Buffer.from([this.pick([0x02, 0x22, 0x42])]),
            Buffer.concat([s, s]).subarray(0, 2),
            u16(this.int(0x10000)),
            Buffer.from('x'),
          ]),
        );
    }
  }

  /** Flips, truncates, extends or re-lengths a valid datagram. */
  mutate(bytes: Uint8Array): Buffer {
    const b = Buffer.from(bytes);
    switch (this.int(5)) {
      case 0: {
        const flips = 1 + this.int(3);
        for (let i = 0; i < flips; i++) b[this.int(b.length)] = this.int(256);
        return b;
      }
      case 1:
        return b.subarray(0, this.int(b.length));
      case 2:
        return Buffer.concat([b, this.bytes(1 + this.int(8))]);
      case 3:
        b[0] = this.int(256);
        return b;
      default: {
        const at = this.int(b.length);
        return Buffer.concat([b.subarray(0, at), Buffer.from(this.pick(HOSTILE_BYTES)), b.subarray(at)]);
      }
    }
  }

  datagram(): Buffer {
    const r = this.rand();
    if (r < 0.2) return this.bytes(this.rand() < 0.02 ? this.int(2000) : this.int(64));
    if (r < 0.45) return this.rawStringPacket();
    let packet: Packet;
    try {
      packet = this.packet();
      const bytes = encode(packet);
      return r < 0.75 ? Buffer.from(bytes) : this.mutate(bytes);
    } catch {
      // encode() refused the packet (e.g. a string the codec will not write): send raw bytes instead.
      return this.rawStringPacket();
    }
  }
}

/** A well-behaved sensor: QoS 1, one message in flight, retransmits with DUP, reconnects when told to. */
class GoodDevice {
  readonly acked: string[] = [];
  private stopped = false;
  private done: Promise<void> = Promise.resolve();

  constructor(
    private readonly port: number,
    readonly clientId: string,
  ) {}

  start(): void {
    this.done = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done.catch(() => undefined);
  }

  private async run(): Promise<void> {
    const client = await MqttSnTestClient.create({ gatewayPort: this.port });
    try {
      let topicId = await this.connect(client);
      let i = 0;
      while (!this.stopped) {
        const payload = `${this.clientId}:${i}`;
        const msgId = client.nextMsgId();
        let outcome: 'acked' | 'refused' | 'timeout' = 'timeout';
        for (let attempt = 0; attempt < 5 && outcome === 'timeout'; attempt++) {
          await client.send({
            type: 'PUBLISH',
            dup: attempt > 0,
            qos: 1,
            retain: false,
            topicIdType: 'normal',
            topicId,
            msgId,
            data: Buffer.from(payload),
          });
          try {
            const ack = await client.next((p) => p.type === 'PUBACK' && p.msgId === msgId, 2000);
            outcome = ack.type === 'PUBACK' && ack.returnCode === 0 ? 'acked' : 'refused';
          } catch {
            // lost in the flood: resend with DUP
          }
        }
        if (outcome === 'acked') {
          this.acked.push(payload);
          i++;
        } else {
          topicId = await this.connect(client); // refused or silent: start a new session, resend
        }
      }
    } finally {
      await client.close();
    }
  }

  private async connect(client: MqttSnTestClient): Promise<number> {
    for (;;) {
      try {
        const connack = await client.connect({ clientId: this.clientId, duration: 600 });
        if (connack.returnCode === 0) return await client.register('seq');
      } catch {
        // lost in the flood: try again
      }
      if (this.stopped) throw new Error(`${this.clientId}: stopped before it could connect`);
      await sleep(100);
    }
  }
}

function isAlive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function runFuzz(options: FuzzOptions): Promise<FuzzResult> {
  const {
    datagrams,
    seed = 1,
    devices = 4,
    senders = 32,
    rotateEvery = 5000,
    maxSeconds = 900,
    backlog = 2000,
    progress = () => {},
  } = options;
  const failures: string[] = [];
  const mosquitto = await startMosquitto();
  cleanups.push(() => mosquitto.stop());
  const dir = tempDir('mqttsn-fuzz-');
  cleanups.push(() => dir.cleanup());
  const metricsPort = await freePort();
  const gw: GatewayProcess = await spawnGateway([
    '--metrics',
    `127.0.0.1:${metricsPort}`,
    '--broker',
    mosquitto.url,
    '--data-dir',
    dir.path,
    '--uplink-client-id',
    `gw-fuzz-${process.pid}`,
  ]);
  cleanups.push(async () => void (await gw.signal('SIGKILL')));
  const pid = gw.pid;
  progress(`gateway pid ${pid} on 127.0.0.1:${gw.udpPort}, Mosquitto on ${mosquitto.url}`);
  const collector: Collector = await collect(mosquitto.url, 'mqttsn/+/seq', { qos: 1 });
  cleanups.push(() => collector.close());

  const good = Array.from({ length: devices }, (_, i) => new GoodDevice(gw.udpPort, `good-${i}`));
  for (const device of good) device.start();
  await sleep(500);
  progress(`${devices} good devices publishing; flooding ${datagrams} datagrams`);
  const rssBefore = rssMb(pid, 'VmRSS');

  // The flood: `senders` sockets, one replaced by a fresh source port every `rotateEvery` datagrams.
  const gen = new Generator(prng(seed));
  const open = (): Socket => {
    const s = dgram.createSocket('udp4');
    s.on('message', () => {}); // replies are read and discarded
    s.on('error', () => {});
    s.bind(0, '127.0.0.1');
    return s;
  };
  const sockets = Array.from({ length: senders }, open);
  const retired: Socket[] = [];
  let sourcePorts = senders;
  let sent = 0;
  let sendErrors = 0;
  let inFlight = 0;
  const baseline = (await scrape(metricsPort)).get('mqttsn_datagrams_received_total') ?? 0;
  let received = 0;
  let polling = false;
  let wake = (): void => {};
  const poller = setInterval(() => {
    if (polling || backlog === 0) return;
    polling = true;
    scrape(metricsPort)
      .then((m) => (received = (m.get('mqttsn_datagrams_received_total') ?? baseline) - baseline))
      .catch(() => undefined)
      .finally(() => {
        polling = false;
        wake();
      });
  }, 50);
  const started = performance.now();
  const deadline = started + maxSeconds * 1000;
  let lastReport = started;
  await new Promise<void>((resolve) => {
    let scheduled = false;
    const onSent = (err: Error | null): void => {
      inFlight--;
      if (err) sendErrors++;
      schedule();
    };
    const pump = (): void => {
      scheduled = false;
      const now = performance.now();
      if (now - lastReport > 5000) {
        lastReport = now;
        progress(`  ${sent} datagrams sent, gateway RSS ${rssMb(pid, 'VmRSS').toFixed(0)} MB`);
      }
      // Bounded in count and in time; at most 256 sends outstanding.
      while (
        inFlight < 256 &&
        sent < datagrams &&
        now < deadline &&
        (backlog === 0 || sent - received < backlog)
      ) {
        if (sent > 0 && sent % rotateEvery === 0) {
          // The replaced socket stays open until the end: closing it would lose its pending send callbacks.
          const k = (sent / rotateEvery) % senders;
          retired.push(sockets[k]!);
          sockets[k] = open();
          sourcePorts++;
        }
        const socket = sockets[sent % senders]!;
        inFlight++;
        sent++;
        socket.send(gen.datagram(), gw.udpPort, '127.0.0.1', onSent);
      }
      if (inFlight === 0 && (sent >= datagrams || now >= deadline)) resolve();
    };
    const schedule = (): void => {
      if (scheduled) return;
      scheduled = true;
      setImmediate(pump);
    };
    wake = schedule;
    schedule();
  });
  clearInterval(poller);
  const seconds = (performance.now() - started) / 1000;
  if (sent < datagrams) failures.push(`only ${sent} of ${datagrams} datagrams sent within ${maxSeconds} s`);
  for (const s of [...sockets, ...retired]) s.close();

  progress(`flood done: ${sent} datagrams in ${seconds.toFixed(1)} s; stopping the good devices`);
  // Let the good devices publish a little longer after the flood, then check what arrived.
  await sleep(1000);
  await Promise.all(good.map((d) => d.stop()));
  progress('good devices stopped; waiting for their messages at Mosquitto');
  const acked = good.flatMap((d) => d.acked);
  const arrivedSet = new Set<string>();
  const waitUntil = performance.now() + 60_000;
  let missing: string[] = [];
  for (;;) {
    for (const m of collector.messages) arrivedSet.add(m.payload.toString());
    missing = acked.filter((p) => !arrivedSet.has(p));
    if (missing.length === 0 || performance.now() > waitUntil) break;
    await sleep(200);
  }
  if (acked.length === 0) failures.push('the good devices got no message acknowledged');
  if (missing.length > 0) failures.push(`${missing.length} acknowledged messages never arrived`);
  for (const d of good) if (d.acked.length === 0) failures.push(`${d.clientId} got nothing acknowledged`);

  const metrics = await scrape(metricsPort).catch(() => new Map<string, number>());
  const crashed = !isAlive(pid) || /uncaught|FATAL ERROR/i.test(gw.output());
  if (crashed) failures.push(`the gateway crashed:\n${gw.output().slice(-3000)}`);
  const rss = { before: rssBefore, after: rssMb(pid, 'VmRSS'), peak: rssMb(pid, 'VmHWM') };
  if (!(rss.peak < rss.before + 300))
    failures.push(`RSS grew from ${rss.before.toFixed(0)} to a peak of ${rss.peak.toFixed(0)} MB`);
  const lines = gw.output().split('\n').filter(Boolean);
  const warnLines = lines.filter((l) => /"level":(40|50|60)/.test(l)).length;
  const logKinds: Record<string, number> = {};
  for (const line of lines) {
    const msg = /"msg":"((?:[^"\\]|\\.)*)"/.exec(line)?.[1] ?? line.slice(0, 60);
    logKinds[msg] = (logKinds[msg] ?? 0) + 1;
  }
  // Bounded log volume: about one line per warning kind per 10 s window, whatever the datagram count.
  const logBudget = 200 + Math.ceil(seconds) * 10;
  if (lines.length > logBudget) failures.push(`${lines.length} log lines (budget ${logBudget})`);

  return {
    ok: failures.length === 0,
    failures,
    datagramsSent: sent,
    sendErrors,
    sourcePorts,
    seconds,
    acked: acked.length,
    arrived: acked.length - missing.length,
    missing: missing.slice(0, 20),
    crashed,
    rssMb: rss,
    logLines: lines.length,
    warnLines,
    logKinds,
    gateway: {
      datagramsReceived: metrics.get('mqttsn_datagrams_received_total') ?? NaN,
      malformed: metrics.get('mqttsn_malformed_datagrams_total') ?? NaN,
      errors: (metrics.get('mqttsn_errors_total') ?? 0) + (metrics.get('mqttsn_handler_errors_total') ?? 0),
    },
  };
}

/** Sums of the gateway's Prometheus samples by metric name (labels added up). */
async function scrape(port: number): Promise<Map<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const sums = new Map<string, number>();
  for (const line of text.split('\n')) {
    const match = /^([a-z_]+)(?:\{[^}]*\})? ([0-9.e+-]+)$/.exec(line);
    if (match) sums.set(match[1]!, (sums.get(match[1]!) ?? 0) + Number(match[2]));
  }
  return sums;
}

export function describeResult(r: FuzzResult): string {
  return [
    `datagrams sent:     ${r.datagramsSent} from ${r.sourcePorts} source ports in ${r.seconds.toFixed(1)} s ` +
      `(${Math.round(r.datagramsSent / r.seconds)}/s, ${r.sendErrors} send errors)`,
    `good devices:       ${r.acked} QoS 1 messages acknowledged, ${r.arrived} arrived at Mosquitto`,
    `gateway received:   ${r.gateway.datagramsReceived} datagrams (${r.gateway.malformed} malformed), ` +
      `${r.gateway.errors} exceptions caught`,
    `crashes:            ${r.crashed ? 1 : 0}`,
    `gateway RSS:        before ${r.rssMb.before.toFixed(1)} MB, after ${r.rssMb.after.toFixed(1)} MB, peak ${r.rssMb.peak.toFixed(1)} MB`,
    `gateway log lines:  ${r.logLines} (${r.warnLines} warnings or errors)`,
    ...Object.entries(r.logKinds)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 12)
      .map(([msg, n]) => `  ${String(n).padStart(6)}  ${msg}`),
    r.ok ? 'OK' : `FAILED:\n  ${r.failures.join('\n  ')}`,
  ].join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({
    options: {
      datagrams: { type: 'string', default: '1000000' },
      seed: { type: 'string', default: '1' },
      'max-seconds': { type: 'string', default: '900' },
      backlog: { type: 'string', default: '2000' },
    },
  });
  process.once('SIGINT', () => void cleanup().then(() => process.exit(130)));
  let code = 1;
  try {
    const result = await runFuzz({
      datagrams: Number(values.datagrams),
      seed: Number(values.seed),
      maxSeconds: Number(values['max-seconds']),
      backlog: Number(values.backlog),
      progress: (line) => console.log(line),
    });
    console.log(describeResult(result));
    code = result.ok ? 0 : 1;
  } catch (err) {
    console.error(err);
  } finally {
    await cleanup();
  }
  process.exit(code);
}
