/**
 * Codec throughput: decode and encode, packets per second, one row per message type.
 *
 *   npm run bench:codec                    # ~0.5 s per measurement
 *   BENCH_MS=200 npm run bench:codec       # quicker, noisier
 *   npm run bench:codec -- PUBLISH CONNECT # only rows whose name contains one of these
 */
import os from 'node:os';

import { decode, encode } from '../src/codec/index.js';
import type { Packet } from '../src/codec/index.js';

const MEASURE_MS = Number(process.env.BENCH_MS ?? 500);
const WARMUP_MS = Math.max(50, MEASURE_MS / 5);
const BATCH = 1000;

const text = new TextEncoder();
const payload = (n: number): Uint8Array => new Uint8Array(n).map((_, i) => 0x61 + (i % 26));

const publish = (name: string, data: Uint8Array): [string, Packet] => [
  name,
  { type: 'PUBLISH', dup: false, qos: 1, retain: false, topicIdType: 'normal', topicId: 1, msgId: 42, data },
];

const samples: [string, Packet][] = [
  ['ADVERTISE', { type: 'ADVERTISE', gwId: 1, duration: 900 }],
  ['SEARCHGW', { type: 'SEARCHGW', radius: 1 }],
  ['GWINFO', { type: 'GWINFO', gwId: 1 }],
  [
    'CONNECT',
    {
      type: 'CONNECT',
      will: false,
      cleanSession: true,
      protocolId: 1,
      duration: 60,
      clientId: 'sensor-0042',
    },
  ],
  ['CONNACK', { type: 'CONNACK', returnCode: 0 }],
  ['WILLTOPICREQ', { type: 'WILLTOPICREQ' }],
  ['WILLTOPIC', { type: 'WILLTOPIC', qos: 1, retain: true, willTopic: 'sensors/0042/status' }],
  ['WILLMSGREQ', { type: 'WILLMSGREQ' }],
  ['WILLMSG', { type: 'WILLMSG', willMsg: text.encode('offline') }],
  ['REGISTER', { type: 'REGISTER', topicId: 0, msgId: 7, topicName: 'sensors/0042/temperature' }],
  ['REGACK', { type: 'REGACK', topicId: 3, msgId: 7, returnCode: 0 }],
  publish('PUBLISH (16 B payload)', payload(16)),
  publish('PUBLISH (200 B payload)', payload(200)),
  publish('PUBLISH (1000 B, long form)', payload(1000)),
  ['PUBACK', { type: 'PUBACK', topicId: 3, msgId: 42, returnCode: 0 }],
  ['PUBCOMP', { type: 'PUBCOMP', msgId: 42 }],
  ['PUBREC', { type: 'PUBREC', msgId: 42 }],
  ['PUBREL', { type: 'PUBREL', msgId: 42 }],
  [
    'SUBSCRIBE (topic name)',
    { type: 'SUBSCRIBE', dup: false, qos: 1, msgId: 8, topicIdType: 'normal', topicName: 'actuators/0042/#' },
  ],
  [
    'SUBSCRIBE (short topic)',
    { type: 'SUBSCRIBE', dup: false, qos: 1, msgId: 9, topicIdType: 'short', topicId: 0x6162 },
  ],
  ['SUBACK', { type: 'SUBACK', qos: 1, topicId: 0, msgId: 8, returnCode: 0 }],
  ['UNSUBSCRIBE', { type: 'UNSUBSCRIBE', msgId: 10, topicIdType: 'normal', topicName: 'actuators/0042/#' }],
  ['UNSUBACK', { type: 'UNSUBACK', msgId: 10 }],
  ['PINGREQ', { type: 'PINGREQ' }],
  ['PINGREQ (client id)', { type: 'PINGREQ', clientId: 'sensor-0042' }],
  ['PINGRESP', { type: 'PINGRESP' }],
  ['DISCONNECT', { type: 'DISCONNECT' }],
  ['DISCONNECT (duration)', { type: 'DISCONNECT', duration: 300 }],
  ['WILLTOPICUPD', { type: 'WILLTOPICUPD', qos: 0, retain: false, willTopic: 'sensors/0042/status' }],
  ['WILLTOPICRESP', { type: 'WILLTOPICRESP', returnCode: 0 }],
  ['WILLMSGUPD', { type: 'WILLMSGUPD', willMsg: text.encode('gone') }],
  ['WILLMSGRESP', { type: 'WILLMSGRESP', returnCode: 0 }],
  [
    'ENCAPSULATED (PUBLISH 16 B)',
    {
      type: 'ENCAPSULATED',
      radius: 0,
      wirelessNodeId: text.encode('node1'),
      packet: {
        type: 'PUBLISH',
        dup: false,
        qos: -1,
        retain: false,
        topicIdType: 'predefined',
        topicId: 5,
        msgId: 0,
        data: payload(16),
      },
    },
  ],
];

