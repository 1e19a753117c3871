/**
 * Property tests (fast-check) and a fuzz run for the codec:
 *  - every packet type: encode -> decode gives the packet back, and re-encoding gives the same bytes;
 *  - random and mutated datagrams: decode either throws MqttSnCodecError or yields a packet that
 *    encodes to exactly the input bytes (1,000,000 inputs from a seeded PRNG, plus fast-check runs).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';

import fc from 'fast-check';

import { decode, encode, encodedLength, MqttSnCodecError, MsgType } from '../src/codec/index.js';
import type { Packet, PacketType, PlainPacket } from '../src/codec/index.js';
import { prng } from './helpers/prng.js';

const utf8 = new TextEncoder();
const utf8Len = (s: string): number => utf8.encode(s).length;

function toHex(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += x.toString(16).padStart(2, '0');
  return s;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

// ---------------------------------------------------------------- arbitraries

const u8 = fc.integer({ min: 0, max: 0xff });
const u16 = fc.integer({ min: 0, max: 0xffff });
const returnCode = fc.constantFrom(0 as const, 1 as const, 2 as const, 3 as const);
const qos012 = fc.constantFrom(0 as const, 1 as const, 2 as const);
const qosAll = fc.constantFrom(-1 as const, 0 as const, 1 as const, 2 as const);
const longLength = fc.constant(true as const);

/** Characters: mostly topic-ish ASCII, some arbitrary code points (incl. astral, BOM, NUL). */
const char = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('a', 'b', 'z', '/', '+', '#', '0', ' ', '-') },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
  { weight: 1, arbitrary: fc.constantFrom('\ufeff', '\0', 'é', '€', '\u{1f600}', '\u07ff', '\uffff') },
);
function text(minLength: number): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 8, arbitrary: fc.string({ unit: char, minLength, maxLength: 40 }) },
    { weight: 1, arbitrary: fc.string({ unit: char, minLength: 200, maxLength: 300, size: 'max' }) },
  );
}
const clientId = fc.oneof(
  fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 23 }),
  fc.string({ unit: char, minLength: 1, maxLength: 12 }).filter((s) => utf8Len(s) <= 23),
);
const bytes = fc.oneof(
  { weight: 8, arbitrary: fc.uint8Array({ maxLength: 40 }) },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 240, maxLength: 300, size: 'max' }) },
);
const nonEmptyBytes = fc.uint8Array({ minLength: 1, maxLength: 40 });

function rec<T extends Record<string, fc.Arbitrary<unknown>>>(model: T, optional: string[] = []) {
  const required = Object.keys(model).filter((k) => !optional.includes(k) && k !== 'longLength');
  return fc.record(model, {
    requiredKeys: required,
    noNullPrototype: true,
  }) as unknown as fc.Arbitrary<Packet>;
}

