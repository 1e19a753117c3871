import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { ReturnCode } from '../../src/codec/index.js';
import { collect, MqttSnTestClient, sleep } from '../helpers/index.js';
import { freeUdpPort } from './gateway-process.js';

/**
 * Runs an installed mqttsn-bridge (any command: a global bin, the .deb's /usr/bin launcher, a node
 * from elsewhere) against `brokerUrl`, proves that a device's QoS 1 PUBLISH reaches the broker, then
 * stops it with SIGTERM and returns the exit code and the output.
 */
export async function relayThroughInstalled(
  command: string,
  args: string[],
  brokerUrl: string,
  {
    env = {},
    clientId = 'installed1',
    wrap = [],
  }: { env?: NodeJS.ProcessEnv; clientId?: string; wrap?: string[] } = {},
): Promise<{ code: number | null; output: string }> {
  const udpPort = await freeUdpPort();
  const argv = [...args, '--broker', brokerUrl, '--listen', `127.0.0.1:${udpPort}`];
  const [file, ...rest] = [...wrap, command, ...argv] as [string, ...string[]];
  const child: ChildProcess = spawn(file, rest, {
    env: { ...process.env, MQTTSN_BRIDGE_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const collector = await collect(brokerUrl, `mqttsn/${clientId}/#`);
  const device = await MqttSnTestClient.create({ gatewayPort: udpPort });
  try {
    let answered = false;
    for (let i = 0; i < 200 && !answered; i++) {
      if (child.exitCode !== null) throw new Error(`${command} exited during start-up:\n${output}`);
      await device.send({ type: 'SEARCHGW', radius: 0 });
      answered = await device.next('GWINFO', 200).then(
        () => true,
        () => false,
      );
      if (!answered) await sleep(50);
    }
    assert.ok(answered, `${command} never answered SEARCHGW:\n${output}`);
    const connack = await device.connect({ clientId, duration: 60 });
    assert.equal(connack.returnCode, ReturnCode.ACCEPTED);
    const ack = await device.publish({ topicName: 'temp', qos: 1, data: '21.5' });
    assert.ok(ack && 'returnCode' in ack && ack.returnCode === ReturnCode.ACCEPTED, 'PUBACK accepted');
    const [message] = await collector.waitFor(1, 10_000);
    assert.equal(message?.topic, `mqttsn/${clientId}/temp`);
    assert.equal(message?.payload.toString(), '21.5');
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  } finally {
    await device.close();
    await collector.close();
  }
  child.kill('SIGTERM');
  return { code: await exited, output };
}
