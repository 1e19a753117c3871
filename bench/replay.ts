/**
 * Outbox replay benchmark: fill an outbox with N messages while no uplink is connected, then start a
 * broker connection and measure how fast the backlog drains; per window size.
 *
 *   node --import tsx bench/replay.ts [--count 100000] [--broker mqtt://...] [--windows 32,64,128,256]
 *                                     [--protocol 5|4] [--payload 50] [--clients 20]
 *
 * Without --broker a local mosquitto is started on an ephemeral 127.0.0.1 port, configured without a
 * receive maximum (max_inflight_messages 0) so the window is ours to choose. Prints, per window: append
 * throughput (durable appends/s, group commit), index rebuild time at open, replay msg/s beside a raw
 * MQTT.js QoS 1 ceiling with the same window (and their ratio), peak RSS.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';
import pino from 'pino';
import { openStore, type Store } from '../src/store/db.js';
import { Outbox } from '../src/store/outbox.js';
import { Uplink } from '../src/uplink/uplink.js';
import { startMosquitto, type MosquittoHandle } from '../test/helpers/broker.js';
import { tempDir } from '../test/helpers/tmp.js';

const { values } = parseArgs({
  options: {
    count: { type: 'string', default: '100000' },
    broker: { type: 'string' },
    windows: { type: 'string', default: '32,64,128,256' },
    protocol: { type: 'string', default: '5' },
    payload: { type: 'string', default: '50' },
    clients: { type: 'string', default: '20' },
  },
});
const count = Number(values.count);
const windows = values.windows.split(',').map(Number);
const protocolVersion = values.protocol === '4' ? 4 : 5;
const payloadBytes = Number(values.payload);
const clients = Number(values.clients);
const logger = pino({ level: process.env.LOG_LEVEL ?? 'warn' });

const mb = (bytes: number): string => (bytes / 1024 / 1024).toFixed(1);
const perSecond = (n: number, ms: number): number => Math.round((n * 1000) / ms);

interface Memory {
  rss: number;
  /** Anonymous resident memory (heap, native allocations), Linux only; the rest of RSS is mostly the
   * node binary and libraries mapped from disk. */
  anon: number | undefined;
}

function memory(): Memory {
  const rss = process.memoryUsage.rss();
  try {
    const kb = /RssAnon:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
    return { rss, anon: kb === undefined ? undefined : Number(kb) * 1024 };
  } catch {
    return { rss, anon: undefined };
  }
}

const showMemory = (m: Memory): string =>
  `${mb(m.rss)} MB${m.anon === undefined ? '' : ` (anon ${mb(m.anon)})`}`;

/** Peak memory sampled while `run` is in progress (process-wide maxRSS would include earlier phases). */
async function withPeakMemory<T>(run: () => Promise<T>): Promise<{ result: T; peak: Memory }> {
  const peak = memory();
  const sample = (): void => {
    const now = memory();
    peak.rss = Math.max(peak.rss, now.rss);
    if (now.anon !== undefined) peak.anon = Math.max(peak.anon ?? 0, now.anon);
  };
  const sampler = setInterval(sample, 20);
  try {
    const result = await run();
    sample();
    return { result, peak };
  } finally {
    clearInterval(sampler);
  }
}

/**
 * `devices` devices, each appending its next message once the previous one is durable (PUBACK): every
 * group commit then holds about one message per device.
 */
function fillLikeDevices(outbox: Outbox, total: number, devices = clients): Promise<void> {
  const payload = Buffer.alloc(payloadBytes, 0x61);
  let issued = 0;
  return new Promise((resolve, reject) => {
    let finished = 0;
    const next = (device: number): void => {
      if (issued >= total) {
        if (++finished === devices) resolve();
        return;
      }
      issued++;
      const result = outbox.append(
        { clientId: `dev-${device}`, topic: `mqttsn/dev-${device}/data`, payload, retain: false, qos: 1 },
        (err) => (err ? reject(err) : next(device)),
      );
      if (result !== 'queued') reject(new Error(`append ${result}`));
    };
    for (let device = 0; device < devices; device++) next(device);
  });
}

async function openOutbox(store: Store): Promise<Outbox> {
  return Outbox.open(store, { gatewayId: 'bench', logger, maxMessages: count * 2, maxBytes: 1024 ** 3 });
}

interface RoundResult {
  window: number;
  appendsPerSecond: number;
  batches: number;
  fillPeak: Memory;
  rebuildMs: number;
  replayPerSecond: number;
  replayPeak: Memory;
  effectiveWindow: number;
}