const plainArbs: Record<Exclude<PacketType, 'ENCAPSULATED'>, fc.Arbitrary<Packet>> = {
  ADVERTISE: rec({ type: fc.constant('ADVERTISE'), gwId: u8, duration: u16, longLength }),
  SEARCHGW: rec({ type: fc.constant('SEARCHGW'), radius: u8, longLength }),
  GWINFO: rec({ type: fc.constant('GWINFO'), gwId: u8, gwAddress: nonEmptyBytes, longLength }, ['gwAddress']),
  CONNECT: rec({
    type: fc.constant('CONNECT'),
    will: fc.boolean(),
    cleanSession: fc.boolean(),
    protocolId: u8,
    duration: u16,
    clientId,
    longLength,
  }),
  CONNACK: rec({ type: fc.constant('CONNACK'), returnCode, longLength }),
  WILLTOPICREQ: rec({ type: fc.constant('WILLTOPICREQ'), longLength }),
  WILLTOPIC: fc.oneof(
    rec({ type: fc.constant('WILLTOPIC'), qos: fc.constant(0), retain: fc.constant(false), longLength }),
    rec({
      type: fc.constant('WILLTOPIC'),
      qos: qos012,
      retain: fc.boolean(),
      willTopic: text(0),
      longLength,
    }),
  ),
  WILLMSGREQ: rec({ type: fc.constant('WILLMSGREQ'), longLength }),
  WILLMSG: rec({ type: fc.constant('WILLMSG'), willMsg: bytes, longLength }),
  REGISTER: rec({ type: fc.constant('REGISTER'), topicId: u16, msgId: u16, topicName: text(1), longLength }),
  REGACK: rec({ type: fc.constant('REGACK'), topicId: u16, msgId: u16, returnCode, longLength }),
  PUBLISH: rec({
    type: fc.constant('PUBLISH'),
    dup: fc.boolean(),
    qos: qosAll,
    retain: fc.boolean(),
    topicIdType: fc.constantFrom('normal', 'predefined', 'short'),
    topicId: u16,
    msgId: u16,
    data: bytes,
    longLength,
  }),
  PUBACK: rec({ type: fc.constant('PUBACK'), topicId: u16, msgId: u16, returnCode, longLength }),
  PUBCOMP: rec({ type: fc.constant('PUBCOMP'), msgId: u16, longLength }),
  PUBREC: rec({ type: fc.constant('PUBREC'), msgId: u16, longLength }),
  PUBREL: rec({ type: fc.constant('PUBREL'), msgId: u16, longLength }),
  SUBSCRIBE: fc.oneof(
    rec({
      type: fc.constant('SUBSCRIBE'),
      dup: fc.boolean(),
      qos: qos012,
      msgId: u16,
      topicIdType: fc.constant('normal'),
      topicName: text(1),
      longLength,
    }),
    rec({
      type: fc.constant('SUBSCRIBE'),
      dup: fc.boolean(),
      qos: qos012,
      msgId: u16,
      topicIdType: fc.constantFrom('predefined', 'short'),
      topicId: u16,
      longLength,
    }),
  ),
  SUBACK: rec({ type: fc.constant('SUBACK'), qos: qos012, topicId: u16, msgId: u16, returnCode, longLength }),
  UNSUBSCRIBE: fc.oneof(
    rec({
      type: fc.constant('UNSUBSCRIBE'),
      msgId: u16,
      topicIdType: fc.constant('normal'),
      topicName: text(1),
      longLength,
    }),
    rec({
      type: fc.constant('UNSUBSCRIBE'),
      msgId: u16,
      topicIdType: fc.constantFrom('predefined', 'short'),
      topicId: u16,
      longLength,
    }),
  ),
  UNSUBACK: rec({ type: fc.constant('UNSUBACK'), msgId: u16, longLength }),
  PINGREQ: rec({ type: fc.constant('PINGREQ'), clientId, longLength }, ['clientId']),
  PINGRESP: rec({ type: fc.constant('PINGRESP'), longLength }),
  DISCONNECT: rec({ type: fc.constant('DISCONNECT'), duration: u16, longLength }, ['duration']),
  WILLTOPICUPD: fc.oneof(
    rec({ type: fc.constant('WILLTOPICUPD'), qos: fc.constant(0), retain: fc.constant(false), longLength }),
    rec({
      type: fc.constant('WILLTOPICUPD'),
      qos: qos012,
      retain: fc.boolean(),
      willTopic: text(0),
      longLength,
    }),
  ),
  WILLTOPICRESP: rec({ type: fc.constant('WILLTOPICRESP'), returnCode, longLength }),
  WILLMSGUPD: rec({ type: fc.constant('WILLMSGUPD'), willMsg: bytes, longLength }),
  WILLMSGRESP: rec({ type: fc.constant('WILLMSGRESP'), returnCode, longLength }),
};

const plainPacket = fc.oneof(...Object.values(plainArbs));

