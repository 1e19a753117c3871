#!/usr/bin/env node
/**
 * The `mqttsn-bridge` command. Only this, launch-arenas.ts and launch-flags.ts are loaded before the
 * memory settings are applied: glibc's arenas need a re-exec before anything else happens, and an ES
 * module's static imports are all parsed before any of them runs (parsing the gateway's modules alone
 * grows V8's young generation), so everything else comes in by a dynamic import.
 */
import { reexecWithMallocArenas } from './launch-arenas.js';
import { applyMemoryFlags } from './launch-flags.js';

reexecWithMallocArenas();
applyMemoryFlags();
await import('./main.js');
