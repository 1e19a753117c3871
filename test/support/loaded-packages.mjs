/* global process */
/**
 * Preloaded into a gateway process (`node --import <this> dist/cli.js …`): at exit, writes to
 * $LOADED_PACKAGES_FILE, as JSON, the npm packages whose CommonJS modules were loaded (ES-module-only
 * packages do not appear; prom-client, aedes and mqtt are CommonJS) and how many entries mqtt-packet's
 * table of packet-id Buffers holds. It loads nothing itself.
 */
import { writeFileSync } from 'node:fs';
import Module from 'node:module';

const file = process.env.LOADED_PACKAGES_FILE;
if (file)
  process.once('exit', () => {
    const packages = new Set();
    let numberCache = 0;
    // Module._cache: every CommonJS module loaded so far, by file name (ESM imports of CJS included).
    for (const [name, module] of Object.entries(Module._cache)) {
      const match = /.*node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(name);
      if (match) packages.add(match[1]);
      if (name.endsWith('/mqtt-packet/numbers.js')) numberCache = Object.keys(module.exports.cache).length;
    }
    writeFileSync(file, JSON.stringify({ packages: [...packages].sort(), numberCache }));
  });
