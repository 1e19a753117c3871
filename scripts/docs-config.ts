/**
 * Regenerates the README's configuration table (between the config-table markers) from
 * the settings table (src/config/table.ts: flags, help and defaults), then lets prettier lay it out.
 * `npm run docs:config`; test/docs.test.ts fails when the README and the settings drift apart.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { TABLE_END, TABLE_START, configTableMarkdown } from '../src/config/defaults.js';

const readmePath = fileURLToPath(new URL('../README.md', import.meta.url));
const readme = readFileSync(readmePath, 'utf8');
const start = readme.indexOf(TABLE_START);
const end = readme.indexOf(TABLE_END);
if (start < 0 || end < start) {
  process.stderr.write(`docs:config: README.md has no ${TABLE_START} … ${TABLE_END} markers\n`);
  process.exit(1);
}
const next = `${readme.slice(0, start + TABLE_START.length)}\n\n${configTableMarkdown()}\n\n${readme.slice(end)}`;
writeFileSync(readmePath, next);
execFileSync(
  process.execPath,
  [fileURLToPath(import.meta.resolve('prettier/bin/prettier.cjs')), '--write', readmePath],
  {
    stdio: 'inherit',
  },
);
