/**
 * Crash-test child: appends to an outbox as fast as 20 devices would (each sends its next message once
 * the previous one is durable) and prints `<seq> <device> <counter>` for every message whose commit
 * callback fired — i.e. every message a device would have got a PUBACK for. The test SIGKILLs it.
 *
 *   node --import tsx test/scripts/outbox-writer.ts <data dir>
 */
import pino from 'pino';
import { openStore } from '../../src/store/db.js';
import { Outbox } from '../../src/store/outbox.js';

const dir = process.argv[2];
if (dir === undefined) throw new Error('usage: outbox-writer.ts <data dir>');

const store = await openStore(dir);
const outbox = await Outbox.open(store, { gatewayId: 'crash', logger: pino({ level: 'silent' }) });
process.stdout.write('ready\n');

const DEVICES = 20;

function sendNext(device: number, counter: number): void {
  const seq = outbox.lastSeq + 1;
  const result = outbox.append(
    {
      clientId: `dev-${device}`,
      topic: `crash/dev-${device}`,
      payload: Buffer.from(`${device}:${counter}`),
      retain: false,
      qos: 1,
    },
    (err) => {
      if (err) throw err;
      // Pipes are written synchronously on Linux: once this returns, the line survives a SIGKILL.
      process.stdout.write(`${seq} ${device} ${counter}\n`);
      sendNext(device, counter + 1);
    },
  );
  if (result !== 'queued') throw new Error(`append ${result}`);
}

for (let device = 0; device < DEVICES; device++) sendNext(device, 0);
