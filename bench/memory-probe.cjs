/* global process, require */
/* eslint-disable @typescript-eslint/no-require-imports -- CommonJS: bare node loads no ES module loader */
/**
 * Preloaded by bench/memory-floor.ts into the process it measures (`node --require <this> …`; CommonJS,
 * so bare node does not load the ES module loader for it): on
 * SIGUSR2 it writes to $MEMORY_PROBE_FILE, as JSON, `process.memoryUsage()`, V8's heap statistics and
 * each heap space's used / committed / resident bytes. It loads only node:v8 and node:fs (both in
 * node's start-up snapshot), so it adds nothing measurable to what it measures.
 */
const { writeFileSync } = require('node:fs');
const v8 = require('node:v8');

const file = process.env.MEMORY_PROBE_FILE;
if (file)
  process.on('SIGUSR2', () => {
    const spaces = v8.getHeapSpaceStatistics().map((space) => ({
      name: space.space_name,
      used: space.space_used_size,
      committed: space.space_size,
      resident: space.physical_space_size,
    }));
    writeFileSync(
      file,
      JSON.stringify({ usage: process.memoryUsage(), heap: v8.getHeapStatistics(), spaces }),
    );
  });
