/**
 * The outbox record's PUBLISH is written by record.ts itself, no longer by mqtt-packet: random records
 * must be byte for byte what mqtt-packet generates, parse back with mqtt-packet's parser, and read back
 * (layout, lazy fields) to what went in. Seeded: a failing seed is printed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import mqttPacket, { type IPublishPacket } from 'mqtt-packet';
import {
  decodeRecord,
  encodeRecord,
  encodeRecordLayout,
  publishStringsProblem,
  recordLayout,
} from '../src/store/record.js';
import { entryOf, entryOfLayout } from '../src/store/entry.js';
import { prng } from './helpers/prng.js';

const ALPHABET = [
  'a',
  'Z',
  '0',
  '/',
  ' ',
  '~',
  '-',
  'é', // 2 bytes
  '€', // 3 bytes
  '😀', // 4 bytes (a surrogate pair)
  '+',
  '#',
  '\u0000',
  '\u0007',
  '\u007f',
  '\u0085',
  '\ufffe',
];

function randomText(random: () => number, max: number, pool = ALPHABET.length): string {
  let text = '';
  const length = Math.floor(random() * max);
  for (let i = 0; i < length; i++) text += ALPHABET[Math.floor(random() * pool)]!;
  return text;
}

function parse(packet: Buffer): IPublishPacket {
  const parser = mqttPacket.parser({ protocolVersion: 5 });
  const found: IPublishPacket[] = [];
  parser.on('packet', (p) => found.push(p as IPublishPacket));
  parser.on('error', (err) => assert.fail(err));
  assert.equal(parser.parse(packet), 0);
  assert.equal(found.length, 1);
  return found[0]!;
}

test('random records: the same bytes as mqtt-packet, parsed back by it and by the outbox', () => {
  const seed = Number(process.env.RECORD_SEED ?? 20261201);
  const random = prng(seed);
  for (let run = 0; run < 2000; run++) {
    // Mostly printable ASCII (the fast path), sometimes anything in the alphabet.
    const pool = random() < 0.7 ? 7 : ALPHABET.length;
    const topic = randomText(random, 40, pool) || 't';
    const userProperties: Record<string, string> = {};
    const count = 1 + Math.floor(random() * 3); // mqtt-packet generates nothing for empty user properties
    for (let i = 0; i < count; i++)
      userProperties[`k${i}${randomText(random, 6, pool)}`] = randomText(random, 30, pool);
    // Sizes across the 1-, 2- and 3-byte remaining-length boundaries.
    const sizes = [0, 1, 60, 127, 200, 16_300, 20_000];
    const payload = Buffer.alloc(sizes[Math.floor(random() * sizes.length)]!, run & 0xff);
    const retain = random() < 0.5;
    const where = `seed ${seed}, run ${run}`;
    const record = encodeRecord({ topic, payload, retain, receivedAt: run, bornAt: 2 * run, userProperties });
    const expected = mqttPacket.generate(
      {
        cmd: 'publish',
        topic,
        payload,
        qos: 1,
        dup: false,
        retain,
        messageId: 0,
        properties: { userProperties },
      },
      { protocolVersion: 5 },
    );
    assert.deepEqual(record.subarray(17), expected, `${where}: bytes`);
    const parsed = parse(record.subarray(17));
    assert.equal(parsed.topic, topic, where);
    assert.deepEqual(Buffer.from(parsed.payload as Buffer), payload, where);
    const decoded = decodeRecord(record);
    assert.deepEqual(
      [decoded.topic, decoded.retain, decoded.receivedAt, decoded.userProperties],
      [topic, retain, run, userProperties],
      where,
    );
    assert.deepEqual(decoded.payload, payload, where);
    const entry = entryOf(run + 1, record)!;
    assert.deepEqual(
      [entry.seq, entry.topic, entry.retain, entry.userProperties, entry.payload.length],
      [run + 1, topic, retain, userProperties, payload.length],
      where,
    );
    // Format 4 exactly when the broker would take the strings; otherwise 2, checked before each send.
    const layout = recordLayout(record)!;
    const problem = publishStringsProblem(layout);
    assert.equal(record[0], problem === null ? 4 : 2, `${where}: ${problem}`);
    assert.equal(layout.checked, problem === null, where);
    // What an append builds its entry from: the layout read back from the bytes, without reading them.
    const fields = { topic, payload, retain, receivedAt: run, bornAt: 2 * run, userProperties };
    const { record: written, ...encoded } = encodeRecordLayout(fields);
    assert.deepEqual(written, record, where);
    assert.deepEqual(encoded, layout, `${where}: layout`);
    const appended = entryOfLayout(run + 1, encoded);
    const fieldsOf = (e: typeof entry) => [e.seq, e.topic, e.retain, e.userProperties, e.payload, e.checked];
    assert.deepEqual(fieldsOf(appended), fieldsOf(entry), `${where}: entry`);
  }
});

test('the strings check refuses what the broker would, on the bytes it would get', () => {
  const layoutOf = (topic: string, userProperties: Record<string, string> = {}) =>
    recordLayout(
      encodeRecord({ topic, payload: Buffer.from('x'), retain: false, receivedAt: 0, userProperties }),
    )!;
  assert.equal(publishStringsProblem(layoutOf('a/b', { 'mqttsn-id': 'gw:1' })), null);
  assert.equal(layoutOf('a/b').checked, true);
  assert.match(publishStringsProblem(layoutOf('a/+'))!, /wildcard/);
  assert.match(publishStringsProblem(layoutOf(''))!, /empty/);
  assert.match(publishStringsProblem(layoutOf('a\u0000b'))!, /U\+0000/);
  assert.match(publishStringsProblem(layoutOf('a', { k: 'bad\u0001' }))!, /user property/);
  assert.equal(layoutOf('a', { k: 'bad\u0001' }).checked, false);
  // A record of an older version may hold bytes that are not UTF-8 at all: refused, not "repaired".
  const record = encodeRecord({
    topic: 'ab',
    payload: Buffer.from('x'),
    retain: false,
    receivedAt: 0,
    userProperties: {},
  });
  const at = 17 + 2 + 2; // fixed header (2 bytes here), topic length
  record[at] = 0xff;
  record[0] = 2;
  const layout = recordLayout(record)!;
  assert.equal(layout.checked, false);
  assert.match(publishStringsProblem(layout)!, /UTF-8/);
});

test('a record whose PUBLISH framing is off is unreadable, not sent', () => {
  const record = encodeRecord({
    topic: 'a/b',
    payload: Buffer.from('xyz'),
    retain: false,
    receivedAt: 0,
    userProperties: { k: 'v' },
  });
  assert.ok(recordLayout(record));
  assert.equal(recordLayout(record.subarray(0, record.length - 1)), undefined, 'short');
  assert.equal(recordLayout(Buffer.concat([record, Buffer.from([0])])), undefined, 'long');
  const notPublish = Buffer.from(record);
  notPublish[17] = 0x40;
  assert.equal(recordLayout(notPublish), undefined, 'not a PUBLISH');
  const qos0 = Buffer.from(record);
  qos0[17] = 0x30;
  assert.equal(recordLayout(qos0), undefined, 'QoS 0');
  const badProperty = Buffer.from(record);
  badProperty[17 + 2 + 2 + 3 + 2 + 1] = 0x01; // the first property id: not a user property
  assert.equal(recordLayout(badProperty), undefined, 'other property');
  const topicTooLong = Buffer.from(record);
  topicTooLong.writeUInt16BE(500, 17 + 2);
  assert.equal(recordLayout(topicTooLong), undefined, 'topic past the end');
});