async function round(brokerUrl: string, window: number): Promise<RoundResult> {
  const dir = tempDir('mqttsn-bench-');
  try {
    const store = await openStore(dir.path);
    let outbox = await openOutbox(store);
    const fillStarted = performance.now();
    const fill = await withPeakMemory(() => fillLikeDevices(outbox, count));
    const appendsPerSecond = perSecond(count, performance.now() - fillStarted);
    const { batches } = outbox.stats;
    await outbox.close();

    // Reopen: the index is rebuilt from disk, as after a gateway restart with a backlog.
    outbox = await openOutbox(store);
    const rebuildMs = outbox.indexRebuildMs;
    if (outbox.stats.messages !== count)
      throw new Error(`expected ${count} entries, found ${outbox.stats.messages}`);

    const uplink = new Uplink(
      { brokers: [brokerUrl], clientId: `bench-${window}`, protocolVersion, window, keepaliveSeconds: 30 },
      outbox,
      logger,
    );
    let effectiveWindow = 0;
    const replayStarted = performance.now();
    const replay = await withPeakMemory(
      () =>
        new Promise<void>((resolve) => {
          const check = setInterval(() => {
            effectiveWindow = Math.max(effectiveWindow, uplink.stats.window);
            if (outbox.stats.messages === 0) {
              clearInterval(check);
              resolve();
            }
          }, 5);
          uplink.start();
        }),
    );
    const replayMs = performance.now() - replayStarted;
    await uplink.stop();
    await outbox.close();
    await store.close();
    return {
      window,
      appendsPerSecond,
      batches,
      fillPeak: fill.peak,
      rebuildMs,
      replayPerSecond: perSecond(count, replayMs),
      replayPeak: replay.peak,
      effectiveWindow,
    };
  } finally {
    dir.cleanup();
  }
}

/** Append throughput when many devices wait at once: how far group commit stretches. */
async function burstAppendRate(devices: number): Promise<{ perSecond: number; batches: number }> {
  const dir = tempDir('mqttsn-bench-');
  try {
    const store = await openStore(dir.path);
    const outbox = await openOutbox(store);
    const started = performance.now();
    await fillLikeDevices(outbox, count, devices);
    const rate = perSecond(count, performance.now() - started);
    const { batches } = outbox.stats;
    await outbox.close();
    await store.close();
    return { perSecond: rate, batches };
  } finally {
    dir.cleanup();
  }
}

/**
 * The ceiling to compare the replay with: raw MQTT.js QoS 1 publishes of the same messages (same payload
 * size, and for MQTT 5 the same three user properties), `window` in flight, no outbox.
 */
async function rawCeiling(brokerUrl: string, window: number): Promise<number> {
  const client = await mqtt.connectAsync(brokerUrl, {
    protocolVersion,
    clientId: `replay-ceiling-${process.pid}`,
    reconnectPeriod: 0,
  });
  const payload = Buffer.alloc(payloadBytes, 0x61);
  const started = performance.now();
  await new Promise<void>((resolve, reject) => {
    let sent = 0;
    let acked = 0;
    const next = (): void => {
      const i = sent++;
      const properties =
        protocolVersion === 5
          ? {
              userProperties: {
                'mqttsn-id': `bench:${i}`,
                'mqttsn-client': `c${i % clients}`,
                'mqttsn-received': new Date().toISOString(),
              },
            }
          : undefined;
      client.publish(`bench/raw/c${i % clients}`, payload, { qos: 1, properties }, (err) => {
        if (err) return reject(err);
        if (++acked === count) return resolve();
        if (sent < count) next();
      });
    };
    for (let i = 0; i < Math.min(window, count); i++) next();
  });
  const rate = perSecond(count, performance.now() - started);
  await client.endAsync();
  return rate;
}

async function main(): Promise<void> {
  let mosquitto: MosquittoHandle | undefined;
  let brokerUrl = values.broker;
  if (brokerUrl === undefined) {
    mosquitto = await startMosquitto({ extraConfig: 'max_inflight_messages 0' });
    brokerUrl = mosquitto.url;
  }
  console.log(
    `replay bench: ${count} messages, ${payloadBytes}-byte payloads, ${clients} clients, MQTT ${protocolVersion === 5 ? '5' : '3.1.1'}, broker ${brokerUrl}${mosquitto ? ' (local mosquitto)' : ''}`,
  );
  console.log(`RSS before the first round: ${showMemory(memory())}`);
  const results: RoundResult[] = [];
  try {
    for (const window of windows) {
      const result = await round(brokerUrl, window);
      results.push(result);
      const ceiling = await rawCeiling(brokerUrl, window);
      console.log(
        [
          `window ${String(window).padStart(3)} (in force ${result.effectiveWindow})`,
          `replay ${result.replayPerSecond.toLocaleString('en')} msg/s`,
          `raw MQTT.js ${ceiling.toLocaleString('en')} msg/s (replay ${(result.replayPerSecond / ceiling).toFixed(2)} of it)`,
          `append ${result.appendsPerSecond.toLocaleString('en')} durable msg/s in ${result.batches} batches`,
          `index rebuild ${result.rebuildMs.toFixed(0)} ms`,
          `peak RSS fill ${showMemory(result.fillPeak)}, replay ${showMemory(result.replayPeak)}`,
        ].join(' | '),
      );
    }
  } finally {
    await mosquitto?.stop();
  }
  for (const devices of [200, 1000]) {
    const burst = await burstAppendRate(devices);
    console.log(
      `append with ${devices} devices waiting: ${burst.perSecond.toLocaleString('en')} durable msg/s in ${burst.batches} batches`,
    );
  }
  const best = results.reduce((a, b) => (b.replayPerSecond > a.replayPerSecond ? b : a));
  console.log(`best window: ${best.window} (${best.replayPerSecond.toLocaleString('en')} msg/s)`);
  console.log(`process max RSS: ${mb(process.resourceUsage().maxRSS * 1024)} MB`);
}

await main();
