/**
 * The gateways bench/hotpath.ts compares, behind one interface: a build of ours (`<dir>/dist/cli.js`), or
 * the Eclipse Paho MQTT-SN gateway (a binary the user built; nothing of Paho's is in this repository).
 *
 * Paho (MQTTSNGateway, UDP, transparent) is started with a gateway.conf generated in a temp dir:
 * - broker 127.0.0.1 at the bench Mosquitto's port; unicast port free at the time; no authentication;
 *   MaxNumberOfClients = the devices plus a few (its default of 30 would refuse the rest).
 * - **Its multicast stays off the network.** Paho has no setting for the multicast interface (UDP over IPv4):
 *   it joins its group on the default route's interface and sends ADVERTISE / GWINFO from its unicast socket
 *   there. So the group is 224.0.0.1, all-hosts, of which every host is already a member: joining it sends
 *   no IGMP report (0 packets out of eth0, where its default group 225.1.1.1 sent 2). KeepAlive (the
 *   ADVERTISE period) is 65535 s, so no ADVERTISE goes out during a run, and the bench never sends it
 *   SEARCHGW (it would answer with a multicast GWINFO): it is ready when it answers a CONNECT with a CONNACK.
 *   Its unicast socket listens on 0.0.0.0, but every device sends to 127.0.0.1. Checked under strace: every
 *   sendto and connect of a run went to 127.0.0.1.
 * - **Its console output goes to /dev/null.** Paho prints a line per packet (about 700 bytes per message)
 *   whatever the configuration; to a terminal that would cost it CPU (a write per line), to a file or
 *   /dev/null only the formatting (a file measured the same as /dev/null).
 * - It runs in its temp dir, where it creates the key files of its log ring buffer (System V shared memory);
 *   the segment can outlive the process, so the bench removes it (ipcrm) with the temp dir.
 * - It stops on SIGINT only (it ignores SIGTERM).
 * - It does not fsync: it acknowledges a message once the broker has, and keeps nothing on disk.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { MqttSnTestClient, sleep, tempDir } from '../test/helpers/index.js';
import { freeUdpPort } from '../test/support/gateway-process.js';
import { cleanups } from './support.js';

/** A gateway of a trial, started and ready for devices on 127.0.0.1:`port`. */
export interface RunningGateway {
  readonly port: number;
  readonly pid: number | undefined;
  /** Ends the process (and removes what it left behind); resolves once it has exited. */
  stop(): Promise<void>;
}

export interface Contender {
  /** Its name in the bench's rows: 'new', 'base', 'paho'. */
  readonly name: string;
  /** Acknowledges a message only once it is on disk; one that does not runs with the fast disk only. */
  readonly durable: boolean;
  /** Where its devices' messages (short topic "bn") arrive at the broker. */
  readonly topicFilter: string;
  /** `env` carries the fsync shim (LD_PRELOAD and its settings). */
  start(brokerUrl: string, env: NodeJS.ProcessEnv): Promise<RunningGateway>;
}

/**
 * A child process, and its stop: `signal`, then SIGKILL if it has not exited within 30 s. The stop is on
 * the bench's cleanup list from the start (a run interrupted while the gateway starts ends it too) until
 * it has run.
 */
function supervise(child: ChildProcess, signal: NodeJS.Signals, after: () => void): () => Promise<void> {
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    const listed = cleanups.indexOf(stop);
    if (listed >= 0) cleanups.splice(listed, 1);
    child.kill(signal);
    const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(killer);
    after();
  };
  cleanups.push(stop);
  return stop;
}

/** Retries `attempt` (which throws while the gateway is not up yet) up to 200 times, 50 ms apart. */
async function waitReady(what: string, attempt: (probe: MqttSnTestClient) => Promise<void>, port: number) {
  const probe = await MqttSnTestClient.create({ gatewayPort: port });
  try {
    for (let tries = 0; ; tries++) {
      if (tries > 200) throw new Error(`${what} did not start`);
      try {
        await attempt(probe);
        return;
      } catch {
        await sleep(50);
      }
    }
  } finally {
    await probe.close();
  }
}

