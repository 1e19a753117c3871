import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { withTempDir } from './helpers/index.js';

const root = fileURLToPath(new URL('..', import.meta.url));

test('the codec imports by package name from outside the package, and the bin runs', (t) => {
  assert.ok(
    existsSync(join(root, 'dist/codec/index.js')),
    'dist/ is built (npm install / npm ci run `prepare`)',
  );
  const outside = withTempDir(t, 'mqttsn-consumer-');
  mkdirSync(join(outside, 'node_modules'));
  symlinkSync(root, join(outside, 'node_modules', 'mqttsn-bridge'), 'dir');
  const script = `
    import { decode, encode, MqttSnCodecError } from 'mqttsn-bridge/codec';
    const bytes = Buffer.from('0c0c626162000068656c6c6f', 'hex');
    const packet = decode(bytes);
    if (packet.type !== 'PUBLISH' || packet.qos !== -1) throw new Error('decoded ' + JSON.stringify(packet));
    if (Buffer.compare(Buffer.from(encode(packet)), bytes) !== 0) throw new Error('round trip');
    try { decode(Uint8Array.of(0)); } catch (err) { if (!(err instanceof MqttSnCodecError)) throw err; console.log('ok', err.reason); }
  `;
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    cwd: outside,
    encoding: 'utf8',
  });
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stdout, /^ok /);
  const bin = spawnSync(join(outside, 'node_modules/mqttsn-bridge/dist/cli.js'), ['--version'], {
    encoding: 'utf8',
  });
  assert.equal(bin.status, 0, bin.stderr);
  assert.match(bin.stdout.trim(), /^\d+\.\d+\.\d+$/);
});