const arbs: Record<PacketType, fc.Arbitrary<Packet>> = {
  ...plainArbs,
  ENCAPSULATED: rec({
    type: fc.constant('ENCAPSULATED'),
    radius: fc.integer({ min: 0, max: 3 }),
    wirelessNodeId: fc.oneof(
      { weight: 8, arbitrary: fc.uint8Array({ maxLength: 16 }) },
      { weight: 1, arbitrary: fc.uint8Array({ minLength: 250, maxLength: 256, size: 'max' }) },
    ),
    packet: plainPacket,
    longLength,
  }),
};

const anyPacket = fc.oneof(...Object.values(arbs));

// ---------------------------------------------------------------- round-trip property

/** Total size given by a header at `at`, and whether it is the 3-byte form. */
function headerAt(b: Uint8Array, at: number): { total: number; long: boolean } {
  return b[at] === 1 ? { total: (b[at + 1]! << 8) | b[at + 2]!, long: true } : { total: b[at]!, long: false };
}

/**
 * Length form rule, checked independently of the codec: the 1-byte form iff the message is at most
 * 255 bytes and longLength is not set; decode reports longLength only where the short form would fit.
 */
function expectedAfterRoundTrip(p: Packet, b: Uint8Array): Packet {
  const check = (q: Packet, at: number, size: number): Packet => {
    const { total, long } = headerAt(b, at);
    assert.equal(total, size, 'length field = message size');
    const fitsShort = (long ? total - 2 : total) <= 255;
    assert.equal(long, q.longLength === true || !fitsShort, 'shortest form unless longLength');
    const copy = { ...q };
    if (!(long && fitsShort)) delete copy.longLength;
    return copy;
  };
  if (p.type === 'ENCAPSULATED') {
    const outerSize = headerAt(b, 0).total;
    const outer = check(p, 0, outerSize) as Packet & { type: 'ENCAPSULATED' };
    return { ...outer, packet: check(p.packet, outerSize, b.length - outerSize) as PlainPacket };
  }
  return check(p, 0, b.length);
}

function roundTrip(p: Packet): void {
  const b = encode(p);
  assert.equal(encodedLength(p), b.length);
  const back = decode(b);
  assert.deepStrictEqual(back, expectedAfterRoundTrip(p, b));
  assert.equal(toHex(encode(back)), toHex(b));
}

const RUNS_PER_TYPE = 4000;

describe('property: encode -> decode -> encode, every packet type', () => {
  for (const [type, arb] of Object.entries(arbs)) {
    it(`${type} (${RUNS_PER_TYPE} runs)`, () => {
      fc.assert(
        fc.property(arb, (p) => {
          assert.equal(p.type, type);
          roundTrip(p);
        }),
        { numRuns: RUNS_PER_TYPE },
      );
    });
  }

  it('strings with lone surrogates are refused, never silently replaced', () => {
    const surrogateish = fc.string({
      unit: fc.oneof(
        fc.constantFrom('a', '\ud800', '\udbff', '\udc00', '\udfff'),
        fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
      ),
      minLength: 1,
      maxLength: 8,
    });
    fc.assert(
      fc.property(surrogateish, (topicName) => {
        const p: Packet = { type: 'REGISTER', topicId: 0, msgId: 1, topicName };
        // TextEncoder substitutes U+FFFD for lone surrogates, so a lossy string does not survive this
        const wellFormed = new TextDecoder().decode(utf8.encode(topicName)) === topicName;
        try {
          const b = encode(p);
          assert.ok(wellFormed, 'encoded an ill-formed string');
          assert.deepStrictEqual(decode(b), p);
        } catch (err) {
          assert.ok(err instanceof MqttSnCodecError);
          assert.ok(!wellFormed, `refused a well-formed string: ${err.reason}`);
          assert.equal(err.reason, 'unpaired surrogate');
        }
      }),
      { numRuns: 5000 },
    );
  });
});

// ---------------------------------------------------------------- fuzz

