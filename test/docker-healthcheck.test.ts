/**
 * deploy/docker-healthcheck.mjs asks /healthz on the address the running gateway really uses,
 * whichever way it was configured: a config file's `metrics:` is no longer ignored (the image used
 * to force MQTTSN_BRIDGE_METRICS=0.0.0.0:9100 over it), nor is the environment. The gateway is a
 * real process; the check finds it through MQTTSN_BRIDGE_HEALTHCHECK_PID instead of PID 1.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePort, startAedes, withTempDir } from './helpers/index.js';
import { spawnGateway } from './support/gateway-process.js';

const CHECK = fileURLToPath(new URL('../deploy/docker-healthcheck.mjs', import.meta.url));

async function check(
  t: TestContext,
  args: (dir: string, port: number) => string[],
  env: (port: number) => NodeJS.ProcessEnv = () => ({}),
) {
  const dir = withTempDir(t, 'mqttsn-health-');
  const broker = await startAedes();
  t.after(() => broker.close());
  const port = await freePort();
  const gw = await spawnGateway(
    ['--broker', broker.url, '--data-dir', join(dir, 'data'), ...args(dir, port)],
    {
      compiled: true,
      env: env(port),
    },
  );
  t.after(() => gw.signal('SIGKILL'));
  // Without the variable the check would inspect this process's PID 1 (not a gateway).
  const own: NodeJS.ProcessEnv = { ...process.env, MQTTSN_BRIDGE_HEALTHCHECK_PID: String(gw.pid) };
  delete own.MQTTSN_BRIDGE_METRICS;
  const result = spawnSync(process.execPath, [CHECK], { encoding: 'utf8', env: own });
  return { port, status: result.status, out: result.stdout + result.stderr };
}

test("the metrics address from the gateway's config file is the one checked", async (t) => {
  const { port, status, out } = await check(t, (dir, p) => {
    const file = join(dir, 'config.yaml');
    writeFileSync(file, `metrics: 127.0.0.1:${p}\n`);
    return ['--config', file];
  });
  assert.equal(status, 0, out);
  assert.match(out, new RegExp(`^http://127\\.0\\.0\\.1:${port}/healthz: 200 `, 'm'));
});

test('the environment of the gateway counts too, and without any metrics address the check passes', async (t) => {
  const { port, status, out } = await check(
    t,
    () => [],
    (p) => ({ MQTTSN_BRIDGE_METRICS: `127.0.0.1:${p}` }),
  );
  assert.equal(status, 0, out);
  assert.match(out, new RegExp(`127\\.0\\.0\\.1:${port}/healthz: 200`));
  const none = await check(t, () => []);
  assert.equal(none.status, 0, none.out);
  assert.match(none.out, /no metrics address configured/);
});
