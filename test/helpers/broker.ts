/**
 * MQTT brokers for tests, both on 127.0.0.1 only:
 *
 * - `startAedes`: an in-process aedes 1.x broker (MQTT 3.1.1 only; aedes does not speak MQTT 5).
 * - `startMosquitto`: a real `mosquitto` child process with its own temp config, which can be
 *   stopped, killed and restarted on the same port (broker outage tests).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants, mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { Aedes, type AedesOptions } from 'aedes';
import { canConnect, freePort, LOOPBACK } from './ports.js';
import { tempDir, type TempDir } from './tmp.js';
import { sleep } from './wait.js';

// ---------------------------------------------------------------------------------------------
// aedes
// ---------------------------------------------------------------------------------------------

export interface AedesHandle {
  port: number;
  /** 'mqtt://127.0.0.1:PORT' */
  url: string;
  broker: Aedes;
  /** Close the broker and the server, destroying any client sockets still open. Idempotent. */
  close(): Promise<void>;
}

export interface StartAedesOptions extends AedesOptions {
  /** Listen on this port instead of an ephemeral one (e.g. to bring a broker back on the same port). */
  port?: number;
}

/** Start an in-process aedes broker on a net server at 127.0.0.1 (ephemeral port unless `port`). */
export async function startAedes(opts: StartAedesOptions = {}): Promise<AedesHandle> {
  const { port: requestedPort = 0, ...aedesOptions } = opts;
  const broker = await Aedes.createBroker(aedesOptions);
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    broker.handle(socket);
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(requestedPort, LOOPBACK, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    await new Promise<void>((resolve) => broker.close(() => resolve()));
    throw err;
  }
  const { port } = server.address() as net.AddressInfo;

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await serverClosed;
    })();
    return closing;
  };

  return { port, url: `mqtt://${LOOPBACK}:${port}`, broker, close };
}

// ---------------------------------------------------------------------------------------------
// mosquitto
// ---------------------------------------------------------------------------------------------

const MOSQUITTO_CANDIDATES = [
  '/usr/sbin/mosquitto',
  '/usr/local/sbin/mosquitto',
  '/usr/bin/mosquitto',
  '/usr/local/bin/mosquitto',
  '/opt/homebrew/sbin/mosquitto',
];

function isExecutable(file: string): boolean {
  try {
    accessSync(file, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Path of the mosquitto binary, or null when it is not installed. Honours $MOSQUITTO_BIN, then
 * $PATH, then the usual sbin locations (Debian installs it to /usr/sbin, often not on a user's PATH).
 */
export function mosquittoPath(): string | null {
  const fromEnv = process.env.MOSQUITTO_BIN;
  if (fromEnv) return isExecutable(fromEnv) ? fromEnv : null;
  const dirs = (process.env.PATH ?? '').split(path.delimiter).filter(Boolean);
  for (const candidate of [...dirs.map((dir) => path.join(dir, 'mosquitto')), ...MOSQUITTO_CANDIDATES]) {
    if (isExecutable(candidate)) return candidate;
  }
  return null;
}

/**
 * Gate a test on mosquitto being installed. Returns true when it is. When it is not:
 * on CI ($CI set) this throws, so the test fails (CI must never silently skip broker tests);
 * locally it marks the test skipped with an install hint and returns false — the caller then returns:
 *
 *     if (!requireMosquitto(t)) return;
 */
export function requireMosquitto(t: TestContext): boolean {
  if (mosquittoPath() !== null) return true;
  if (process.env.CI) {
    throw new Error(
      'mosquitto is required on CI but was not found (apt-get install mosquitto, or set MOSQUITTO_BIN)',
    );
  }
  t.skip('mosquitto not installed (apt-get install mosquitto)');
  return false;
}

export interface StartMosquittoOptions {
  /** Listen on this port; by default a free ephemeral port is picked (retrying on EADDRINUSE). */
  port?: number;
  /**
   * Enable persistence in a private directory (kept until the test process exits). The database is
   * written on stop() and after every change (autosave_on_changes, checked once a second), so retained
   * messages and persistent sessions survive stop()/kill() + restart().
   */
  persistence?: boolean;
  /** Like `persistence`, but in this directory (which the caller removes, after stopping the broker). */
  persistenceDir?: string;
  /** Appended verbatim to the generated mosquitto.conf. */
  extraConfig?: string;
  /** Log every packet (log_type all) instead of the default error/warning/notice/information. */
  verboseLog?: boolean;
  /** How long to wait for the broker to accept connections (default 10000 ms). */
  startTimeoutMs?: number;
}

export interface MosquittoHandle {
  readonly port: number;
  /** 'mqtt://127.0.0.1:PORT' */
  readonly url: string;
  /** Pid of the current process (changes on restart); undefined while not running. */
  readonly pid: number | undefined;
  readonly running: boolean;
  /** Where the persistence database (mosquitto.db) lives, when persistence is on. */
  readonly persistenceDir: string | undefined;
  /** SIGTERM and wait for exit (SIGKILL after 5 s). No-op if not running. Never throws. */
  stop(): Promise<void>;
  /** SIGKILL and wait for exit: a crash, no persistence flush on the way out. No-op if not running. */
  kill(): Promise<void>;
  /** Start again on the same port (and persistence dir). Stops the current process first if running. */
  restart(): Promise<void>;
  /** Everything mosquitto wrote to stdout/stderr so far, across restarts (for debugging failures). */
  logs(): string;
}

/** Live mosquitto children, SIGKILLed if the test process exits without stopping them. */
const liveChildren = new Set<ChildProcess>();
/** Config (and private persistence) dirs, removed when the test process exits. */
const configDirs = new Set<TempDir>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of liveChildren) child.kill('SIGKILL');
    for (const dir of configDirs) {
      try {
        dir.cleanup();
      } catch {
        // best effort: never turn a passing run into a failure at exit
      }
    }
  });
}

