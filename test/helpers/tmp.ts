/**
 * Temporary directories under os.tmpdir() that tests can remove again.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';

export interface TempDir {
  /** Absolute path of the new, empty directory. */
  readonly path: string;
  /** Remove the directory and everything in it. Idempotent; never throws for a missing directory. */
  cleanup(): void;
}

/** Create a fresh directory `<os.tmpdir()>/<prefix>XXXXXX`. */
export function tempDir(prefix = 'mqttsn-test-'): TempDir {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  return {
    path: dir,
    cleanup() {
      rmSync(dir, { recursive: true, force: true, maxRetries: 3, retryDelay: 50 });
    },
  };
}

/** Directories whose removal failed in a `t.after` hook; retried when the process exits. */
const retryAtExit = new Set<TempDir>();

function removeAtExit(dir: TempDir): void {
  if (retryAtExit.size === 0) {
    process.once('exit', () => {
      for (const d of retryAtExit) {
        try {
          d.cleanup();
        } catch {
          // best effort
        }
      }
    });
  }
  retryAtExit.add(dir);
}

/**
 * Create a temp directory that is removed when the test `t` finishes (via `t.after`); returns its path.
 *
 * Mind the order: node:test runs `t.after` hooks in registration order (first in, first out), and a
 * hook that throws skips the hooks after it. So the directory is removed *before* anything registered
 * later is closed (a LevelDB store, a broker). That is harmless on Linux (open files survive unlink,
 * and classic-level closes fine), but a writer racing the removal can make it fail (ENOTEMPTY). So
 * this hook never throws: a failed removal is reported with `t.diagnostic` and retried at process
 * exit. To control the order exactly, use `tempDir()` and clean up after closing the writer.
 */
export function withTempDir(t: TestContext, prefix?: string): string {
  const dir = tempDir(prefix);
  t.after(() => {
    try {
      dir.cleanup();
    } catch (err) {
      t.diagnostic(`withTempDir: could not remove ${dir.path} yet (${String(err)}); retrying at exit`);
      removeAtExit(dir);
    }
  });
  return dir.path;
}
