/**
 * The .deb, installed for real on this machine (root; .ci/run runs this file on its own, it is not
 * part of `npm test` because it changes the system): `npm run package:deb`, `dpkg -i`, the installed
 * /usr/bin/mqttsn-bridge run as the package's system user with the conffile the unit uses relays a
 * device's QoS 1 PUBLISH to Mosquitto and exits 0 on SIGTERM, then `dpkg -r` and `dpkg -P` leave
 * nothing behind but the system user (Debian practice).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { requireMosquitto, startMosquitto } from '../helpers/index.js';
import { relayThroughInstalled } from '../support/installed.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const sh = (command: string, args: string[]) => spawnSync(command, args, { cwd: root, encoding: 'utf8' });
function ok(command: string, args: string[]): string {
  const result = sh(command, args);
  assert.equal(result.status, 0, `${command} ${args.join(' ')}:\n${result.stdout}\n${result.stderr}`);
  return result.stdout;
}
const installed = (): boolean =>
  sh('dpkg-query', ['-W', '-f=${Status}', 'mqttsn-bridge']).stdout.includes('ok installed');

test('the .deb installs, runs as its system user with its conffile, and removes and purges cleanly', async (t) => {
  if (!requireMosquitto(t)) return;
  assert.equal(process.getuid?.(), 0, 'dpkg -i needs root (CI runs as root)');
  assert.ok(!installed(), 'mqttsn-bridge is already installed here: refusing to replace a real installation');

  const deb =
    process.env.MQTTSN_BRIDGE_DEB ?? ok('npm', ['run', '-s', 'package:deb']).trim().split('\n').at(-1)!;
  assert.match(deb, /mqttsn-bridge_\d+\.\d+\.\d+_(amd64|arm64|armhf)\.deb$/);
  const contents = ok('dpkg-deb', ['--contents', deb]);
  for (const path of [
    './usr/bin/mqttsn-bridge',
    './usr/lib/mqttsn-bridge/dist/cli.js',
    './usr/lib/mqttsn-bridge/node_modules/classic-level/prebuilds/',
    './lib/systemd/system/mqttsn-bridge.service',
    './etc/mqttsn-bridge/config.yaml',
  ])
    assert.ok(contents.includes(path), `the package holds ${path}`);
  assert.ok(!contents.includes('node_modules/typescript/'), 'no dev dependencies');
  assert.match(ok('dpkg-deb', ['--field', deb, 'Depends']), /^nodejs \(>= 20\)$/m);

  t.after(() => {
    if (installed()) sh('dpkg', ['--purge', 'mqttsn-bridge']);
  });
  // Debian's nodejs satisfies Depends:; a node from elsewhere (nvm, a tarball) does not register
  // with dpkg, and then only this test installs without the dependency.
  const haveNodejs = sh('dpkg-query', ['-W', '-f=${Status}', 'nodejs']).stdout.includes('ok installed');
  if (!haveNodejs)
    t.diagnostic(
      'Debian nodejs is not installed: dpkg -i --force-depends (the launcher needs /usr/bin/node)',
    );
  ok('dpkg', ['-i', ...(haveNodejs ? [] : ['--force-depends']), deb]);
  assert.ok(installed());

  const unit = readFileSync('/lib/systemd/system/mqttsn-bridge.service', 'utf8');
  assert.match(unit, /^Type=notify$/m);
  assert.match(unit, /^User=mqttsn-bridge$/m);
  assert.match(
    unit,
    /^ExecStart=\/usr\/bin\/node .* \/usr\/lib\/mqttsn-bridge\/dist\/cli\.js --config \/etc\/mqttsn-bridge\/config\.yaml --data-dir \/var\/lib\/mqttsn-bridge$/m,
  );
  assert.match(
    ok('dpkg-query', ['-W', '-f=${Conffiles}', 'mqttsn-bridge']),
    /\/etc\/mqttsn-bridge\/config\.yaml [0-9a-f]{32}/,
  );
  assert.match(
    ok('getent', ['passwd', 'mqttsn-bridge']),
    /^mqttsn-bridge:x:\d+:\d+:.*:\/var\/lib\/mqttsn-bridge:\/usr\/sbin\/nologin$/m,
  );
  const data = statSync('/var/lib/mqttsn-bridge');
  assert.equal(data.mode & 0o777, 0o700);
  assert.equal(String(data.uid), ok('id', ['-u', 'mqttsn-bridge']).trim());
  assert.match(ok('/usr/bin/mqttsn-bridge', ['--help']), /file key listen, default 0\.0\.0\.0:1883/);

  // What the unit runs, as its user (setpriv execs: no process in between to swallow SIGTERM), against Mosquitto instead of the conffile's 127.0.0.1:1883.
  const broker = await startMosquitto();
  t.after(() => broker.stop());
  const { code, output } = await relayThroughInstalled(
    '/usr/bin/mqttsn-bridge',
    [
      '--config',
      '/etc/mqttsn-bridge/config.yaml',
      '--data-dir',
      '/var/lib/mqttsn-bridge',
      '--metrics',
      '127.0.0.1:0',
    ],
    broker.url,
    {
      wrap: ['setpriv', '--reuid=mqttsn-bridge', '--regid=mqttsn-bridge', '--init-groups', '--'],
      clientId: 'deb1',
    },
  );
  assert.equal(code, 0, output);
  assert.ok(readdirSync('/var/lib/mqttsn-bridge').length > 0, 'the store lives in /var/lib/mqttsn-bridge');

  ok('dpkg', ['-r', 'mqttsn-bridge']);
  for (const gone of [
    '/usr/bin/mqttsn-bridge',
    '/usr/lib/mqttsn-bridge',
    '/lib/systemd/system/mqttsn-bridge.service',
  ])
    assert.ok(!existsSync(gone), `removed: ${gone}`);
  assert.ok(existsSync('/etc/mqttsn-bridge/config.yaml'), 'remove keeps the conffile');
  assert.ok(existsSync('/var/lib/mqttsn-bridge'), 'remove keeps the outbox');
  ok('dpkg', ['-P', 'mqttsn-bridge']);
  for (const gone of ['/etc/mqttsn-bridge', '/var/lib/mqttsn-bridge'])
    assert.ok(!existsSync(gone), `purged: ${gone}`);
  assert.equal(sh('dpkg-query', ['-W', 'mqttsn-bridge']).status, 1, 'dpkg no longer knows the package');
});
