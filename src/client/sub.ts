import { setTimeout as delay } from 'node:timers/promises';
import type { SubOptions } from './args.js';
import type { MqttSnClient, ReceivedMessage } from './client.js';
import { Stop, STOPPED } from './stop.js';

export interface Output {
  write(chunk: string | Uint8Array): unknown;
}

/**
 * `sub`: connect, subscribe to every topic, print messages until the count is reached or `signal`
 * aborts, awake or in sleep cycles (-e), then disconnect. Throws what went wrong.
 */
export async function receiveMessages(
  client: MqttSnClient,
  options: SubOptions,
  stdout: Output,
  signal: AbortSignal,
): Promise<void> {
  const stop = new Stop();
  client.on('lost', (err) => stop.fail(err));
  if (signal.aborted) stop.stop();
  signal.addEventListener('abort', () => stop.stop(), { once: true });
  let received = 0;
  client.on('message', (message) => {
    stdout.write(formatMessage(message, options.verbose));
    received++;
    if (received === options.count) {
      // What arrives from now on stays unacknowledged: the gateway keeps it for the next session.
      client.stopReceiving();
      stop.stop();
    }
  });

  const connecting = client.connect({
    keepAliveSeconds: options.keepAliveSeconds,
    cleanSession: options.cleanSession,
    will: options.will,
  });
  // Stopped before the gateway even answered: there is no session to end.
  if ((await stop.race(connecting)) === STOPPED) return;
  const waits = new AbortController();
  try {
    await subscribeAndWait(client, options, stop, waits.signal);
  } finally {
    waits.abort();
  }
  await client.disconnect();
}

async function subscribeAndWait(
  client: MqttSnClient,
  options: SubOptions,
  stop: Stop,
  waits: AbortSignal,
): Promise<void> {
  for (const topic of options.topics) {
    if ((await stop.race(client.subscribe(topic, options.qos))) === STOPPED) return;
  }
  if (options.sleepSeconds === undefined) {
    await stop.race(new Promise<never>(() => undefined));
    return;
  }
  if ((await stop.race(client.sleep(options.sleepSeconds))) === STOPPED) return;
  const wakeIntervalMs = (options.wakeIntervalSeconds ?? options.sleepSeconds) * 1000;
  for (;;) {
    if ((await stop.race(delay(wakeIntervalMs, undefined, { signal: waits }))) === STOPPED) return;
    // Buffered messages arrive as 'message' events; PINGRESP sends the client back to sleep.
    if ((await stop.race(client.wake())) === STOPPED) return;
  }
}

/** One line: the payload, or with -v `topic payload` (predefined ids as their number). */
function formatMessage(message: ReceivedMessage, verbose: boolean): Uint8Array {
  const parts: Uint8Array[] = [];
  if (verbose) parts.push(Buffer.from(`${message.topicName ?? message.topicId} `));
  parts.push(message.payload, Buffer.from('\n'));
  return Buffer.concat(parts);
}