/** Keeps results observable (and escaping) so the loops are not optimised away. */
let sink = 0;
let keep: unknown;

/** Calls `fn` in batches for `ms` milliseconds; returns calls per second. */
function measure(fn: () => number, ms: number): number {
  const budget = BigInt(Math.round(ms * 1e6));
  const start = process.hrtime.bigint();
  let calls = 0;
  let elapsed = 0n;
  do {
    for (let i = 0; i < BATCH; i++) sink += fn();
    calls += BATCH;
    elapsed = process.hrtime.bigint() - start;
  } while (elapsed < budget);
  return calls / (Number(elapsed) / 1e9);
}

/**
 * Warm-up, then MEASURE_MS split into SLICES timed slices; the median slice rate is reported, so a
 * burst of load from other processes on the machine does not decide the result.
 */
const SLICES = 5;
function run(fn: () => number): number {
  measure(fn, WARMUP_MS);
  const rates: number[] = [];
  for (let i = 0; i < SLICES; i++) rates.push(measure(fn, MEASURE_MS / SLICES));
  rates.sort((a, b) => a - b);
  return rates[SLICES >> 1]!;
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en');

const filters = process.argv.slice(2);
const rows = samples.filter(([name]) => filters.length === 0 || filters.some((f) => name.includes(f)));

const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
console.log(`MQTT-SN codec benchmark — Node ${process.version}, ${process.platform}/${process.arch}, ${cpu}`);
console.log(
  `warm-up: all types round-robin, then ${WARMUP_MS} ms per measurement; ` +
    `timed: ${MEASURE_MS} ms per measurement (median of ${SLICES} slices)\n`,
);

// Global warm-up with every message type, round-robin, as a gateway in steady state sees them:
// otherwise each new row would meet code optimised for the previous rows only.
const encoded = rows.map(([, packet]) => encode(packet));
const warmUntil = process.hrtime.bigint() + BigInt(WARMUP_MS * 4 * 1e6);
while (process.hrtime.bigint() < warmUntil) {
  for (let r = 0; r < 100; r++) {
    for (let i = 0; i < rows.length; i++) {
      keep = decode(encoded[i]!);
      keep = encode(rows[i]![1]);
    }
  }
}

const header = ['message', 'bytes', 'decode pkt/s', 'encode pkt/s', 'decode ns', 'encode ns'];
const table: string[][] = [];
for (const [name, packet] of rows) {
  const bytes = encode(packet);
  const dec = run(() => {
    const p = decode(bytes);
    keep = p;
    return p.type.length;
  });
  const enc = run(() => {
    const b = encode(packet);
    keep = b;
    return b.length;
  });
  table.push([
    name,
    String(bytes.length),
    fmt(dec),
    fmt(enc),
    (1e9 / dec).toFixed(0),
    (1e9 / enc).toFixed(0),
  ]);
}

const widths = header.map((h, i) => Math.max(h.length, ...table.map((r) => r[i]!.length)));
const line = (cells: string[]): string =>
  '| ' + cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ') + ' |';
console.log(line(header));
console.log(
  '|' + widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : '-'.repeat(w + 1) + ':')).join('|') + '|',
);
for (const r of table) console.log(line(r));
if (sink === -1) console.log(sink, keep); // never true; keeps `sink` and `keep` alive
