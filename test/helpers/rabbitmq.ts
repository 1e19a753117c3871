/**
 * A two-node RabbitMQ cluster on 127.0.0.1 for tests, as child processes: its own epmd on a free
 * loopback port (ERL_EPMD_PORT), its own node names, Erlang cookie, AMQP / MQTT / distribution ports,
 * config, plugins file, data and log dirs, all under one temp dir. The nodes find each other by
 * classic_config peer discovery; the MQTT plugin is enabled through the plugins file (offline).
 *
 * Nothing of the system's RabbitMQ is used but the binaries: HOME (the cookie), the env file and the
 * config all point into the temp dir, so a system service, if one runs, is not touched.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, chmodSync, constants as fsConstants, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { canConnect, freePort, LOOPBACK } from './ports.js';
import { tempDir, type TempDir } from './tmp.js';
import { sleep } from './wait.js';

/** Debian's package puts the real scripts here; /usr/sbin's wrappers switch to the rabbitmq user. */
const RABBITMQ_BIN = process.env.RABBITMQ_BIN ?? '/usr/lib/rabbitmq/bin';
const EPMD_CANDIDATES = ['/usr/bin/epmd', '/usr/lib/erlang/bin/epmd'];

const INSTALL_HINT =
  'RabbitMQ is required for these tests and was not found: apt-get install -y rabbitmq-server ' +
  '(then stop its system service: service rabbitmq-server stop), or set RABBITMQ_BIN to the dir ' +
  'holding rabbitmq-server and rabbitmqctl';

function executable(file: string): boolean {
  try {
    accessSync(file, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Throws (so the test fails, never skips) with an install hint when RabbitMQ or epmd is missing. */
export function requireRabbitmq(): void {
  if (!executable(path.join(RABBITMQ_BIN, 'rabbitmq-server')) || epmdPath() === undefined)
    throw new Error(INSTALL_HINT);
}

function epmdPath(): string | undefined {
  return EPMD_CANDIDATES.find(executable);
}

export interface RabbitNode {
  /** Erlang node name, e.g. 'rmq0-1234@localhost'. */
  readonly name: string;
  readonly mqttPort: number;
  /** 'mqtt://127.0.0.1:PORT' */
  readonly url: string;
  readonly running: boolean;
  /** Everything the node printed so far (across restarts), for failure messages. */
  logs(): string;
}

export interface RabbitCluster {
  readonly nodes: readonly [RabbitNode, RabbitNode];
  /** The node listening on this MQTT URL. */
  node(url: string): RabbitNode;
  /** Graceful stop (SIGTERM), SIGKILL after 20 s. No-op if not running. */
  stop(node: RabbitNode): Promise<void>;
  /** A crash: SIGKILL, nothing flushed. */
  kill(node: RabbitNode): Promise<void>;
  /** Start a stopped node again (same name, ports and data): it rejoins the cluster. */
  start(node: RabbitNode): Promise<void>;
  /** `rabbitmqctl -n <node> ...args`; throws with its output when it fails. */
  ctl(node: RabbitNode, ...args: string[]): string;
  /** Stop both nodes and epmd, remove the temp dir. Idempotent. */
  close(): Promise<void>;
}

interface NodeState extends RabbitNode {
  dir: string;
  env: NodeJS.ProcessEnv;
  child: ChildProcess | undefined;
  exited: Promise<void>;
  output: string;
}

const MAX_LOG_CHARS = 200_000;
const START_TIMEOUT_MS = 90_000;
/** Live children (nodes, epmd), SIGKILLed if the test process exits without closing the cluster. */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) signalGroup(child, 'SIGKILL');
});

/**
 * Kills process group `pid` when this process dies without closing the cluster, even by SIGKILL (which skips 'exit'
 * handlers): a `sh` blocks reading a pipe from us, and the kernel closes the pipe when we die.
 */
function watchdog(pid: number): ChildProcess {
  const dog = spawn(
    '/bin/sh',
    ['-c', 'read _; kill -9 -- "-$1" 2>/dev/null', 'rabbitmq-watchdog', String(pid)],
    {
      stdio: ['pipe', 'ignore', 'ignore'],
    },
  );
  dog.on('error', () => {});
  dog.unref();
  (dog.stdin as unknown as { unref(): void } | null)?.unref();
  return dog;
}

/**
 * Children run in their own process group: rabbitmq-server is a shell that runs the Erlang VM as its
 * child (and forwards SIGTERM as a graceful stop), so only a signal to the group reaches the VM.
 */
