/**
 * `mqttsn-bridge dead-letters [--data-dir DIR] [--limit N]`: prints the messages the broker would not
 * take (see store/dead-letter.ts), oldest first, one JSON object per line, payload in base64. The
 * gateway holds the database's lock while it runs, so stop it first (or copy the data dir).
 */
import { parseArgs } from 'node:util';
import { openStore } from '../store/db.js';
import { DeadLetters } from '../store/dead-letter.js';

export async function runDeadLetters(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      'data-dir': { type: 'string', default: './data' },
      limit: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(
      'usage: mqttsn-bridge dead-letters [--data-dir DIR] [--limit N]\n' +
        'Prints the messages the broker refused (kept in DIR), oldest first, one JSON object per line.\n',
    );
    return 0;
  }
  const dir = values['data-dir'];
  let store;
  try {
    store = await openStore(dir);
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code;
    process.stderr.write(
      cause === 'LEVEL_LOCKED'
        ? `cannot read ${dir}: a running mqttsn-bridge holds it; stop it first, or run this on a copy\n`
        : `cannot open ${dir}: ${err instanceof Error ? err.message : String(err)}\n`,
    );
    return 1;
  }
  try {
    const deadLetters = await DeadLetters.open(store);
    const limit = values.limit === undefined ? undefined : Number(values.limit);
    for (const letter of await deadLetters.list(limit)) {
      const { payload, ...rest } = letter;
      process.stdout.write(
        `${JSON.stringify({
          ...rest,
          receivedAt: new Date(letter.receivedAt).toISOString(),
          deadLetteredAt: new Date(letter.deadLetteredAt).toISOString(),
          bytes: payload.length,
          payload: payload.toString('base64'),
        })}\n`,
      );
    }
    process.stderr.write(`${deadLetters.count} dead letter(s) in ${dir}\n`);
    return 0;
  } finally {
    await store.close();
  }
}
