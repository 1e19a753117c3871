/**
 * Type=notify: the real gateway process tells systemd READY=1 (with its MAINPID) once the store is
 * open and the UDP socket answers, and STOPPING=1 when SIGTERM starts the graceful stop. systemd is
 * played by a datagram socket the test binds (test/support/fake-notify-socket.py); the message goes
 * through the real systemd-notify.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { MqttSnTestClient, startAedes, withTempDir } from './helpers/index.js';
import { freeUdpPort } from './support/gateway-process.js';

const FAKE_SOCKET = fileURLToPath(new URL('./support/fake-notify-socket.py', import.meta.url));
const CLI = fileURLToPath(new URL('../src/cli.ts', import.meta.url));

test('READY=1 after the gateway listens, STOPPING=1 on SIGTERM, through NOTIFY_SOCKET', async (t) => {
  for (const tool of ['systemd-notify', 'python3'])
    assert.equal(spawnSync(tool, ['--version']).status, 0, `${tool} is installed (.ci/run installs it)`);
  const dir = withTempDir(t, 'mqttsn-notify-');
  const socketPath = join(dir, 'notify.sock');
  const fake = spawn('python3', [FAKE_SOCKET, socketPath], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => fake.kill('SIGKILL'));
  const messages: string[] = [];
  const waiters: Array<() => void> = [];
  createInterface({ input: fake.stdout }).on('line', (line) => {
    messages.push(JSON.parse(line) as string);
    for (const wake of waiters.splice(0)) wake();
  });
  const waitFor = async (match: (m: string) => boolean, what: string): Promise<string> => {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const found = messages.find(match);
      if (found !== undefined) return found;
      if (Date.now() > deadline)
        throw new Error(`no ${what} on the notify socket; got ${JSON.stringify(messages)}`);
      await new Promise<void>((resolve) => {
        waiters.push(resolve);
        setTimeout(resolve, 200);
      });
    }
  };
  await waitFor((m) => m === 'LISTENING', 'fake socket');

  const broker = await startAedes();
  t.after(() => broker.close());
  const udpPort = await freeUdpPort();
  const gateway = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      CLI,
      '--broker',
      broker.url,
      '--listen',
      `127.0.0.1:${udpPort}`,
      '--data-dir',
      join(dir, 'data'),
    ],
    {
      env: { ...process.env, NOTIFY_SOCKET: socketPath, MQTTSN_BRIDGE_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let stderr = '';
  gateway.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => gateway.once('exit', (code) => resolve(code)));
  t.after(() => gateway.kill('SIGKILL'));

  const ready = await waitFor((m) => m.split('\n').includes('READY=1'), 'READY=1');
  assert.ok(ready.split('\n').includes(`MAINPID=${gateway.pid}`), `MAINPID is the gateway: ${ready}`);
  // Ready means ready: the UDP socket answers at once, no retry needed.
  const device = await MqttSnTestClient.create({ gatewayPort: udpPort });
  t.after(() => device.close());
  await device.send({ type: 'SEARCHGW', radius: 0 });
  await device.next('GWINFO', 2000);

  gateway.kill('SIGTERM');
  await waitFor((m) => m.split('\n').includes('STOPPING=1'), 'STOPPING=1');
  assert.equal(await exited, 0, stderr);
});

test('without NOTIFY_SOCKET nothing is sent and nothing is spawned', async () => {
  const { notifySystemd } = await import('../src/sd-notify.js');
  const { default: pino } = await import('pino');
  // A command that cannot exist: spawning it would log an error and resolve false too, so the
  // assertion is on the log staying empty.
  const lines: string[] = [];
  const log = pino({ level: 'trace' }, { write: (line: string) => void lines.push(line) });
  assert.equal(await notifySystemd('ready', log, { env: {}, command: '/nonexistent/systemd-notify' }), false);
  assert.deepEqual(lines, []);
  assert.equal(
    await notifySystemd('ready', log, {
      env: { NOTIFY_SOCKET: '/nonexistent.sock' },
      command: '/nonexistent/systemd-notify',
    }),
    false,
  );
  assert.match(
    lines.join(''),
    /NOTIFY_SOCKET is set but \/nonexistent\/systemd-notify cannot run \(ENOENT\)/,
  );
});
