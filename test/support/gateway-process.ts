import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { fileURLToPath } from 'node:url';
import { MqttSnTestClient, sleep } from '../helpers/index.js';

const CLI_SOURCE = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));
/** The compiled gateway, as installed users run it (built by `npm install` / `npm run build`). */
export const CLI_DIST = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

/** A free UDP port on 127.0.0.1 at this moment. */
export async function freeUdpPort(): Promise<number> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(resolve));
  return port;
}

export interface GatewayProcess {
  readonly udpPort: number;
  readonly pid: number | undefined;
  /** stdout + stderr so far (JSON log lines). */
  output(): string;
  /** Sends a signal and waits for the exit; resolves with the exit code (null when killed by a signal). */
  signal(signal: NodeJS.Signals): Promise<number | null>;
  /** Sends a signal the process keeps running through (SIGHUP). */
  notify(signal: NodeJS.Signals): void;
  /** Starts the same command again (same port, same data dir) and waits until it answers SEARCHGW. */
  restart(): Promise<void>;
}

/**
 * The real gateway as a child process (`mqttsn-bridge` from source), so tests can SIGKILL it.
 * Ready means: it answers SEARCHGW with GWINFO (the readiness contract).
 */
export interface SpawnOptions {
  env?: NodeJS.ProcessEnv;
  /** Extra node flags, e.g. --cpu-prof. */
  nodeArgs?: string[];
  /** Run dist/cli.js instead of the TypeScript source. */
  compiled?: boolean;
  /** The node binary to run it with (default: the one running the tests). */
  node?: string;
}

export async function spawnGateway(
  args: string[],
  { env = {}, nodeArgs = [], compiled = false, node = process.execPath }: SpawnOptions = {},
): Promise<GatewayProcess> {
  const entry = compiled ? [CLI_DIST] : ['--import', 'tsx', CLI_SOURCE];
  const udpPort = await freeUdpPort();
  let child: ChildProcess | undefined;
  let exited: Promise<number | null> = Promise.resolve(null);
  let output = '';
  const start = async (): Promise<void> => {
    child = spawn(node, [...nodeArgs, ...entry, '--listen', `127.0.0.1:${udpPort}`, ...args], {
      env: { ...process.env, MQTTSN_BRIDGE_LOG_LEVEL: 'info', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const proc = child;
    proc.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    proc.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    exited = new Promise((resolve) => proc.once('exit', (code) => resolve(code)));
    await waitReady(
      udpPort,
      () => proc.exitCode !== null || proc.signalCode !== null,
      () => output,
    );
  };
  await start();
  const handle: GatewayProcess = {
    udpPort,
    get pid() {
      return child?.pid;
    },
    output: () => output,
    async signal(signal) {
      child?.kill(signal);
      return exited;
    },
    notify(signal) {
      child?.kill(signal);
    },
    restart: start,
  };
  liveChildren.add(() => child?.kill('SIGKILL'));
  return handle;
}

const liveChildren = new Set<() => void>();
process.once('exit', () => {
  for (const kill of liveChildren) kill();
});

/** Resolves once the gateway on `port` answers SEARCHGW (the readiness contract); throws if it exits. */
export async function waitReady(port: number, hasExited: () => boolean, output: () => string): Promise<void> {
  const probe = await MqttSnTestClient.create({ gatewayPort: port });
  try {
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      if (hasExited()) throw new Error(`gateway exited during start-up:\n${output()}`);
      await probe.send({ type: 'SEARCHGW', radius: 0 });
      try {
        await probe.next('GWINFO', 200);
        return;
      } catch {
        await sleep(50);
      }
    }
    throw new Error(`gateway did not answer SEARCHGW within 20 s:\n${output()}`);
  } finally {
    await probe.close();
  }
}
