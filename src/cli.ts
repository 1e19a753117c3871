#!/usr/bin/env node
/**
 * The `mqttsn-bridge` command. Only this and launch-flags.ts are loaded before V8's memory settings
 * are applied: an ES module's static imports are all parsed before any of them runs, and parsing the
 * gateway's modules alone grows the young generation, so everything else comes in by a dynamic import.
 */
import { applyMemoryFlags } from './launch-flags.js';

applyMemoryFlags();
await import('./main.js');
