/**
 * Load generator: simulated sensors against the real gateway (child process) and a local Mosquitto.
 *
 *   npm run build && node --import tsx bench/load.ts [--seconds 10] [--devices 50,200]
 *
 * The gateway runs compiled (dist/cli.js), as installed; the generator and Mosquitto share the machine.
 *
 * Prints, per device count: durable QoS 1 messages/s and PUBACK latency (p50/p99/max) with one message
 * in flight per device (as sensors do); then the highest QoS 0 rate that arrives at the broker without
 * loss; and the gateway's peak RSS. Figures, not assertions: run on purpose, not in `npm test`.
 */
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';
import { startMosquitto, tempDir } from '../test/helpers/index.js';
import { spawnGateway } from '../test/support/gateway-process.js';
import { SENSOR_PAYLOAD_BYTES, Sensor } from './sensor.js';
import { percentile, rssMb } from './support.js';

const { values } = parseArgs({
  options: { seconds: { type: 'string', default: '10' }, devices: { type: 'string', default: '50,200' } },
});
const seconds = Number(values.seconds);
const deviceCounts = values.devices.split(',').map(Number);

async function counter(url: string): Promise<{ count: () => number; close: () => Promise<void> }> {
  const client = await mqtt.connectAsync(url, { protocolVersion: 5, clientId: `bench-sub-${process.pid}` });
  let n = 0;
  client.on('message', () => n++);
  await client.subscribeAsync('mqttsn/+/bn', { qos: 1 });
  return { count: () => n, close: () => client.endAsync() };
}

async function main(): Promise<void> {
  const mosquitto = await startMosquitto({ extraConfig: 'max_queued_messages 1000000\n' });
  const data = tempDir('mqttsn-bench-');
  const gw = await spawnGateway(
    ['--broker', mosquitto.url, '--data-dir', data.path, '--log-level', 'warn', '--max-clients', '100000'],
    {
      env: { MQTTSN_BRIDGE_LOG_LEVEL: 'warn' },
      // e.g. GATEWAY_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" to profile the gateway.
      nodeArgs: (process.env.GATEWAY_NODE_ARGS ?? '').split(' ').filter(Boolean),
      compiled: true,
      // e.g. GATEWAY_NODE=<a script that joins a memory cgroup and execs node> (docs/architecture.md, Memory).
      ...(process.env.GATEWAY_NODE ? { node: process.env.GATEWAY_NODE } : {}),
    },
  );
  const sub = await counter(mosquitto.url);
  console.log(
    `node ${process.version}, ${seconds} s per run, payload ${SENSOR_PAYLOAD_BYTES} bytes, gateway pid ${gw.pid}, idle RSS ${rssMb(gw.pid, 'VmRSS').toFixed(1)} MB`,
  );
  console.log('');
  console.log(
    'devices | QoS 1 durable msg/s | PUBACK p50 ms | p99 ms | max ms | arrived at broker | gateway RSS MB (peak)',
  );
  try {
    for (const devices of deviceCounts) {
      const sensors = Array.from(
        { length: devices },
        (_, i) => new Sensor(gw.udpPort, `load-${devices}-${i}`, 1),
      );
      await Promise.all(sensors.map((s) => s.connect()));
      const before = sub.count();
      const started = performance.now();
      const watchdog = setInterval(
        () => sensors.forEach((s) => s.retransmitIfStalled(performance.now(), 2000)),
        500,
      );
      const acked = (await Promise.all(sensors.map((s) => s.runQos1(started + seconds * 1000)))).reduce(
        (a, b) => a + b,
        0,
      );
      clearInterval(watchdog);
      const elapsed = (performance.now() - started) / 1000;
      const all = sensors.flatMap((s) => s.latencies).sort((a, b) => a - b);
      const deadline = Date.now() + 30_000;
      while (sub.count() - before < acked && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 50));
      console.log(
        `${String(devices).padStart(7)} | ${String(Math.round(acked / elapsed)).padStart(19)} | ${percentile(all, 50).toFixed(2).padStart(13)} | ${percentile(all, 99).toFixed(2).padStart(6)} | ${all[all.length - 1]!.toFixed(1).padStart(6)} | ${sub.count() - before}/${acked} | ${rssMb(gw.pid, 'VmRSS').toFixed(0)} (${rssMb(gw.pid, 'VmHWM').toFixed(0)})`,
      );
      sensors.forEach((s) => s.close());
    }

    console.log('');
    console.log('QoS 0 offered msg/s | arrived | lost');
    const sensors = Array.from({ length: 50 }, (_, i) => new Sensor(gw.udpPort, `q0-${i}`, 0));
    await Promise.all(sensors.map((s) => s.connect()));
    let lossless = 0;
    for (const rate of [5_000, 10_000, 20_000, 30_000, 40_000, 60_000]) {
      const before = sub.count();
      const total = rate * Math.min(seconds, 5);
      const perTick = rate / 1000;
      let sent = 0;
      let carry = 0;
      const started = performance.now();
      while (sent < total) {
        const due = Math.min(total, Math.floor((performance.now() - started) * perTick));
        carry = due - sent;
        for (let i = 0; i < carry; i++) sensors[(sent + i) % sensors.length]!.sendQos0();
        sent = due;
        await new Promise((r) => setImmediate(r));
      }
      const deadline = Date.now() + 15_000;
      while (sub.count() - before < total && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 50));
      const arrived = sub.count() - before;
      console.log(`${String(rate).padStart(19)} | ${String(arrived).padStart(7)} | ${total - arrived}`);
      if (arrived < total) break;
      lossless = rate;
    }
    sensors.forEach((s) => s.close());
    console.log(`QoS 0 lossless up to: ${lossless} msg/s`);
    console.log(
      `gateway RSS now ${rssMb(gw.pid, 'VmRSS').toFixed(1)} MB, peak ${rssMb(gw.pid, 'VmHWM').toFixed(1)} MB (peak includes the QoS 0 overload step)`,
    );
  } finally {
    await sub.close();
    await gw.signal('SIGTERM');
    await mosquitto.stop();
    data.cleanup();
  }
}

await main();
