import { flagUsage, formatDefault } from './defaults.js';
import { envName, settings } from './settings.js';

/** --help, generated from the settings table so it can never disagree with what is accepted. */
export function helpText(version: string): string {
  const lines = [
    `mqttsn-bridge ${version} — MQTT-SN v1.2 gateway with durable store-and-forward to an MQTT broker`,
    '',
    'Usage:',
    '  mqttsn-bridge [options]                  run the gateway',
    '  mqttsn-bridge check-config FILE          validate a config file and print the effective settings',
    '  mqttsn-bridge pub|sub [options]          device-side MQTT-SN client for testing (see pub --help)',
    '  mqttsn-bridge ctl list|kick|forget|trace act on devices through the admin API (see ctl --help)',
    '',
    'Sensors publish over MQTT-SN/UDP; every message is synced to a LevelDB outbox before the device',
    'gets its PUBACK, then republished at QoS 1 to the broker under mqttsn/<clientId>/<topic>.',
    'While the broker is unreachable messages wait in the outbox and are replayed in order.',
    '',
    'Examples:',
    '  mqttsn-bridge                                          embedded broker on 127.0.0.1:1883',
    '  mqttsn-bridge --broker mqtt://broker.lan:1883',
    '  mqttsn-bridge --broker mqtts://a.example:8883 --broker mqtts://b.example:8883 --ca ca.pem',
    '  mqttsn-bridge --predefined 1=factory/alarms --predefined sensor7:2=line/7/temp',
    '',
    'Options (each also settable as an environment variable or in the --config YAML file;',
    'precedence: defaults < config file < environment < flags; SIGHUP re-reads them and applies',
    'the settings marked so, the others need a restart):',
    '  -c, --config FILE'.padEnd(40) + 'YAML configuration file',
    '  -h, --help'.padEnd(40) + 'this text',
    '  -v, --version'.padEnd(40) + 'print the version',
  ];
  for (const section of [
    'Broker uplink',
    'Device side',
    'Outbox',
    'Downlink',
    'Limits',
    'General',
  ] as const) {
    lines.push('', `${section}:`);
    for (const s of settings.filter((x) => x.section === section)) {
      lines.push(`  ${flagUsage(s)}`.padEnd(40) + s.help);
      // The default comes from the schema (src/config/defaults.ts): never written a second time.
      const fallback = formatDefault(s.path);
      lines.push(
        ''.padEnd(40) +
          `env ${envName(s)}, file key ${s.path}, ${fallback === '' ? 'no default' : `default ${fallback}`}` +
          (s.live ? ', SIGHUP applies it' : ''),
      );
    }
  }
  lines.push('', 'Docs: README.md (configuration, durability promise, operations).');
  return lines.join('\n');
}
