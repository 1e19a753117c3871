/**
 * The group-commit policy alone, without the machine's noise: a discrete-event model of D devices with
 * one QoS 1 message in flight each, a disk whose synced write takes F ms, and one main thread that
 * spends `cpu-us` per message (a share on arrival: decode and append; the rest after the sync: PUBACK and
 * uplink publish). The writer starts a sync at once when the previous one is settled (the old policy),
 * or before settling it (pipelined: the disk never waits for the main thread), or after the gather
 * window (store/gather-window.ts, the real class). Prints msg/s against the limits devices ÷ F and
 * 1 / cpu, and messages per sync:
 *
 *   node --import tsx bench/commit-model.ts [--devices 50,200] [--fsync-ms 10] [--cpu-us 0,28,70]
 *       [--reply-us 300] [--seconds 5]
 *
 * `reply-us` is the time from a PUBACK leaving to the device's next PUBLISH arriving (the network and the
 * device). A model, so the figures show what the policy can reach; bench/hotpath.ts measures a gateway.
 */
import { parseArgs } from 'node:util';
import { DEFAULT_GATHER, GatherWindow } from '../src/store/gather-window.js';

const { values } = parseArgs({
  options: {
    devices: { type: 'string', default: '50,200' },
    'fsync-ms': { type: 'string', default: '10' },
    'cpu-us': { type: 'string', default: '0,28,70' },
    'reply-us': { type: 'string', default: '300' },
    seconds: { type: 'string', default: '5' },
    /** Gather options to try instead of the defaults (store/gather-window.ts). */
    share: { type: 'string', default: String(DEFAULT_GATHER.share) },
    fraction: { type: 'string', default: String(DEFAULT_GATHER.fraction) },
  },
});
const list = (text: string): number[] => text.split(',').map(Number);
const gather = { ...DEFAULT_GATHER, share: Number(values.share), fraction: Number(values.fraction) };

/** Share of a message's main-thread time spent when it arrives; the rest is spent settling its sync. */
const ARRIVAL_SHARE = 0.4;

type Event = { at: number; kind: 'arrive' | 'synced' | 'deadline' };

interface Result {
  perSecond: number;
  perSync: number;
}

function simulate(
  policy: 'at once' | 'pipelined' | 'gather',
  devices: number,
  fsyncMs: number,
  cpuUs: number,
  replyUs: number,
  seconds: number,
): Result {
  const arriveMs = (cpuUs * ARRIVAL_SHARE) / 1000;
  const settleMs = (cpuUs * (1 - ARRIVAL_SHARE)) / 1000;
  const replyMs = replyUs / 1000;
  const window = new GatherWindow(gather);
  const events: Event[] = [];
  const push = (event: Event): Event => {
    // Few events at a time (at most one per device): a sorted insert is enough.
    let i = events.length;
    while (i > 0 && events[i - 1]!.at > event.at) i--;
    events.splice(i, 0, event);
    return event;
  };
  for (let d = 0; d < devices; d++) push({ at: (d * 1) / devices, kind: 'arrive' });
  let mainFree = 0;
  let pending = 0;
  let syncing = 0; // messages in the sync under way (0: none)
  let syncStarted = 0;
  let holding: Event | undefined;
  let committed = 0;
  let syncs = 0;
  const end = seconds * 1000;
  const startSync = (at: number): void => {
    syncing = pending;
    pending = 0;
    syncStarted = at;
    push({ at: at + fsyncMs, kind: 'synced' });
  };
  while (events.length > 0) {
    const event = events.shift()!;
    if (event.at > end) break;
    const now = Math.max(event.at, mainFree);
    if (event.kind === 'arrive') {
      mainFree = now + arriveMs;
      pending++;
      if (syncing > 0) continue;
      const wait = policy === 'gather' ? window.remaining(mainFree, pending) : 0;
      if (wait > 0) {
        holding ??= push({ at: mainFree + wait, kind: 'deadline' });
        continue;
      }
      if (holding !== undefined) events.splice(events.indexOf(holding), 1);
      holding = undefined;
      window.close();
      startSync(mainFree);
    } else if (event.kind === 'synced') {
      const answered = syncing;
      syncing = 0;
      committed += answered;
      syncs++;
      if (policy === 'pipelined' && pending > 0) startSync(now);
      // Settling: each PUBACK goes out in turn; its device answers replyMs later.
      for (let i = 1; i <= answered; i++) push({ at: now + i * settleMs + replyMs, kind: 'arrive' });
      mainFree = now + answered * settleMs;
      if (syncing > 0) continue;
      if (policy === 'gather') window.synced(mainFree, now - syncStarted, answered, pending);
      if (pending === 0) continue;
      const wait = policy === 'gather' ? window.remaining(mainFree, pending) : 0;
      if (wait > 0) holding = push({ at: mainFree + wait, kind: 'deadline' });
      else startSync(mainFree);
    } else {
      holding = undefined;
      window.expired(pending);
      window.close();
      if (pending > 0 && syncing === 0) startSync(now);
    }
  }
  return { perSecond: committed / seconds, perSync: committed / Math.max(1, syncs) };
}

const seconds = Number(values.seconds);
console.log(
  `model: ${seconds} s simulated, a message's main-thread time ${ARRIVAL_SHARE * 100}% on arrival, the rest at settling; gather ${JSON.stringify(gather)}`,
);
console.log(
  'devices | fsync ms | cpu µs/msg | reply µs | limit msg/s | at once msg/s (%) | per sync | pipelined msg/s (%) | per sync | gather msg/s (%) | per sync',
);
for (const devices of list(values.devices))
  for (const fsyncMs of list(values['fsync-ms']))
    for (const cpuUs of list(values['cpu-us']))
      for (const replyUs of list(values['reply-us'])) {
        const limit = Math.min(devices / (fsyncMs / 1000), cpuUs > 0 ? 1e6 / cpuUs : Infinity);
        const old = simulate('at once', devices, fsyncMs, cpuUs, replyUs, seconds);
        const pipelined = simulate('pipelined', devices, fsyncMs, cpuUs, replyUs, seconds);
        const gather = simulate('gather', devices, fsyncMs, cpuUs, replyUs, seconds);
        const pct = (r: Result): string => `${((r.perSecond / limit) * 100).toFixed(0)}%`;
        console.log(
          [
            String(devices).padStart(7),
            String(fsyncMs).padStart(8),
            String(cpuUs).padStart(10),
            String(replyUs).padStart(8),
            limit.toFixed(0).padStart(11),
            `${old.perSecond.toFixed(0)} (${pct(old)})`.padStart(17),
            old.perSync.toFixed(1).padStart(8),
            `${pipelined.perSecond.toFixed(0)} (${pct(pipelined)})`.padStart(19),
            pipelined.perSync.toFixed(1).padStart(8),
            `${gather.perSecond.toFixed(0)} (${pct(gather)})`.padStart(16),
            gather.perSync.toFixed(1).padStart(8),
          ].join(' | '),
        );
      }
