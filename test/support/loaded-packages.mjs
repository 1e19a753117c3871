/* global process */
/**
 * Preloaded into a gateway process (`node --import <this> dist/cli.js …`): at exit, writes the npm
 * packages whose CommonJS modules were loaded, one a line, to $LOADED_PACKAGES_FILE. ES-module-only
 * packages do not appear; prom-client, aedes and mqtt are CommonJS.
 */
import { writeFileSync } from 'node:fs';
import Module from 'node:module';

const file = process.env.LOADED_PACKAGES_FILE;
if (file)
  process.once('exit', () => {
    const packages = new Set();
    // Module._cache: every CommonJS module loaded so far, by file name (ESM imports of CJS included).
    for (const name of Object.keys(Module._cache)) {
      const match = /.*node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(name);
      if (match) packages.add(match[1]);
    }
    writeFileSync(file, [...packages].sort().join('\n'));
  });
