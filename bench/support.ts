/**
 * Measuring helpers shared by the benchmarks: process CPU and memory from /proc, percentiles, and a
 * cleanup stack that also runs on Ctrl-C.
 */
import { readFileSync } from 'node:fs';

const CLOCK_TICKS = 100; // USER_HZ: 100 on every mainstream Linux build (getconf CLK_TCK)

/** utime + stime of a process in seconds, all its threads (/proc/<pid>/stat fields 14 and 15). */
export function cpuSeconds(pid: number | undefined): number {
  const { user, system } = cpuTimes(pid);
  return user + system;
}

/** utime and stime of a process in seconds, all its threads: its own code, and the kernel's on its behalf. */
export function cpuTimes(pid: number | undefined): { user: number; system: number } {
  if (pid === undefined) return { user: NaN, system: NaN };
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { user: Number(fields[11]) / CLOCK_TICKS, system: Number(fields[12]) / CLOCK_TICKS };
  } catch {
    return { user: NaN, system: NaN };
  }
}

/** CPU seconds the whole machine has spent busy (all cores), from /proc/stat: to see others' load. */
export function machineCpuSeconds(): number {
  try {
    const [, user, nice, system, , , irq, softirq, steal] = readFileSync('/proc/stat', 'utf8')
      .split('\n', 1)[0]!
      .split(/\s+/)
      .map(Number);
    return (user! + nice! + system! + irq! + softirq! + steal!) / CLOCK_TICKS;
  } catch {
    return NaN;
  }
}

/**
 * Resident memory of a process now (VmRSS) or at its peak so far (VmHWM), in MB; or the anonymous part
 * of it now (RssAnon: heaps, V8's and malloc's), without the mapped files (RssFile: mostly the pages of
 * the node binary it has touched, about 40 MB however small the program).
 */
export function rssMb(pid: number | undefined, field: 'VmRSS' | 'VmHWM' | 'RssAnon'): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1]) / 1024;
  } catch {
    return NaN;
  }
}

/** The median of a run's figures (the machine is shared: one figure is never enough). */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

/** Undone in reverse order when the run ends, fails or is interrupted (gateway, Mosquitto, temp dirs). */
export const cleanups: Array<() => Promise<void> | void> = [];

export async function cleanup(): Promise<void> {
  for (const step of cleanups.splice(0).reverse()) {
    try {
      await step();
    } catch {
      // best effort: the next step still runs
    }
  }
}
process.once('SIGINT', () => void cleanup().finally(() => process.exit(130)));
