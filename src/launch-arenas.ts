/**
 * glibc's malloc arenas for a plain `mqttsn-bridge` start (docs/architecture.md, Memory).
 *
 * Every thread that mallocs gets an arena of its own, up to 8 per core, and an arena keeps what was
 * freed in it: V8's four helper threads (compiling, GC) and the libuv threadpool (LevelDB's writes and
 * its memtable) held 6–21 MB of RSS in arenas of their own at the end of a 200-device load.
 * `MALLOC_ARENA_MAX=2` makes them share one arena beside the main thread's: 2.5–5.4 MB, and the RSS
 * 3–10 MB lower (bench/memory-floor.ts; docs/architecture.md, Memory). glibc reads it only when the
 * process starts, so the systemd unit, the image and the .deb launcher set it in the environment; for
 * every other launch the CLI sets it and replaces itself once with the same node, flags and arguments
 * (`process.execve`: same pid, so systemd, signals and a supervisor see one process), before it has
 * opened or loaded anything.
 *
 * `process.execve` exists from Node 22.15 / 23.11; Node 20 starts with glibc's default arenas. An
 * operator's own MALLOC_ARENA_MAX (any value) wins and the CLI does not re-exec. A leaf module: cli.ts
 * runs it before the rest of the program is even parsed.
 *
 * A failed `process.execve` does not throw: Node has already run its exit hooks and aborts the process
 * (SIGABRT, exit 134). So before it, the CLI checks that this node can be executed at all, by running
 * `node --version` (about 10 ms): where it cannot (qemu-user running a foreign node without
 * binfmt_misc, a seccomp filter or a sandbox without execve, the binary moved or deleted since the
 * start), the gateway starts with glibc's default arenas and its ready line says `mallocArenaMax: null`.
 */
import { spawnSync } from 'node:child_process';

/** What the CLI sets when the environment does not say. */
export const DEFAULT_MALLOC_ARENA_MAX = '2';

/** The device client and the admin tools are short-lived: a second start would only slow them down. */
const TOOLS = new Set([
  ...['pub', 'sub', 'ctl', 'dead-letters', 'check-config', 'help', 'version'],
  ...['--help', '-h', '--version'],
]);

type Execve = (file: string, args: string[], env: NodeJS.ProcessEnv) => never;

/** Whether this process can execute `file`: a child runs `file --version` and exits 0. */
export function canExecute(file: string): boolean {
  try {
    const child = spawnSync(file, ['--version'], { stdio: 'ignore', timeout: 10_000 });
    return child.error === undefined && child.status === 0;
  } catch {
    return false; // child processes refused (Node's permission model)
  }
}

/** The environment to re-exec with, or undefined when this process should run as it is. */
export function arenaEnvironment(
  env: NodeJS.ProcessEnv,
  argv: readonly string[],
  platform: NodeJS.Platform,
): NodeJS.ProcessEnv | undefined {
  if (platform !== 'linux' || env.MALLOC_ARENA_MAX !== undefined) return undefined;
  if (argv[0] !== undefined && TOOLS.has(argv[0])) return undefined;
  return { ...env, MALLOC_ARENA_MAX: DEFAULT_MALLOC_ARENA_MAX };
}

/**
 * Replaces this process with itself under MALLOC_ARENA_MAX=2 when Node can and the operator did not
 * choose; returns (without re-exec) otherwise, or when this node cannot be executed again (the
 * gateway then runs as it is).
 */
export function reexecWithMallocArenas(
  execve: Execve | undefined = (process as { execve?: Execve }).execve?.bind(process),
  executable: (file: string) => boolean = canExecute,
): void {
  const env = arenaEnvironment(process.env, process.argv.slice(2), process.platform);
  if (env === undefined || execve === undefined || !executable(process.execPath)) return;
  try {
    execve(process.execPath, [process.execPath, ...process.execArgv, ...process.argv.slice(1)], env);
  } catch {
    // Refused before the exec (a permission model, a worker): start with glibc's defaults.
  }
}
