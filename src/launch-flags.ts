/**
 * V8 memory settings for a gateway on a small board, applied by the CLI before it loads anything else,
 * so a plain `mqttsn-bridge` or `node dist/cli.js` gets them without flags in a unit file.
 *
 * V8 starts the young generation at 1 MB per semi-space and doubles it on scavenges that keep much
 * alive, up to 16 MB per semi-space on 64-bit Node 20+ (two of them, so 32 MB of RSS). Loading the
 * gateway's modules alone grows it to the maximum. `--max-semi-space-size` only works on the command
 * line (V8 sizes the heap before any JavaScript runs), but the growth factor is read at each growth:
 * set to 1 at run time, the young generation stays at its starting size. Measured on the hot-path
 * bench: ~30 MB less RSS under load for a few percent more scavenging (docs/architecture.md, Memory).
 *
 * An operator's own young-generation flags (on the command line or in NODE_OPTIONS) win: nothing is
 * changed then. A leaf module: it imports nothing of the project, so cli.ts can apply it before the
 * module graph is even parsed (parsing the gateway's modules alone would grow the young generation).
 */
import v8 from 'node:v8';

/** The V8 flags the CLI sets at run time unless the operator chose young-generation flags. */
export const MEMORY_FLAGS: readonly string[] = ['--semi-space-growth-factor=1'];

/** Flags that mean the operator sized the young generation: `_` and `-` are the same to V8. */
const YOUNG_GENERATION_FLAG = /--(?:max-semi-space-size|min-semi-space-size|semi-space-growth-factor)\b/;

/** Whether the operator's node flags already size the young generation. */
export function operatorSizedYoungGeneration(execArgv: readonly string[], nodeOptions = ''): boolean {
  return [...execArgv, nodeOptions].some((flag) => YOUNG_GENERATION_FLAG.test(flag.replaceAll('_', '-')));
}

/** Applies MEMORY_FLAGS unless the operator's flags decide; returns what it applied. */
export function applyMemoryFlags(
  execArgv: readonly string[] = process.execArgv,
  nodeOptions: string | undefined = process.env.NODE_OPTIONS,
): readonly string[] {
  if (operatorSizedYoungGeneration(execArgv, nodeOptions)) return [];
  for (const flag of MEMORY_FLAGS) v8.setFlagsFromString(flag);
  return MEMORY_FLAGS;
}