/** decode(input) must throw MqttSnCodecError or give a packet that encodes to exactly `input`. */
function checkDatagram(input: Uint8Array): 'ok' | string {
  let p: Packet;
  try {
    p = decode(input);
  } catch (err) {
    if (err instanceof MqttSnCodecError) return err.reason;
    throw new Error(`decode(${toHex(input)}) threw a non-codec error: ${String(err)}`);
  }
  let out: Uint8Array;
  try {
    out = encode(p);
  } catch (err) {
    throw new Error(`decode(${toHex(input)}) gave a packet encode refuses: ${String(err)}`);
  }
  if (!sameBytes(out, input)) {
    throw new Error(`decode(${toHex(input)}) re-encodes to ${toHex(out)}`);
  }
  return 'ok';
}

function captureCorpus(): Uint8Array[] {
  const scenarios = JSON.parse(
    readFileSync(new URL('../fixtures/wire-captures.json', import.meta.url), 'utf8'),
  ) as { packets: { hex: string }[] }[];
  const unique = new Set<string>();
  for (const s of scenarios) for (const p of s.packets) unique.add(p.hex);
  return [...unique].map((h) => Uint8Array.from(Buffer.from(h, 'hex')));
}

/** Sets the length field(s) to match the datagram size where possible (keeps the header form). */
function fixLength(b: Uint8Array): void {
  if (b.length < 2) return;
  if (b[0] === 1) {
    if (b.length >= 4 && b.length <= 0xffff) {
      b[1] = b.length >> 8;
      b[2] = b.length & 0xff;
    }
  } else if (b.length <= 255 && b[1] !== 0xfe) {
    b[0] = b.length;
  }
}

const KNOWN_TYPES = Object.values(MsgType);

function fuzzInput(rnd: () => number, corpus: Uint8Array[]): Uint8Array {
  const int = (n: number): number => Math.floor(rnd() * n);
  const mode = int(100);
  if (mode < 10) {
    // pure random bytes, random length 0..300
    const b = new Uint8Array(int(301));
    for (let i = 0; i < b.length; i++) b[i] = int(256);
    return b;
  }
  if (mode < 25) {
    // random body behind a consistent header with a (mostly) known type
    const len = 2 + int(int(4) === 0 ? 299 : 12);
    const long = len > 255 || int(10) === 0;
    const b = new Uint8Array(long ? Math.max(len, 4) : len);
    for (let i = 0; i < b.length; i++) b[i] = int(256);
    const type = int(8) === 0 ? int(256) : KNOWN_TYPES[int(KNOWN_TYPES.length)]!;
    if (long) {
      b[0] = 1;
      b[1] = b.length >> 8;
      b[2] = b.length & 0xff;
      b[3] = type;
    } else {
      b[0] = b.length;
      b[1] = type;
    }
    return b;
  }
  const src = corpus[int(corpus.length)]!;
  if (mode < 45) {
    // 1..3 bit flips anywhere
    const b = src.slice();
    for (let k = 1 + int(3); k > 0; k--) b[int(b.length)]! ^= 1 << int(8);
    return b;
  }
  if (mode < 55) {
    // truncation, length fixed up half of the time
    const b = src.slice(0, int(src.length + 1));
    if (int(2) === 0) fixLength(b);
    return b;
  }
  if (mode < 65) {
    // extension with random bytes, length fixed up half of the time
    const extra = 1 + int(int(4) === 0 ? 300 : 8);
    const b = new Uint8Array(src.length + extra);
    b.set(src);
    for (let i = src.length; i < b.length; i++) b[i] = int(256);
    if (int(2) === 0) fixLength(b);
    return b;
  }
  if (mode < 85) {
    // 1..2 body bytes replaced by random values (length untouched)
    const b = src.slice();
    const headerLen = b[0] === 1 ? 4 : 2;
    if (b.length > headerLen) {
      for (let k = 1 + int(2); k > 0; k--) b[headerLen + int(b.length - headerLen)] = int(256);
    }
    return b;
  }
  if (mode < 92) {
    // header switched between the short and the long form
    if (src[0] === 1 && src.length >= 4) {
      const b = new Uint8Array(src.length - 2);
      b.set(src.subarray(3), 1);
      b[0] = b.length & 0xff;
      return b;
    }
    const b = new Uint8Array(src.length + 2);
    b.set(src.subarray(1), 3);
    b[0] = 1;
    b[1] = b.length >> 8;
    b[2] = b.length & 0xff;
    return b;
  }
  return src.slice(); // valid as is
}

