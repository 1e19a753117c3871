/**
 * --help and the README's configuration table show every default, taken from the schema: neither
 * may drift from the settings table, src/config/table.ts (`npm run docs:config` regenerates the README's
 * table).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import {
  TABLE_END,
  TABLE_START,
  configTableRows,
  defaultValue,
  formatDefault,
} from '../src/config/defaults.js';
import { envName, settings } from '../src/config/settings.js';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

/** Cells of a markdown table row; `\|` stays inside a cell. */
const cells = (line: string): string[] =>
  line
    .trim()
    .replace(/^\|/, '')
    .replace(/\|$/, '')
    .split(/(?<!\\)\|/)
    .map((c) => c.trim());

test('the README configuration table is the settings table, defaults included', () => {
  const start = readme.indexOf(TABLE_START);
  const end = readme.indexOf(TABLE_END);
  assert.ok(start >= 0 && end > start, 'README.md has the config-table markers');
  const rows = readme
    .slice(start + TABLE_START.length, end)
    .split('\n')
    .filter((l) => l.startsWith('|'))
    .slice(2) // header and separator
    .map(cells);
  assert.deepEqual(rows, configTableRows(), 'README table differs: run `npm run docs:config`');
});

test('defaults come from the schema, including keys inside optional sections', () => {
  assert.deepEqual(defaultValue('listen'), ['0.0.0.0:1883']);
  assert.equal(defaultValue('broker.protocolVersion'), 5);
  assert.equal(defaultValue('advertise.intervalSeconds'), 900);
  assert.equal(defaultValue('advertise.address'), undefined, 'ADVERTISE is off unless an address is given');
  assert.equal(defaultValue('broker.clientId'), undefined);
  assert.throws(() => defaultValue('broker.nope'), /no key broker\.nope/);
});

test('--help shows the default of every setting that has one', () => {
  const help = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', '--help'], {
    encoding: 'utf8',
  });
  assert.equal(help.status, 0, help.stderr);
  for (const s of settings) {
    const expected = formatDefault(s.path);
    const line = `env ${envName(s)}, file key ${s.path}, ${expected === '' ? 'no default' : `default ${expected}`}`;
    assert.ok(help.stdout.includes(line), `--help shows: ${line}`);
  }
  for (const shown of [
    'file key listen, default 0.0.0.0:1883',
    'file key dataDir, default ./data',
    'file key broker.protocolVersion, default 5',
    'file key outbox.maxMessages, default 1000000',
  ]) {
    assert.ok(help.stdout.includes(shown), shown);
  }
});

test('no README command installs the name from the npm registry, and the README names only files that exist', () => {
  const blocks = [...readme.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
  const offending = blocks
    .flatMap((b) => b.split('\n'))
    .filter((l) => /\bnpx mqttsn-bridge\b|npm (install|i) (-g )?mqttsn-bridge(@|\s|$)/.test(l));
  assert.deepEqual(offending, [], 'mqttsn-bridge is not published on the registry by this project');
  assert.doesNotMatch(readme, /DESIGN\.md/);
  const license = readFileSync(new URL('../LICENSE', import.meta.url), 'utf8');
  assert.match(license, /^MIT License\n\nCopyright \(c\) mqttsn-bridge contributors\n/);
});

test('the README links docs/architecture.md, and both name every folder of src/', () => {
  const architecture = readFileSync(new URL('../docs/architecture.md', import.meta.url), 'utf8');
  assert.match(readme, /\[docs\/architecture\.md\]\(docs\/architecture\.md\)/);
  const folders = readdirSync(new URL('../src', import.meta.url), { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name);
  assert.ok(folders.length >= 8, folders.join(', '));
  for (const folder of folders) {
    assert.ok(readme.includes(`\`src/${folder}/\``), `README's architecture table names src/${folder}/`);
    assert.match(
      architecture,
      new RegExp(`^  ${folder}/ `, 'm'),
      `docs/architecture.md's layout names ${folder}/`,
    );
  }
});
