/**
 * The layer rules of docs/architecture.md, checked on the imports of src/**\/*.ts (static, dynamic
 * and type-only imports alike: a type import still ties one layer to another's vocabulary):
 *
 * - no import circles;
 * - codec/ and topics/ import nothing of the project outside themselves (pure leaves);
 * - gateway/ imports neither observe/ nor uplink/ (the device side does not know who watches or
 *   where messages go);
 * - store/ imports neither gateway/ nor codec/ (persistence holds bytes and records, not packets);
 * - config/ does not import topics/ (settings are validated on their own; topic rules live in topics/).
 *
 * Imports are read with the TypeScript compiler's own scanner (ts.preProcessFile), already a
 * devDependency: no extra tool (madge, dependency-cruiser) for a check this small.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, posix, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const SRC = fileURLToPath(new URL('../src', import.meta.url));

/**
 * Violations allowed for now: none. The list exists so that a rule can be brought in before the
 * code meets it; the test fails on any violation not listed, and on a listed one that no longer
 * exists (so the list can only shrink).
 */
const KNOWN_VIOLATIONS: readonly string[] = [];

interface Rule {
  from: string;
  forbidden: (target: string) => boolean;
}

const inside = (dir: string) => (path: string) => path.startsWith(`${dir}/`);

const RULES: Rule[] = [
  { from: 'codec', forbidden: (target) => !inside('codec')(target) },
  { from: 'topics', forbidden: (target) => !inside('topics')(target) },
  { from: 'gateway', forbidden: (target) => inside('observe')(target) || inside('uplink')(target) },
  { from: 'store', forbidden: (target) => inside('gateway')(target) || inside('codec')(target) },
  { from: 'config', forbidden: inside('topics') },
];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [path] : [];
  });
}

/** Project-relative paths (e.g. `gateway/session.ts`) each file imports from src/. */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sourceFiles(SRC)) {
    const name = relative(SRC, file).split('\\').join('/');
    const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
    const targets = importedFiles
      .map((ref) => ref.fileName)
      .filter((spec) => spec.startsWith('.'))
      .map((spec) => posix.normalize(posix.join(posix.dirname(name), spec)).replace(/\.js$/, '.ts'));
    graph.set(name, [...new Set(targets)]);
  }
  return graph;
}

/** Every elementary circle, written from its smallest member, each once. */
function circles(graph: Map<string, string[]>): string[] {
  const found = new Set<string>();
  // Tarjan's strongly connected components; each component of more than one file (or a file
  // importing itself) is reported by one shortest circle through its smallest member.
  let index = 0;
  const indices = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const visit = (node: string): void => {
    indices.set(node, index);
    low.set(node, index++);
    stack.push(node);
    onStack.add(node);
    for (const next of graph.get(node) ?? []) {
      if (!graph.has(next)) continue;
      if (!indices.has(next)) {
        visit(next);
        low.set(node, Math.min(low.get(node)!, low.get(next)!));
      } else if (onStack.has(next)) low.set(node, Math.min(low.get(node)!, indices.get(next)!));
    }
    if (low.get(node) !== indices.get(node)) return;
    const component: string[] = [];
    for (;;) {
      const member = stack.pop()!;
      onStack.delete(member);
      component.push(member);
      if (member === node) break;
    }
    const self = graph.get(node)?.includes(node) ?? false;
    if (component.length > 1 || self) found.add(`circle: ${shortestCircle(graph, component)}`);
  };
  for (const node of [...graph.keys()].sort()) if (!indices.has(node)) visit(node);
  return [...found];
}

/** The shortest way from the component's smallest member back to itself, as `a → b → a`. */
function shortestCircle(graph: Map<string, string[]>, component: string[]): string {
  const members = new Set(component);
  const start = [...component].sort()[0]!;
  const previous = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const node = queue.shift()!;
    for (const next of graph.get(node) ?? []) {
      if (!members.has(next)) continue;
      if (next === start) {
        const path = [node];
        while (path[0] !== start) path.unshift(previous.get(path[0]!)!);
        return [...path, start].join(' → ');
      }
      if (!previous.has(next) && next !== start) {
        previous.set(next, node);
        queue.push(next);
      }
    }
  }
  return start;
}