const FUZZ_ITERATIONS = 1_000_000;

describe('fuzz: random and mutated datagrams', () => {
  it(`${FUZZ_ITERATIONS.toLocaleString('en')} seeded inputs: decode throws MqttSnCodecError or round-trips exactly`, () => {
    const captures = captureCorpus();
    const generated = fc.sample(anyPacket, { numRuns: 3000, seed: 0x5eed }).map((p) => encode(p));
    const corpus = [...captures, ...generated];
    const rnd = prng(0xc0dec);
    const reasons = new Map<string, number>();
    const started = process.hrtime.bigint();
    for (let i = 0; i < FUZZ_ITERATIONS; i++) {
      let outcome = checkDatagram(fuzzInput(rnd, corpus));
      if (outcome.startsWith('unknown message type')) outcome = 'unknown message type';
      reasons.set(outcome, (reasons.get(outcome) ?? 0) + 1);
    }
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    const ok = reasons.get('ok') ?? 0;
    const top = [...reasons].sort((a, b) => b[1] - a[1]);
    console.log(
      `fuzz: ${FUZZ_ITERATIONS} datagrams in ${(ms / 1000).toFixed(2)} s ` +
        `(${Math.round(FUZZ_ITERATIONS / (ms / 1000)).toLocaleString('en')}/s), ${ok} decoded and round-tripped, ` +
        `${FUZZ_ITERATIONS - ok} rejected; outcomes: ${top.map(([r, n]) => `${r}=${n}`).join(', ')}`,
    );
    // the fuzz must exercise both paths and most rejection reasons, or it proves nothing
    assert.ok(ok > FUZZ_ITERATIONS * 0.15, `too few valid inputs: ${ok}`);
    assert.ok(FUZZ_ITERATIONS - ok > FUZZ_ITERATIONS * 0.3, 'too few invalid inputs');
    for (const reason of [
      'truncated',
      'trailing bytes',
      'length mismatch',
      'invalid length',
      'reserved flag bits set',
      'reserved topic id type',
      'invalid qos',
      'reserved return code',
      'invalid utf-8',
      'empty topic name',
      'empty client id',
      'client id too long',
      'reserved ctrl bits set',
      'nested encapsulation',
      'unknown message type',
    ]) {
      assert.ok((reasons.get(reason) ?? 0) > 0, `fuzz never hit '${reason}'`);
    }
  });

  it('fast-check: arbitrary byte strings', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
        checkDatagram(b);
      }),
      { numRuns: 20_000 },
    );
  });

  it('fast-check: valid encodings with random byte edits, truncations and extensions', () => {
    const edit = fc.record({ at: fc.nat(), value: u8 });
    fc.assert(
      fc.property(
        anyPacket,
        fc.array(edit, { maxLength: 4 }),
        fc.nat(),
        fc.uint8Array({ maxLength: 6 }),
        (p, edits, cut, tail) => {
          const valid = encode(p);
          const b = new Uint8Array(valid.length + tail.length);
          b.set(valid);
          b.set(tail, valid.length);
          for (const e of edits) b[e.at % b.length] = e.value;
          checkDatagram(b);
          checkDatagram(b.subarray(0, cut % (b.length + 1)));
        },
      ),
      { numRuns: 20_000 },
    );
  });
});
