/**
 * Self time of a V8 .cpuprofile (what `node --cpu-prof` writes), by function and by file:
 *
 *   node --import tsx bench/cpuprofile.ts /tmp/gw-prof/CPU.*.cpuprofile [--top 30] [--since-ms 0]
 *
 * For profiling the gateway under the hot-path load, e.g.
 *   node --import tsx bench/hotpath.ts --rounds 1 --seconds 6 --fsync-us 0 \
 *       --gateway-node-args="--cpu-prof --cpu-prof-dir=/tmp/gw-prof"
 * Self time is the time a sample landed in that function itself (not in what it called); "(garbage
 * collector)", "(program)" (native work outside JS, e.g. libuv, LevelDB threads' hand-offs) and "(idle)"
 * are V8's own buckets. `--since-ms` skips the start (loading modules) to see the steady state only.
 * The last table groups self time by module: our own folders (dist/store, dist/uplink, ...), each package
 * of node_modules, node's own JS, GC and (program); a native function (a syscall's binding such as
 * writeBuffer, LevelDB's batch_write) counts for the module that called it, as "native ← <module>".
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: 'string', default: '30' }, 'since-ms': { type: 'string', default: '0' } },
});
const top = Number(values.top);
const sinceUs = Number(values['since-ms']) * 1000;

/** A short file name: the part after node_modules/ or after src/ / dist/, else the base name. */
function shortFile(url: string): string {
  if (url === '') return '(native)';
  const modules = url.lastIndexOf('node_modules/');
  if (modules >= 0) return url.slice(modules + 'node_modules/'.length);
  const own = /\/(src|dist)\/(.*)$/.exec(url);
  if (own !== null) return `${own[1]}/${own[2]}`;
  return url.startsWith('node:') ? url : path.basename(url);
}

/** The module a frame's code belongs to: a package, one of our folders, or node itself. */
function moduleOf(url: string): string {
  const modules = url.lastIndexOf('node_modules/');
  if (modules >= 0) {
    const rest = url.slice(modules + 'node_modules/'.length).split('/');
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  const own = /\/(src|dist)\/(.*)$/.exec(url);
  if (own !== null) {
    const dir = path.dirname(own[2]!);
    return `${own[1]}/${dir === '.' ? path.basename(own[2]!) : dir}`;
  }
  return url.startsWith('node:') ? 'node (JS)' : path.basename(url);
}

function table(title: string, totals: Map<string, number>, all: number): void {
  console.log(`\n${title}`);
  const rows = [...totals].sort((a, b) => b[1] - a[1]).slice(0, top);
  for (const [name, us] of rows)
    console.log(
      `${((100 * us) / all).toFixed(1).padStart(6)}%  ${(us / 1000).toFixed(0).padStart(7)} ms  ${name}`,
    );
}

for (const file of positionals) {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parentOf = new Map<number, ProfileNode>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node);
  /** A native frame's module: the nearest caller with code of its own. */
  const callerModule = (node: ProfileNode): string => {
    for (let up = parentOf.get(node.id); up !== undefined; up = parentOf.get(up.id))
      if (up.callFrame.url !== '') return moduleOf(up.callFrame.url);
    return '(no caller)';
  };
  const byModule = new Map<string, number>();
  const byFunction = new Map<string, number>();
  const byFile = new Map<string, number>();
  let elapsed = 0;
  let counted = 0;
  let idle = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = profile.timeDeltas[i] ?? 0;
    elapsed += delta;
    if (elapsed < sinceUs) continue;
    const node = byId.get(profile.samples[i]!)!;
    const frame = node.callFrame;
    if (frame.functionName === '(idle)') {
      idle += delta;
      continue;
    }
    counted += delta;
    const where = shortFile(frame.url);
    const name = `${frame.functionName || '(anonymous)'} ${where}${frame.url ? `:${frame.lineNumber + 1}` : ''}`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + delta);
    byFile.set(where, (byFile.get(where) ?? 0) + delta);
    const module =
      frame.url !== ''
        ? moduleOf(frame.url)
        : frame.functionName.startsWith('(')
          ? frame.functionName
          : `native ← ${callerModule(node)}`;
    byModule.set(module, (byModule.get(module) ?? 0) + delta);
  }
  console.log(
    `${file}: ${(counted / 1000).toFixed(0)} ms busy, ${(idle / 1000).toFixed(0)} ms idle (shares are of busy time)`,
  );
  table(`self time by function (top ${top})`, byFunction, counted);
  table(`self time by file (top ${top})`, byFile, counted);
  table(`self time by module (top ${top})`, byModule, counted);
}