/**
 * Make sure mosquitto `pid` dies (and `dir` is removed) when this process dies without stopping it,
 * even by SIGKILL or a signal, which skip 'exit' handlers (e.g. `timeout` around a hanging test run).
 * A `sh` blocks reading a pipe from us; the kernel closes the pipe when we die, and `read` returns.
 * The watchdog is killed when mosquitto exits normally.
 */
function spawnWatchdog(pid: number, dir: string): ChildProcess | undefined {
  if (process.platform === 'win32') return undefined;
  const script = 'read _; kill -9 "$1" 2>/dev/null; rm -rf "$2"';
  const dog = spawn('/bin/sh', ['-c', script, 'mosquitto-watchdog', String(pid), dir], {
    stdio: ['pipe', 'ignore', 'ignore'],
  });
  dog.on('error', () => {}); // no /bin/sh: just no watchdog
  dog.unref();
  (dog.stdin as net.Socket | null)?.unref();
  return dog;
}

const MAX_LOG_CHARS = 1_000_000;
/** mosquitto logs this (notice level) once its listeners are bound. */
const READY_LINE = /mosquitto version \S+ running/;

function buildConfig(port: number, opts: StartMosquittoOptions, persistenceDir: string | undefined): string {
  const lines = [
    `listener ${port} ${LOOPBACK}`,
    'allow_anonymous true',
    'log_dest stderr',
    'log_timestamp_format %H:%M:%S',
    'connection_messages true',
    // Never drop QoS 1/2 messages for a subscriber that falls behind (the default queue is 1000): a
    // collector slowed by a busy CI machine must not make a replay look lossy.
    'max_queued_messages 0',
  ];
  if (opts.verboseLog) lines.push('log_type all');
  // As root, mosquitto drops privileges to user "mosquitto", which cannot write our 0700 temp dirs.
  if (process.getuid?.() === 0) lines.push(`user ${os.userInfo().username}`);
  if (persistenceDir !== undefined) {
    lines.push(
      'persistence true',
      `persistence_location ${path.resolve(persistenceDir)}${path.sep}`,
      'autosave_on_changes true',
      'autosave_interval 1',
    );
  } else {
    lines.push('persistence false');
  }
  if (opts.extraConfig) lines.push(opts.extraConfig);
  return lines.join('\n') + '\n';
}

/**
 * Spawn `mosquitto -c <temp config>` listening on 127.0.0.1 and wait until it accepts TCP
 * connections. Throws when mosquitto is not installed (gate tests with requireMosquitto first).
 */
