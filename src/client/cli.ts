/**
 * `mqttsn-bridge pub` and `mqttsn-bridge sub`: device-side MQTT-SN commands for any gateway.
 * Each returns its exit code (see EXIT) instead of exiting, and takes its streams as a parameter
 * so tests can run it in-process.
 */
import type { Readable } from 'node:stream';
import { parsePubArgs, parseSubArgs, UsageError, type SessionOptions } from './args.js';
import { MqttSnClient } from './client.js';
import { GatewayRefusedError, GatewayTimeoutError } from './errors.js';
import { pubHelp, subHelp } from './help.js';
import { publishMessages } from './pub.js';
import { receiveMessages, type Output } from './sub.js';
import { formatTrace } from './trace.js';

export const EXIT = {
  OK: 0,
  /** Usage or runtime error. */
  ERROR: 1,
  /** No answer from the gateway (after every retry), or nothing listens at its address. */
  NO_ANSWER: 2,
  /** The gateway answered with a return code other than "accepted". */
  REFUSED: 3,
} as const;

export interface CliIo {
  stdin: Readable;
  stdout: Output;
  stderr: Output;
  /** Ends `sub` cleanly (DISCONNECT, exit 0). Default: SIGINT or SIGTERM. */
  signal?: AbortSignal;
}

const processIo = (): CliIo => ({ stdin: process.stdin, stdout: process.stdout, stderr: process.stderr });

export async function runPub(argv: string[], io: CliIo = processIo()): Promise<number> {
  let parsed;
  try {
    parsed = parsePubArgs(argv);
  } catch (err) {
    return usageError('pub', err, io);
  }
  if (parsed.help) {
    io.stdout.write(`${pubHelp}\n`);
    return EXIT.OK;
  }
  const options = parsed.options;
  return withClient('pub', options, io, (client) => publishMessages(client, options, io.stdin));
}

export async function runSub(argv: string[], io: CliIo = processIo()): Promise<number> {
  let parsed;
  try {
    parsed = parseSubArgs(argv);
  } catch (err) {
    return usageError('sub', err, io);
  }
  if (parsed.help) {
    io.stdout.write(`${subHelp}\n`);
    return EXIT.OK;
  }
  const options = parsed.options;
  if (io.signal) {
    const signal = io.signal;
    return withClient('sub', options, io, (client) => receiveMessages(client, options, io.stdout, signal));
  }
  const interrupted = new AbortController();
  const interrupt = (): void => interrupted.abort();
  process.once('SIGINT', interrupt);
  process.once('SIGTERM', interrupt);
  try {
    return await withClient('sub', options, io, (client) =>
      receiveMessages(client, options, io.stdout, interrupted.signal),
    );
  } finally {
    process.off('SIGINT', interrupt);
    process.off('SIGTERM', interrupt);
  }
}

/** Opens the client, runs `work`, always closes the client, and maps the outcome to an exit code. */
async function withClient(
  command: 'pub' | 'sub',
  options: SessionOptions,
  io: CliIo,
  work: (client: MqttSnClient) => Promise<void>,
): Promise<number> {
  let client: MqttSnClient | undefined;
  try {
    client = await MqttSnClient.open({
      host: options.host,
      port: options.port,
      clientId: options.clientId,
      retry: options.retry,
      onTrace: options.debug ? (event) => io.stderr.write(`${formatTrace(event)}\n`) : undefined,
    });
    await work(client);
    return EXIT.OK;
  } catch (err) {
    io.stderr.write(`mqttsn-bridge ${command}: ${err instanceof Error ? err.message : String(err)}\n`);
    return exitCodeFor(err);
  } finally {
    await client?.close();
  }
}

function exitCodeFor(err: unknown): number {
  if (err instanceof GatewayTimeoutError) return EXIT.NO_ANSWER;
  if (err instanceof GatewayRefusedError) return EXIT.REFUSED;
  return EXIT.ERROR;
}

function usageError(command: 'pub' | 'sub', err: unknown, io: CliIo): number {
  if (!(err instanceof UsageError)) throw err;
  io.stderr.write(`mqttsn-bridge ${command}: ${err.message}\nTry 'mqttsn-bridge ${command} --help'.\n`);
  return EXIT.ERROR;
}
