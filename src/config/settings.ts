/**
 * The table behind the flags, the environment variables and --help: one row per setting.
 * `path` is the key in the config file (dots for nesting).
 */
export type SettingKind = 'string' | 'number' | 'boolean' | 'list' | 'predefined';

export interface Setting {
  path: string;
  flag: string;
  kind: SettingKind;
  /** Shown by --help and the README. */
  help: string;
  /** Placeholder in --help, e.g. URL. */
  arg?: string;
  section: 'Device side' | 'Broker uplink' | 'Outbox' | 'Downlink' | 'Limits' | 'General';
}

export const ENV_PREFIX = 'MQTTSN_BRIDGE_';

export const settings: readonly Setting[] = [
  {
    section: 'Broker uplink',
    path: 'broker.urls',
    flag: 'broker',
    kind: 'list',
    arg: 'URL',
    help: 'MQTT broker (mqtt:// or mqtts://). Repeat for failover in order. None: an embedded broker on 127.0.0.1:1883',
  },
  {
    section: 'Broker uplink',
    path: 'broker.protocolVersion',
    flag: 'mqtt-version',
    kind: 'number',
    arg: '4|5',
    help: 'MQTT protocol to the broker: 4 (3.1.1) or 5',
  },
  {
    section: 'Broker uplink',
    path: 'broker.clientId',
    flag: 'uplink-client-id',
    kind: 'string',
    arg: 'ID',
    help: 'client id towards the broker (default mqttsn-bridge-<hostname>-<gateway id>)',
  },
  {
    section: 'Broker uplink',
    path: 'broker.username',
    flag: 'username',
    kind: 'string',
    arg: 'NAME',
    help: 'broker user name',
  },
  {
    section: 'Broker uplink',
    path: 'broker.password',
    flag: 'password',
    kind: 'string',
    arg: 'SECRET',
    help: 'broker password (prefer the environment or the config file)',
  },
  {
    section: 'Broker uplink',
    path: 'broker.ca',
    flag: 'ca',
    kind: 'string',
    arg: 'FILE',
    help: 'CA certificate (PEM) to verify the broker',
  },
  {
    section: 'Broker uplink',
    path: 'broker.cert',
    flag: 'cert',
    kind: 'string',
    arg: 'FILE',
    help: 'client certificate (PEM) for mutual TLS',
  },
  {
    section: 'Broker uplink',
    path: 'broker.key',
    flag: 'key',
    kind: 'string',
    arg: 'FILE',
    help: 'client private key (PEM) for mutual TLS',
  },
  {
    section: 'Broker uplink',
    path: 'broker.rejectUnauthorized',
    flag: 'verify-broker',
    kind: 'boolean',
    help: 'verify the broker certificate (--no-verify-broker: do not; testing only)',
  },
  {
    section: 'Broker uplink',
    path: 'broker.keepaliveSeconds',
    flag: 'keepalive',
    kind: 'number',
    arg: 'S',
    help: 'MQTT keep-alive; a dead or half-open link is detected within it',
  },
  {
    section: 'Broker uplink',
    path: 'broker.window',
    flag: 'window',
    kind: 'number',
    arg: 'N',
    help: "QoS 1 messages in flight to the broker (capped by the broker's receive maximum)",
  },
  {
    section: 'Broker uplink',
    path: 'broker.reconnectInitialMs',
    flag: 'reconnect-initial',
    kind: 'number',
    arg: 'MS',
    help: 'first reconnect delay; doubles per failed round, with jitter',
  },
  {
    section: 'Broker uplink',
    path: 'broker.reconnectMaxMs',
    flag: 'reconnect-max',
    kind: 'number',
    arg: 'MS',
    help: 'longest reconnect delay',
  },
  {
    section: 'Device side',
    path: 'listen',
    flag: 'listen',
    kind: 'list',
    arg: 'HOST:PORT',
    help: 'UDP address for MQTT-SN; repeat for several (e.g. [::]:1883 for IPv6)',
  },
  {
    section: 'Device side',
    path: 'namespace',
    flag: 'namespace',
    kind: 'string',
    arg: 'TEMPLATE',
    help: 'broker topic prefix for device topics; {clientId} and {gatewayId} are replaced',
  },
  {
    section: 'Device side',
    path: 'predefined',
    flag: 'predefined',
    kind: 'predefined',
    arg: '[CLIENT:]ID=TOPIC',
    help: 'predefined topic id mapped to an absolute broker topic; repeatable',
  },
  {
    section: 'Device side',
    path: 'gatewayId',
    flag: 'gateway-id',
    kind: 'number',
    arg: 'N',
    help: 'gateway id 0..255 in GWINFO and ADVERTISE',
  },
  {
    section: 'Device side',
    path: 'anonymousClientId',
    flag: 'anonymous-client-id',
    kind: 'string',
    arg: 'ID',
    help: 'client id that names QoS -1 messages from senders without a session',
  },
  {
    section: 'Device side',
    path: 'advertise.address',
    flag: 'advertise',
    kind: 'string',
    arg: 'HOST:PORT',
    help: 'send ADVERTISE periodically to this address (off by default)',
  },
  {
    section: 'Device side',
    path: 'advertise.intervalSeconds',
    flag: 'advertise-interval',
    kind: 'number',
    arg: 'S',
    help: 'seconds between ADVERTISE messages',
  },
  {
    section: 'Outbox',
    path: 'dataDir',
    flag: 'data-dir',
    kind: 'string',
    arg: 'DIR',
    help: 'where the LevelDB outbox lives',
  },
  {
    section: 'Outbox',
    path: 'outbox.maxMessages',
    flag: 'outbox-max-messages',
    kind: 'number',
    arg: 'N',
    help: 'outbox quota in messages',
  },
  {
    section: 'Outbox',
    path: 'outbox.maxBytes',
    flag: 'outbox-max-bytes',
    kind: 'number',
    arg: 'BYTES',
    help: 'outbox quota in bytes',
  },
  {
    section: 'Outbox',
    path: 'outbox.ttlSeconds',
    flag: 'outbox-ttl',
    kind: 'number',
    arg: 'S',
    help: 'drop buffered messages older than this (0: never)',
  },
  {
    section: 'Outbox',
    path: 'outbox.policy',
    flag: 'outbox-policy',
    kind: 'string',
    arg: 'reject|drop-oldest',
    help: 'when full: refuse new messages (QoS 1 gets PUBACK "congestion") or drop the oldest',
  },
  {
    section: 'Outbox',
    path: 'outbox.bufferQos0',
    flag: 'buffer-qos0',
    kind: 'boolean',
    help: 'buffer QoS 0/-1 messages while the uplink is down (--no-buffer-qos0: drop them)',
  },
  {
    section: 'Limits',
    path: 'limits.maxClients',
    flag: 'max-clients',
    kind: 'number',
    arg: 'N',
    help: 'sessions at once; more get CONNACK "congestion"',
  },
  {
    section: 'Limits',
    path: 'limits.maxTopicsPerClient',
    flag: 'max-topics',
    kind: 'number',
    arg: 'N',
    help: 'registered topics per client; more get REGACK "congestion"',
  },
  {
    section: 'Limits',
    path: 'limits.maxPacketSize',
    flag: 'max-packet-size',
    kind: 'number',
    arg: 'BYTES',
    help: 'largest datagram accepted; a larger PUBLISH gets PUBACK "not supported"',
  },
  {
    section: 'Limits',
    path: 'limits.maxClientIdLength',
    flag: 'max-client-id-length',
    kind: 'number',
    arg: 'N',
    help: 'longest client id in bytes (MQTT-SN says 23)',
  },
  {
    section: 'General',
    path: 'logLevel',
    flag: 'log-level',
    kind: 'string',
    arg: 'LEVEL',
    help: 'fatal, error, warn, info, debug, trace or silent',
  },
];

/** MQTTSN_BRIDGE_ + the flag name in upper snake case, e.g. MQTTSN_BRIDGE_OUTBOX_MAX_MESSAGES. */
export function envName(setting: Setting): string {
  return ENV_PREFIX + setting.flag.toUpperCase().replaceAll('-', '_');
}