export async function startMosquitto(opts: StartMosquittoOptions = {}): Promise<MosquittoHandle> {
  const binary = mosquittoPath();
  if (binary === null) throw new Error('mosquitto not installed (apt-get install mosquitto)');
  installExitHook();

  const confDir: TempDir = tempDir('mqttsn-mosquitto-');
  configDirs.add(confDir);
  const persistenceDir =
    opts.persistenceDir ?? (opts.persistence ? path.join(confDir.path, 'data') : undefined);
  if (persistenceDir !== undefined) mkdirSync(persistenceDir, { recursive: true });
  let log = '';
  const appendLog = (text: string): void => {
    log += text;
    if (log.length > MAX_LOG_CHARS) log = log.slice(-MAX_LOG_CHARS);
  };

  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  /** Send `signal` to the running child and wait for it to exit, SIGKILLing it after `graceMs`. */
  const signalAndWait = async (signal: NodeJS.Signals, graceMs: number): Promise<void> => {
    const proc = child;
    if (proc === undefined) return;
    const waiting = exited;
    proc.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      waiting.then(() => false),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), graceMs))),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      appendLog(`--- [harness] no exit ${graceMs} ms after ${signal}, sending SIGKILL\n`);
      proc.kill('SIGKILL');
      await waiting;
    }
  };

  /** Spawn on `port`; resolves once it accepts connections, rejects (with logs) if it exits first. */
  const spawnOn = async (port: number): Promise<void> => {
    const confFile = path.join(confDir.path, 'mosquitto.conf');
    writeFileSync(confFile, buildConfig(port, opts, persistenceDir));
    appendLog(`--- [harness] starting ${binary} on ${LOOPBACK}:${port}\n`);
    const proc = spawn(binary, ['-c', confFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    liveChildren.add(proc);
    const watchdog = proc.pid === undefined ? undefined : spawnWatchdog(proc.pid, confDir.path);
    let exitReason: string | undefined;
    exited = new Promise<void>((resolve) => {
      // 'close' rather than 'exit': it comes after stdout/stderr are drained, so logs are complete.
      proc.once('close', (code, signal) => {
        exitReason = `mosquitto exited (code ${code}, signal ${signal})`;
        appendLog(`--- [harness] ${exitReason}\n`);
        liveChildren.delete(proc);
        watchdog?.kill();
        if (child === proc) child = undefined;
        resolve();
      });
    });
    proc.once('error', (err) => {
      exitReason = `mosquitto failed to spawn: ${err.message}`;
      appendLog(`--- [harness] ${exitReason}\n`);
    });
    proc.stdout?.setEncoding('utf8').on('data', appendLog);
    proc.stderr?.setEncoding('utf8').on('data', appendLog);
    // A forgotten broker must not keep the test process alive; the exit hook kills it.
    proc.unref();
    (proc.stdout as net.Socket | null)?.unref();
    (proc.stderr as net.Socket | null)?.unref();

    // Ready = mosquitto says so (it has bound its listener) and the port accepts connections. The
    // log line matters: a port that accepts could belong to someone else while mosquitto fails to bind.
    const logStart = log.length;
    const timeoutMs = opts.startTimeoutMs ?? 10_000;
    const deadline = Date.now() + timeoutMs;
    try {
      for (;;) {
        if (exitReason !== undefined) throw new Error(`${exitReason}\n${log.slice(logStart)}`);
        if (READY_LINE.test(log.slice(logStart)) && (await canConnect(port))) break;
        if (Date.now() >= deadline) {
          throw new Error(
            `mosquitto not ready on port ${port} within ${timeoutMs} ms\n${log.slice(logStart)}`,
          );
        }
        await sleep(25);
      }
    } catch (err) {
      await signalAndWait('SIGKILL', 5000);
      throw err;
    }
  };

  const isAddressInUse = (err: unknown): boolean =>
    err instanceof Error && /address already in use/i.test(err.message);

  let port: number;
  for (let attempt = 1; ; attempt++) {
    port = opts.port ?? (await freePort());
    try {
      await spawnOn(port);
      break;
    } catch (err) {
      if (opts.port === undefined && attempt < 5 && isAddressInUse(err)) continue;
      configDirs.delete(confDir);
      confDir.cleanup();
      throw err;
    }
  }

  const restartOnSamePort = async (): Promise<void> => {
    await signalAndWait('SIGTERM', 5000);
    // The old listener is gone once the process has exited; mosquitto binds with SO_REUSEADDR,
    // but retry briefly in case the kernel has not released the port yet.
    for (let attempt = 1; ; attempt++) {
      try {
        await spawnOn(port);
        return;
      } catch (err) {
        if (attempt >= 20 || !isAddressInUse(err)) throw err;
        await sleep(100);
      }
    }
  };

  return {
    port,
    url: `mqtt://${LOOPBACK}:${port}`,
    get pid() {
      return child?.pid;
    },
    get running() {
      return child !== undefined;
    },
    persistenceDir,
    stop: () => signalAndWait('SIGTERM', 5000),
    kill: () => signalAndWait('SIGKILL', 5000),
    restart: restartOnSamePort,
    logs: () => log,
  };
}