function ruleViolations(graph: Map<string, string[]>): string[] {
  const found: string[] = [];
  for (const [file, targets] of graph) {
    for (const rule of RULES.filter((r) => inside(r.from)(file))) {
      for (const target of targets) if (rule.forbidden(target)) found.push(`${file} imports ${target}`);
    }
  }
  return found;
}

test('src/ has no import circles and keeps the layer rules (apart from the listed, known ones)', () => {
  const graph = importGraph();
  assert.ok(graph.size > 50, `read ${graph.size} source files`);
  const violations = [...circles(graph), ...ruleViolations(graph)].sort();
  const known = new Set(KNOWN_VIOLATIONS);
  assert.deepEqual(
    violations.filter((v) => !known.has(v)),
    [],
    'new layer violations (fix them; see docs/architecture.md)',
  );
  assert.deepEqual(
    KNOWN_VIOLATIONS.filter((v) => !violations.includes(v)),
    [],
    'listed violations that no longer exist: remove them from KNOWN_VIOLATIONS',
  );
});

test('the checker sees circles and forbidden imports (it can fail)', () => {
  const graph = new Map<string, string[]>([
    ['gateway/a.ts', ['gateway/b.ts', 'observe/metrics.ts']],
    ['gateway/b.ts', ['gateway/c.ts']],
    ['gateway/c.ts', ['gateway/a.ts']],
    ['codec/x.ts', ['time.ts']],
    ['store/s.ts', ['codec/x.ts', 'store/t.ts']],
    ['store/t.ts', []],
    ['config/k.ts', ['topics/n.ts', 'gateway/a.ts']],
    ['topics/n.ts', ['topics/m.ts']],
    ['topics/m.ts', []],
    ['observe/metrics.ts', []],
    ['time.ts', []],
  ]);
  assert.deepEqual(circles(graph), ['circle: gateway/a.ts → gateway/b.ts → gateway/c.ts → gateway/a.ts']);
  assert.deepEqual(ruleViolations(graph).sort(), [
    'codec/x.ts imports time.ts',
    'config/k.ts imports topics/n.ts',
    'gateway/a.ts imports observe/metrics.ts',
    'store/s.ts imports codec/x.ts',
  ]);
});

/** Classes longer than this in the device side or the wiring point are a sign of one class doing many jobs. */
const MAX_CLASS_LINES = 250;

/** Each class declared in `file`, with its length in lines (declaration to closing brace). */
function classLengths(file: string): Array<{ name: string; lines: number }> {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const found: Array<{ name: string; lines: number }> = [];
  const visit = (node: ts.Node): void => {
    if (ts.isClassDeclaration(node)) {
      const start = source.getLineAndCharacterOfPosition(node.getStart(source)).line;
      const end = source.getLineAndCharacterOfPosition(node.getEnd()).line;
      found.push({ name: node.name?.text ?? '(anonymous)', lines: end - start + 1 });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

test(`no class in src/gateway/ or src/bridge.ts is over ${MAX_CLASS_LINES} lines`, () => {
  const files = [
    ...readdirSync(join(SRC, 'gateway'), { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.ts'))
      .map((f) => join(SRC, 'gateway', f)),
    join(SRC, 'bridge.ts'),
  ];
  const classes = files.flatMap((file) =>
    classLengths(file).map((c) => ({ ...c, file: relative(SRC, file) })),
  );
  assert.ok(
    classes.some((c) => c.name === 'Gateway'),
    'the checker finds the Gateway class',
  );
  const tooLong = classes
    .filter((c) => c.lines > MAX_CLASS_LINES)
    .map((c) => `${c.file} ${c.name}: ${c.lines}`);
  assert.deepEqual(tooLong, []);
});