/** A build of this gateway: `<dir>/dist/cli.js`, ready once it answers SEARCHGW. */
export function ourBuild(name: string, dir: string, nodeArgs: string[]): Contender {
  return {
    name,
    durable: true,
    topicFilter: 'mqttsn/+/bn',
    async start(brokerUrl, env) {
      const port = await freeUdpPort();
      const data = tempDir('mqttsn-hotpath-');
      const child = spawn(
        process.execPath,
        [
          ...nodeArgs,
          path.join(dir, 'dist/cli.js'),
          ...['--listen', `127.0.0.1:${port}`, '--broker', brokerUrl, '--data-dir', data.path],
          ...['--log-level', 'warn', '--max-clients', '100000'],
        ],
        {
          env: { ...process.env, ...env, MQTTSN_BRIDGE_LOG_LEVEL: 'warn' },
          stdio: ['ignore', 'inherit', 'inherit'],
        },
      );
      const stop = supervise(child, 'SIGTERM', () => data.cleanup());
      await waitReady(
        `gateway in ${dir}`,
        async (probe) => {
          await probe.send({ type: 'SEARCHGW', radius: 0 });
          await probe.next('GWINFO', 200);
        },
        port,
      ).catch(async (err: unknown) => {
        await stop();
        throw err;
      });
      return { port, pid: child.pid, stop };
    },
  };
}

/** The Eclipse Paho MQTT-SN gateway at `binary`, configured for `devices` devices (see the header). */
export function paho(binary: string, devices: number): Contender {
  return {
    name: 'paho',
    durable: false,
    topicFilter: 'bn',
    async start(brokerUrl, env) {
      const broker = new URL(brokerUrl);
      const [port, multicastPort] = [await freeUdpPort(), await freeUdpPort()];
      const work = tempDir('mqttsn-hotpath-paho-');
      const config = path.join(work.path, 'gateway.conf');
      writeFileSync(config, pahoConfig(broker, port, multicastPort, devices + 16));
      const child = spawn(path.resolve(binary), ['-f', config], {
        cwd: work.path,
        env: { ...process.env, ...env },
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      const stop = supervise(child, 'SIGINT', () => {
        removeSharedMemory(work.path);
        work.cleanup();
      });
      await waitReady(
        `Paho (${binary}, config ${config})`,
        async (probe) => {
          await probe.send({
            type: 'CONNECT',
            ...{ will: false, cleanSession: true, protocolId: 1, duration: 60, clientId: 'hotpath-probe' },
          });
          const connack = await probe.next('CONNACK', 200);
          if (connack.returnCode !== 0) throw new Error(`CONNACK ${connack.returnCode}`);
          await probe.send({ type: 'DISCONNECT' });
          await probe.next('DISCONNECT', 1000).catch(() => undefined); // else its slot is one of the spares
        },
        port,
      ).catch(async (err: unknown) => {
        await stop();
        throw err;
      });
      return { port, pid: child.pid, stop };
    },
  };
}

function pahoConfig(broker: URL, port: number, multicastPort: number, maxClients: number): string {
  return [
    'GatewayID=1',
    'GatewayName=hotpath-paho',
    `MaxNumberOfClients=${maxClients}`,
    'KeepAlive=65535',
    `BrokerName=${broker.hostname}`,
    `BrokerPortNo=${broker.port}`,
    `BrokerSecurePortNo=${broker.port}`,
    'AggregatingGateway=NO',
    'QoS-1=NO',
    'Forwarder=NO',
    'PredefinedTopic=NO',
    'ClientAuthentication=NO',
    `GatewayPortNo=${port}`,
    `MulticastPortNo=${multicastPort}`,
    'MulticastIP=224.0.0.1',
    'MulticastTTL=1',
    'ShearedMemory=NO',
    '',
  ].join('\n');
}

/**
 * Paho's log ring buffer and its mutex are System V shared memory keyed by ftok(<key file>, 1) in its
 * working directory; the ring buffer can outlive the process. glibc's ftok:
 * proj_id << 24 | (st_dev & 0xff) << 16 | (st_ino & 0xffff).
 */
function removeSharedMemory(dir: string): void {
  for (const file of ['ringbuffer.key', 'rbmutex.key']) {
    try {
      const { dev, ino } = statSync(path.join(dir, file));
      const key = ((1 << 24) | ((dev & 0xff) << 16) | (ino & 0xffff)) >>> 0;
      execFileSync('ipcrm', ['-M', `0x${key.toString(16)}`], { stdio: 'ignore' });
    } catch {
      // not created, or already gone
    }
  }
}
