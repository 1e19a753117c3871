/**
 * V8 memory settings for a gateway on a small board, applied by the CLI before it loads anything else,
 * so a plain `mqttsn-bridge` or `node dist/cli.js` gets them without flags in a unit file.
 *
 * - The young generation starts at 1 MB per semi-space and doubles on scavenges that keep much alive,
 *   up to 16 MB per semi-space on 64-bit Node 20+ (32 MB of RSS for the two); loading the gateway's
 *   modules alone grows it to the maximum. `--max-semi-space-size` only works on the command line (V8
 *   sizes the heap before any JavaScript runs), but the growth factor is read at each growth: at 1, the
 *   young generation stays at its starting 2 × 1 MB.
 * - `--optimize-for-size` makes V8 grow the old generation by a small factor over the live heap
 *   instead of up to 4×, so garbage (and the Buffers it keeps alive) is collected before it piles up.
 *
 * Measured on bench/hotpath.ts (docs/architecture.md, Memory): together they take about 75 MB off the
 * RSS under load (170 → 95 MB), for more GC work: about 8% more CPU per message on a quiet machine.
 * `--semi-space-growth-factor=2 --no-optimize-for-size` buys the CPU back.
 *
 * A setting the operator chose on the command line or in NODE_OPTIONS wins: its default is then not
 * applied. A leaf module: it imports nothing of the project, so cli.ts can apply it before the rest of
 * the module graph is even parsed (parsing the gateway's modules alone grows the young generation).
 */
import v8 from 'node:v8';

interface MemoryFlag {
  /** What the CLI sets at run time. */
  readonly flag: string;
  /** Operator flags that mean the same V8 setting is already decided (`_` and `-` are the same to V8). */
  readonly unless: RegExp;
}

export const MEMORY_FLAGS: readonly MemoryFlag[] = [
  {
    flag: '--semi-space-growth-factor=1',
    unless: /--(?:max-semi-space-size|min-semi-space-size|semi-space-growth-factor)\b/,
  },
  { flag: '--optimize-for-size', unless: /--(?:no-)?optimize-for-size\b/ },
];

/** The default flags the operator's own node flags leave to us. */
export function defaultMemoryFlags(execArgv: readonly string[], nodeOptions = ''): string[] {
  const chosen = [...execArgv, nodeOptions].map((flag) => flag.replaceAll('_', '-'));
  return MEMORY_FLAGS.filter(({ unless }) => !chosen.some((flag) => unless.test(flag))).map(
    ({ flag }) => flag,
  );
}

/** What applyMemoryFlags() set in this process (the start-up log says it). */
export const appliedMemoryFlags: string[] = [];

/** Applies the default memory flags the operator did not decide; returns what it applied. */
export function applyMemoryFlags(
  execArgv: readonly string[] = process.execArgv,
  nodeOptions: string | undefined = process.env.NODE_OPTIONS,
): string[] {
  const flags = defaultMemoryFlags(execArgv, nodeOptions);
  for (const flag of flags) v8.setFlagsFromString(flag);
  appliedMemoryFlags.push(...flags);
  return flags;
}