function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

function track(child: ChildProcess, onOutput: (text: string) => void): Promise<void> {
  live.add(child);
  const dog = child.pid === undefined ? undefined : watchdog(child.pid);
  child.stdout?.on('data', (chunk: Buffer) => onOutput(chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => onOutput(chunk.toString()));
  return new Promise((resolve) =>
    child.once('close', () => {
      live.delete(child);
      dog?.kill();
      resolve();
    }),
  );
}

/** Ports the kernel gives us that are also usable as the base of rabbitmqctl's 10-port range. */
async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) {
    const port = await freePort();
    if (port < 65_000) ports.add(port);
  }
  return [...ports];
}

/** Start a two-node cluster and wait until both nodes run, clustered, with MQTT listening. */
export async function startRabbitCluster(): Promise<RabbitCluster> {
  requireRabbitmq();
  const root: TempDir = tempDir('mqttsn-rabbitmq-');
  const tag = `${process.pid}-${Math.random().toString(36).slice(2, 6)}`;
  const [epmdPort, ctlPort, ...nodePorts] = await freePorts(2 + 3 * 2);
  // The CLI tools read the cookie from $HOME, the nodes too: one cookie for all, readable only by us.
  writeFileSync(path.join(root.path, '.erlang.cookie'), `mqttsn-test-${tag}`);
  chmodSync(path.join(root.path, '.erlang.cookie'), 0o400);
  writeFileSync(path.join(root.path, 'empty.env'), '');
  const baseEnv: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: root.path,
    ERL_EPMD_PORT: String(epmdPort),
    ERL_EPMD_ADDRESS: LOOPBACK,
    RABBITMQ_CONF_ENV_FILE: path.join(root.path, 'empty.env'),
    RABBITMQ_CTL_DIST_PORT_MIN: String(ctlPort),
    RABBITMQ_CTL_DIST_PORT_MAX: String(ctlPort! + 10),
  };

  let epmdOutput = '';
  const epmd = spawn(epmdPath()!, ['-port', String(epmdPort), '-address', LOOPBACK], {
    env: baseEnv,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const epmdExited = track(epmd, (text) => (epmdOutput += text));

  const names = [0, 1].map((i) => `rmq${i}-${tag}@localhost`);
  const nodes = [0, 1].map((i): NodeState => {
    const [amqpPort, mqttPort, distPort] = nodePorts.slice(i * 3, i * 3 + 3) as [number, number, number];
    const dir = path.join(root.path, `node${i}`);
    mkdirSync(dir);
    writeFileSync(
      path.join(dir, 'rabbitmq.conf'),
      [
        `listeners.tcp.1 = ${LOOPBACK}:${amqpPort}`,
        `mqtt.listeners.tcp.1 = ${LOOPBACK}:${mqttPort}`,
        'cluster_formation.peer_discovery_backend = classic_config',
        ...names.map((name, k) => `cluster_formation.classic_config.nodes.${k + 1} = ${name}`),
        // Tests fill queues fast on a loaded machine: no flow-control pauses for disk or memory.
        'disk_free_limit.absolute = 1MB',
        'vm_memory_high_watermark.relative = 0.9',
        '',
      ].join('\n'),
    );
    writeFileSync(path.join(dir, 'enabled_plugins'), '[rabbitmq_mqtt].\n');
    const env: NodeJS.ProcessEnv = {
      ...baseEnv,
      RABBITMQ_NODENAME: names[i],
      RABBITMQ_NODE_IP_ADDRESS: LOOPBACK,
      RABBITMQ_NODE_PORT: String(amqpPort),
      RABBITMQ_DIST_PORT: String(distPort),
      RABBITMQ_CONFIG_FILE: path.join(dir, 'rabbitmq.conf'),
      RABBITMQ_ADVANCED_CONFIG_FILE: path.join(dir, 'advanced.config'),
      RABBITMQ_ENABLED_PLUGINS_FILE: path.join(dir, 'enabled_plugins'),
      RABBITMQ_MNESIA_BASE: path.join(dir, 'mnesia'),
      RABBITMQ_LOG_BASE: path.join(dir, 'log'),
      RABBITMQ_PID_FILE: path.join(dir, 'rabbitmq.pid'),
      // Distribution on loopback only (epmd already is).
      RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
    };
    const node: NodeState = {
      name: names[i]!,
      mqttPort,
      url: `mqtt://${LOOPBACK}:${mqttPort}`,
      get running() {
        return node.child !== undefined;
      },
      logs: () => node.output,
      dir,
      env,
      child: undefined,
      exited: Promise.resolve(),
      output: '',
    };
    return node;
  });

  const spawnNode = (node: NodeState): void => {
    const child = spawn(path.join(RABBITMQ_BIN, 'rabbitmq-server'), [], {
      env: node.env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    node.child = child;
    node.exited = track(child, (text) => {
      node.output = (node.output + text).slice(-MAX_LOG_CHARS);
    }).then(() => {
      if (node.child === child) node.child = undefined;
    });
  };

  const ctl = (node: RabbitNode, ...args: string[]): string => {
    const result = spawnSync(path.join(RABBITMQ_BIN, 'rabbitmqctl'), ['-n', node.name, ...args], {
      env: baseEnv,
      encoding: 'utf8',
      timeout: 60_000,
    });
    if (result.status !== 0)
      throw new Error(
        `rabbitmqctl ${args.join(' ')} failed (${result.status}): ${result.stderr}${result.stdout}`,
      );
    return result.stdout;
  };

  /** Until each of `targets` listens for MQTT (it booted); `clustered`: and the cluster has both nodes. */
  const waitRunning = async (targets: NodeState[], { clustered = true } = {}): Promise<void> => {
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      const dead = targets.find((n) => n.child === undefined);
      if (dead !== undefined)
        throw new Error(`RabbitMQ node ${dead.name} exited while starting:\n${dead.logs()}`);
      const listening = await Promise.all(targets.map((n) => canConnect(n.mqttPort)));
      if (listening.every(Boolean)) break;
      if (Date.now() > deadline)
        throw new Error(
          `RabbitMQ did not listen for MQTT within ${START_TIMEOUT_MS} ms:\n` +
            targets.map((n) => `--- ${n.name}\n${n.logs().slice(-3000)}`).join('\n'),
        );
      await sleep(250);
    }
    // MQTT listens once the node booted; the cluster must have both nodes running.
    while (clustered) {
      const status = JSON.parse(ctl(nodes[0]!, 'cluster_status', '--formatter', 'json')) as {
        running_nodes?: string[];
      };
      if (nodes.every((n) => status.running_nodes?.includes(n.name))) return;
      if (Date.now() > deadline) throw new Error(`RabbitMQ cluster did not form: ${JSON.stringify(status)}`);
      await sleep(250);
    }
  };

  const signalAndWait = async (node: NodeState, signal: NodeJS.Signals): Promise<void> => {
    const child = node.child;
    if (child === undefined) return;
    const exited = node.exited;
    signalGroup(child, signal);
    let timer: NodeJS.Timeout | undefined;
    const late = await Promise.race([
      exited.then(() => false),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), 20_000))),
    ]);
    clearTimeout(timer);
    if (late) {
      signalGroup(child, 'SIGKILL');
      await exited;
    }
  };

  let closing: Promise<void> | undefined;
  const cluster: RabbitCluster = {
    nodes: nodes as unknown as readonly [RabbitNode, RabbitNode],
    node(url) {
      const found = nodes.find((n) => n.url === url);
      if (found === undefined) throw new Error(`no RabbitMQ node at ${url}`);
      return found;
    },
    stop: (node) => signalAndWait(node as NodeState, 'SIGTERM'),
    kill: (node) => signalAndWait(node as NodeState, 'SIGKILL'),
    async start(node) {
      const state = node as NodeState;
      if (state.child !== undefined) return;
      spawnNode(state);
      await waitRunning([state]);
    },
    ctl,
    close() {
      closing ??= (async () => {
        await Promise.all(nodes.map((n) => signalAndWait(n, 'SIGKILL')));
        signalGroup(epmd, 'SIGKILL');
        await epmdExited;
        root.cleanup();
      })();
      return closing;
    },
  };

  try {
    // One after the other: two fresh nodes booting at once with classic_config peer discovery can
    // each wait for the other's tables and neither finishes booting (seen here, 1 start in 3). The
    // first boots alone (its peer is not there yet); the second finds it and joins.
    spawnNode(nodes[0]!);
    await waitRunning([nodes[0]!], { clustered: false });
    spawnNode(nodes[1]!);
    await waitRunning(nodes);
  } catch (err) {
    await cluster.close();
    throw new Error(`${(err as Error).message}\nepmd: ${epmdOutput}`);
  }
  return cluster;
}
