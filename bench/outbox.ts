/**
 * The outbox alone, this build beside another (the previous main), interleaved: D simulated devices
 * each append a message and wait for its commit, the "uplink" acknowledges every committed message at
 * once; no UDP, no broker, so the store's own cost shows through a noisy machine.
 *
 *   npm run build && node --import tsx bench/outbox.ts --baseline /tmp/base [--rounds 5] [--messages 40000]
 *       [--devices 200] [--fsync-us 0]
 *
 * Each trial is a fresh child process (`<dir>/dist/store/*.js`, a fresh temp data dir) with the fsync
 * shim preloaded (../shared/tools/slowsync.c, built with gcc to a temp path) to count fsyncs or slow
 * them down. CPU µs per message is the child's process.cpuUsage() (user + system, all threads: LevelDB's
 * too) over the run.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { median } from './support.js';

const { values } = parseArgs({
  options: {
    baseline: { type: 'string' },
    rounds: { type: 'string', default: '5' },
    messages: { type: 'string', default: '40000' },
    devices: { type: 'string', default: '200' },
    'fsync-us': { type: 'string', default: '0' },
    run: { type: 'string' },
  },
});
const HERE = fileURLToPath(new URL('..', import.meta.url));
const messages = Number(values.messages);
const devices = Number(values.devices);

interface Result {
  msgPerS: number;
  cpuUsPerMsg: number;
  fsyncsPerMsg: number;
  rssMb: number;
}

/** One trial, in this (child) process, against the build in `dir`. */
async function runTrial(dir: string): Promise<Result> {
  const { openStore } = (await import(pathToFileURL(path.join(dir, 'dist/store/db.js')).href)) as {
    openStore: (dir: string) => Promise<{ close(): Promise<void> }>;
  };
  const { Outbox } = (await import(pathToFileURL(path.join(dir, 'dist/store/outbox.js')).href)) as {
    Outbox: {
      open(
        db: unknown,
        options: unknown,
      ): Promise<{
        append(message: unknown, done: (err?: Error) => void): string;
        ack(seq: number): boolean;
        readonly lastSeq: number;
        close(): Promise<void>;
      }>;
    };
  };
  const { default: pino } = await import('pino');
  const data = path.join('/tmp', `outbox-bench-${process.pid}`);
  rmSync(data, { recursive: true, force: true });
  const db = await openStore(data);
  const outbox = await Outbox.open(db, { gatewayId: 'bench', logger: pino({ level: 'silent' }) });
  const payload = Buffer.alloc(24, 0x61);
  let sent = 0;
  const cpu = process.cpuUsage();
  const started = performance.now();
  await Promise.all(
    Array.from(
      { length: devices },
      (_, d) =>
        new Promise<void>((resolve, reject) => {
          const message = {
            clientId: `dev-${d}`,
            topic: `mqttsn/dev-${d}/bn`,
            payload,
            retain: false,
            qos: 1,
          };
          const next = (): void => {
            if (sent >= messages) return resolve();
            sent++;
            const seq = outbox.lastSeq + 1;
            outbox.append(message, (err) => {
              if (err) return reject(err);
              outbox.ack(seq); // the broker's PUBACK, as soon as the message is readable
              next();
            });
          };
          next();
        }),
    ),
  );
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  const rssMb = process.memoryUsage().rss / 1048576;
  await outbox.close();
  await db.close();
  rmSync(data, { recursive: true, force: true });
  return {
    msgPerS: messages / seconds,
    cpuUsPerMsg: (used.user + used.system) / messages,
    fsyncsPerMsg: NaN,
    rssMb,
  };
}

async function main(): Promise<void> {
  const builds = [{ name: 'new', dir: HERE }];
  if (values.baseline !== undefined) builds.push({ name: 'base', dir: path.resolve(values.baseline) });
  for (const { dir } of builds)
    if (!existsSync(path.join(dir, 'dist/store/outbox.js')))
      throw new Error(`${dir}: run npm run build there`);
  const shim = `/tmp/slowsync-outbox-bench-${process.pid}.so`;
  execFileSync('gcc', [
    '-O2',
    '-shared',
    '-fPIC',
    '-o',
    shim,
    path.join(HERE, '../../shared/tools/slowsync.c'),
    '-ldl',
  ]);
  const fsyncUs = Number(values['fsync-us']);
  console.log(`${values.rounds} rounds, ${messages} messages from ${devices} devices, fsync +${fsyncUs} µs`);
  console.log('build | msg/s | CPU µs/msg | fsyncs/msg | RSS MB');
  const results = new Map<string, Result[]>(builds.map((b) => [b.name, []]));
  try {
    for (let round = 0; round < Number(values.rounds); round++)
      for (const build of round % 2 === 0 ? builds : [...builds].reverse()) {
        const report = `/tmp/slowsync-outbox-bench-${process.pid}.txt`;
        rmSync(report, { force: true });
        const out = execFileSync(
          process.execPath,
          ['--import', 'tsx', fileURLToPath(import.meta.url), '--run', build.dir, ...passThrough()],
          {
            env: { ...process.env, LD_PRELOAD: shim, SLOWSYNC_US: String(fsyncUs), SLOWSYNC_REPORT: report },
            encoding: 'utf8',
          },
        );
        const result = JSON.parse(out.trim().split('\n').pop()!) as Result;
        const syncs = Number(/syncs=(\d+)/.exec(readFileSync(report, 'utf8'))?.[1]);
        result.fsyncsPerMsg = syncs / messages;
        results.get(build.name)!.push(result);
        console.log(format(build.name, result));
      }
  } finally {
    rmSync(shim, { force: true });
  }
  console.log('medians:');
  for (const [name, list] of results)
    console.log(
      format(name, {
        msgPerS: median(list.map((r) => r.msgPerS)),
        cpuUsPerMsg: median(list.map((r) => r.cpuUsPerMsg)),
        fsyncsPerMsg: median(list.map((r) => r.fsyncsPerMsg)),
        rssMb: median(list.map((r) => r.rssMb)),
      }),
    );
}

function passThrough(): string[] {
  return ['--messages', String(messages), '--devices', String(devices)];
}

function format(name: string, r: Result): string {
  return `${name.padStart(5)} | ${r.msgPerS.toFixed(0).padStart(5)} | ${r.cpuUsPerMsg.toFixed(1).padStart(10)} | ${r.fsyncsPerMsg.toFixed(4).padStart(10)} | ${r.rssMb.toFixed(1)}`;
}

if (values.run !== undefined) console.log(JSON.stringify(await runTrial(values.run)));
else await main();
