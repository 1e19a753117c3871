/**
 * The command line: subcommands, configuration, the gateway's run and its signals. Loaded by cli.ts
 * once V8's memory settings are applied.
 */
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { createBridge, type Bridge } from './bridge.js';
import { helpText } from './config/help.js';
import { ConfigError, loadConfig, parseCommandLine, type CommandLine } from './config/load.js';
import type { Config } from './config/schema.js';
import type { EmbeddedBroker } from './embedded-broker.js';
import { appliedMemoryFlags } from './launch-flags.js';
import { createLogger } from './observe/logger.js';
import { RecentWarnings } from './observe/recent.js';
import { notifySystemd } from './sd-notify.js';

const version = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

/** Where the embedded broker listens when no --broker is given (loopback only: it is for trying things out). */
const EMBEDDED_BROKER = { host: '127.0.0.1', port: 1883 };

async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'pub' || argv[0] === 'sub') {
    // The device-side client: loaded only when used.
    const { runPub, runSub } = await import('./client/cli.js');
    return (argv[0] === 'pub' ? runPub : runSub)(argv.slice(1));
  }
  if (argv[0] === 'ctl') {
    const { runCtl } = await import('./admin/ctl.js');
    return runCtl(argv.slice(1));
  }
  if (argv[0] === 'dead-letters') {
    const { runDeadLetters } = await import('./uplink/dead-letters-cli.js');
    return runDeadLetters(argv.slice(1));
  }
  const commandLine = parseCommandLine(argv);
  if (commandLine.command === 'help') {
    process.stdout.write(`${helpText(version)}\n`);
    return 0;
  }
  if (commandLine.command === 'version') {
    process.stdout.write(`${version}\n`);
    return 0;
  }
  const config = await loadConfig({ commandLine, env: process.env });
  if (commandLine.command === 'check-config') {
    process.stdout.write(`${JSON.stringify(maskSecrets(config), null, 2)}\n`);
    return 0;
  }
  const recent = new RecentWarnings();
  return run(
    config,
    commandLine,
    createLogger(config.logLevel, undefined, { recent, format: config.logFormat }),
    recent,
  );
}

async function run(
  config: Config,
  commandLine: CommandLine,
  log: Logger,
  recent: RecentWarnings,
): Promise<number> {
  let embedded: EmbeddedBroker | undefined;
  let brokerUrls = config.broker.urls;
  if (brokerUrls.length === 0) {
    // Loaded only when used: aedes costs ~10 MB of RSS a gateway with a real broker does not need.
    const { startEmbeddedBroker } = await import('./embedded-broker.js');
    embedded = await startEmbeddedBroker(EMBEDDED_BROKER.host, EMBEDDED_BROKER.port, log);
    brokerUrls = [embedded.url];
    // aedes speaks MQTT 3.1.1 only.
    config = { ...config, broker: { ...config.broker, protocolVersion: 4 } };
  }
  // A SIGTERM/SIGINT while starting (opening a large outbox, binding) stops once the start is done,
  // instead of killing the process by the signal's default action.
  let signalledDuringStart: NodeJS.Signals | undefined;
  const duringStart = (signal: NodeJS.Signals): void => {
    signalledDuringStart ??= signal;
  };
  process.on('SIGINT', duringStart);
  process.on('SIGTERM', duringStart);
  let bridge: Bridge;
  try {
    bridge = await createBridge(config, { brokerUrls, logger: log, recent, version });
  } catch (err) {
    // The embedded broker's listener would keep the process alive after the start failed.
    await embedded?.close().catch(() => undefined);
    throw err;
  } finally {
    process.off('SIGINT', duringStart);
    process.off('SIGTERM', duringStart);
  }
  log.info(
    {
      version,
      brokers: brokerUrls.map(redactUrl),
      dataDir: config.dataDir,
      namespace: config.namespace,
      // The V8 memory defaults this launch applied (docs/architecture.md, Memory); an operator's own win.
      memoryFlags: appliedMemoryFlags,
      // glibc's arena limit this process started with (src/launch-arenas.ts); unset means glibc's default.
      mallocArenaMax: process.env.MALLOC_ARENA_MAX ?? null,
    },
    'mqttsn-bridge ready',
  );
  void notifySystemd('ready', log); // Type=notify: the store is open and the sockets are bound

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) {
        log.warn({ signal }, 'second signal: exiting at once (nothing acknowledged is lost: it is on disk)');
        process.exit(1);
      }
      stopping = true;
      log.info({ signal }, 'stopping');
      void notifySystemd('stopping', log);
      bridge
        .stop()
        .then(() => embedded?.close())
        .then(
          () => resolve(0),
          (err: unknown) => {
            log.error({ err }, 'error while stopping');
            resolve(1);
          },
        );
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    if (signalledDuringStart) stop(signalledDuringStart);
    process.on('SIGHUP', () => {
      loadConfig({ commandLine, env: process.env }).then(
        (next) => {
          const { applied, needsRestart } = bridge.reload(next);
          log.info(
            { applied },
            applied.length > 0 ? 'configuration reloaded' : 'configuration reloaded: nothing changed',
          );
          if (needsRestart.length > 0)
            log.warn({ needsRestart }, 'these settings changed but take effect only after a restart');
        },
        (err: unknown) =>
          log.error(
            { err: err instanceof Error ? err.message : String(err) },
            'reload failed: keeping the current configuration',
          ),
      );
    });
  });
}

function maskSecrets(config: Config): Config {
  return {
    ...config,
    broker: {
      ...config.broker,
      password: config.broker.password === undefined ? undefined : '********',
      urls: config.broker.urls.map(redactUrl),
    },
    admin: { ...config.admin, token: config.admin.token === undefined ? undefined : '********' },
  };
}

/** URLs may carry credentials (mqtt://user:secret@host): never log them. */
function redactUrl(url: string): string {
  return url.replace(/\/\/([^/@:]+):([^/@]+)@/, '//$1:********@');
}

/** After a stop, whatever still holds the event loop (a socket that would not close) gets this long. */
const EXIT_GRACE_MS = 2000;

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Everything was closed or given up on (each shutdown step is bounded): do not hang on a leftover.
    setTimeout(() => process.exit(code), EXIT_GRACE_MS).unref();
  },
  (err: unknown) => {
    if (err instanceof ConfigError) {
      process.stderr.write(`mqttsn-bridge: ${err.message}\n`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`mqttsn-bridge: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    }
    // A failed start closed what it opened; whatever is left must not keep a failed gateway alive.
    setTimeout(() => process.exit(), EXIT_GRACE_MS).unref();
  },
);
