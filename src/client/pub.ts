import { readFile } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { PayloadSource, PubOptions } from './args.js';
import type { MqttSnClient } from './client.js';
import type { GatewayRefusedError } from './errors.js';
import { Stop, STOPPED } from './stop.js';

/**
 * `pub`: connect (unless QoS -1), publish every message in order, then disconnect or sleep (-e).
 * Throws what went wrong; the caller turns it into an exit code.
 */
export async function publishMessages(
  client: MqttSnClient,
  options: PubOptions,
  stdin: Readable,
): Promise<void> {
  const lost = new Stop();
  client.on('lost', (err) => lost.fail(err));
  // A QoS 0 PUBLISH gets no PUBACK unless the gateway refuses it.
  let refusal: GatewayRefusedError | undefined;
  client.on('refused', (err) => (refusal ??= err));

  const connected = options.qos !== -1;
  if (connected) {
    await client.connect({
      keepAliveSeconds: options.keepAliveSeconds,
      cleanSession: options.cleanSession,
      will: options.will,
    });
  }
  const messages = payloads(options.payload, stdin)[Symbol.asyncIterator]();
  const readsStdin = options.payload.from === 'stdin' || options.payload.from === 'lines';
  let finished = false;
  try {
    for (;;) {
      // Waiting for a line can take long (the keep-alive runs meanwhile): a lost session ends the wait.
      const next = await lost.race(messages.next());
      if (next === STOPPED || next.done) break;
      await client.publish(options.topic, next.value, { qos: options.qos, retain: options.retain });
      if (refusal) throw refusal;
    }
    finished = true;
  } finally {
    // Do not leave a read from stdin pending: it would keep the process alive.
    if (!finished && readsStdin) stdin.destroy();
  }
  if (connected) {
    if (options.sleepSeconds === undefined) await client.disconnect();
    else await client.sleep(options.sleepSeconds);
  }
  // A refusal of the last QoS 0 message can only show up by now (it precedes the DISCONNECT answer).
  if (refusal) throw refusal;
}

async function* payloads(source: PayloadSource, stdin: Readable): AsyncGenerator<Uint8Array> {
  switch (source.from) {
    case 'message':
      yield source.data;
      return;
    case 'null':
      yield new Uint8Array(0);
      return;
    case 'file':
      yield await readFile(source.path);
      return;
    case 'stdin': {
      const chunks: Buffer[] = [];
      for await (const chunk of stdin) chunks.push(toBuffer(chunk));
      yield Buffer.concat(chunks);
      return;
    }
    case 'lines':
      yield* lines(stdin);
  }
}

/**
 * One payload per line (LF or CRLF, line break removed). A last line without a newline is a line
 * too, unlike in mqtt-sn-tools, which drops it.
 */
async function* lines(stdin: Readable): AsyncGenerator<Uint8Array> {
  let pending = Buffer.alloc(0);
  for await (const chunk of stdin) {
    pending = Buffer.concat([pending, toBuffer(chunk)]);
    for (let newline = pending.indexOf(0x0a); newline >= 0; newline = pending.indexOf(0x0a)) {
      yield withoutCr(pending.subarray(0, newline));
      pending = pending.subarray(newline + 1);
    }
  }
  if (pending.length > 0) yield withoutCr(pending);
}

function withoutCr(line: Buffer): Buffer {
  return line.at(-1) === 0x0d ? line.subarray(0, -1) : line;
}

function toBuffer(chunk: unknown): Buffer {
  if (typeof chunk === 'string') return Buffer.from(chunk);
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  throw new TypeError(`stdin produced a ${typeof chunk}, not bytes or text`);
}
