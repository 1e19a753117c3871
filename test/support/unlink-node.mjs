/* global process */
// Preloaded (--import) into a gateway started from a copy of node: removes that copy before the CLI
// runs, so that this process can no longer execute its own binary (test/memory.test.ts).
import { unlinkSync } from 'node:fs';

unlinkSync(process.execPath);
