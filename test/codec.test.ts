import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  decode,
  encode,
  encodedLength,
  MAX_PACKET_LENGTH,
  MqttSnCodecError,
  MsgType,
  MsgTypeName,
  shortTopicId,
  shortTopicName,
} from '../src/codec/index.js';
import type { CodecOptions, Packet, PacketOf } from '../src/codec/index.js';

/** Hex (spaces and '|' allowed as separators) → a plain Uint8Array (not a Buffer). */
function hex(s: string): Uint8Array {
  const clean = s.replace(/[\s|]/g, '');
  assert.equal(clean.length % 2, 0, `odd hex: ${s}`);
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) {
    const byte = Number.parseInt(clean.slice(i * 2, i * 2 + 2), 16);
    assert.ok(!Number.isNaN(byte), `bad hex: ${s}`);
    out[i] = byte;
  }
  return out;
}

function toHex(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += x.toString(16).padStart(2, '0');
  return s;
}

function ascii(s: string): string {
  let h = '';
  for (let i = 0; i < s.length; i++) h += s.charCodeAt(i).toString(16).padStart(2, '0');
  return h;
}

function bytes(...values: number[]): Uint8Array {
  return Uint8Array.from(values);
}

/** assert.throws predicate: an MqttSnCodecError with this reason (and msgType, if given). */
function codecError(reason: string, msgType?: number | null) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof MqttSnCodecError, `expected MqttSnCodecError, got ${String(err)}`);
    assert.equal(err.reason, reason);
    assert.equal(err.name, 'MqttSnCodecError');
    if (msgType === null) assert.equal(err.msgType, undefined);
    else if (msgType !== undefined) assert.equal(err.msgType, msgType);
    return true;
  };
}

interface Case {
  name: string;
  hex: string;
  packet: Packet;
  options?: CodecOptions;
}

const xs = (n: number): Uint8Array => new Uint8Array(n).fill(0x78);

const cases: Case[] = [
  // ADVERTISE 0x00
  { name: 'ADVERTISE', hex: '05 00 07 0384', packet: { type: 'ADVERTISE', gwId: 7, duration: 900 } },
  {
    name: 'ADVERTISE, optional long length form',
    hex: '01 0007 00 07 0384',
    packet: { type: 'ADVERTISE', gwId: 7, duration: 900, longLength: true },
  },
  // SEARCHGW 0x01
  { name: 'SEARCHGW', hex: '03 01 02', packet: { type: 'SEARCHGW', radius: 2 } },
  // GWINFO 0x02
  { name: 'GWINFO from a gateway (no address)', hex: '03 02 01', packet: { type: 'GWINFO', gwId: 1 } },
  {
    name: 'GWINFO from a client (with address)',
    hex: '07 02 01 c0a80001',
    packet: { type: 'GWINFO', gwId: 1, gwAddress: bytes(192, 168, 0, 1) },
  },
  // CONNECT 0x04
  {
    name: 'CONNECT clean session (capture A)',
    hex: '0f 04 04 01 000a 707562636c69656e74',
    packet: {
      type: 'CONNECT',
      will: false,
      cleanSession: true,
      protocolId: 1,
      duration: 10,
      clientId: 'pubclient',
    },
  },
  {
    name: 'CONNECT will, ProtocolId 0x02 (a 2.0 client decodes; the gateway decides)',
    hex: '08 04 08 02 ffff 6964',
    packet: {
      type: 'CONNECT',
      will: true,
      cleanSession: false,
      protocolId: 2,
      duration: 65535,
      clientId: 'id',
    },
  },
  {
    name: 'CONNECT with a 23-byte client id (the default maximum)',
    hex: '1d 04 0c 01 003c' + ascii('abcdefghijklmnopqrstuvw'),
    packet: {
      type: 'CONNECT',
      will: true,
      cleanSession: true,
      protocolId: 1,
      duration: 60,
      clientId: 'abcdefghijklmnopqrstuvw',
    },
  },
  {
    name: 'CONNECT with a non-ASCII client id (bytes counted, not chars)',
    hex: '0b 04 04 01 0001 c3bc e282ac',
    packet: { type: 'CONNECT', will: false, cleanSession: true, protocolId: 1, duration: 1, clientId: 'ü€' },
  },
  {
    name: 'CONNECT with a 40-byte client id and maxClientIdLength 64',
    hex: '2e 04 04 01 000a' + ascii('c'.repeat(40)),
    packet: {
      type: 'CONNECT',
      will: false,
      cleanSession: true,
      protocolId: 1,
      duration: 10,
      clientId: 'c'.repeat(40),
    },
    options: { maxClientIdLength: 64 },
  },
  // CONNACK 0x05
  { name: 'CONNACK accepted', hex: '03 05 00', packet: { type: 'CONNACK', returnCode: 0 } },
  { name: 'CONNACK not supported', hex: '03 05 03', packet: { type: 'CONNACK', returnCode: 3 } },
  // WILLTOPICREQ 0x06
  { name: 'WILLTOPICREQ', hex: '02 06', packet: { type: 'WILLTOPICREQ' } },
  // WILLTOPIC 0x07
  {
    name: 'WILLTOPIC QoS 1 retained (capture PY2)',
    hex: '09 07 30 77696c6c2f74',
    packet: { type: 'WILLTOPIC', qos: 1, retain: true, willTopic: 'will/t' },
  },
  {
    name: 'WILLTOPIC empty 2-byte form (deletes the will)',
    hex: '02 07',
    packet: { type: 'WILLTOPIC', qos: 0, retain: false },
  },
  {
    name: 'WILLTOPIC with flags and an empty topic (3 bytes)',
    hex: '03 07 40',
    packet: { type: 'WILLTOPIC', qos: 2, retain: false, willTopic: '' },
  },
  // WILLMSGREQ 0x08
  { name: 'WILLMSGREQ', hex: '02 08', packet: { type: 'WILLMSGREQ' } },
  // WILLMSG 0x09
  { name: 'WILLMSG', hex: '05 09 627965', packet: { type: 'WILLMSG', willMsg: bytes(0x62, 0x79, 0x65) } },
  { name: 'WILLMSG empty', hex: '02 09', packet: { type: 'WILLMSG', willMsg: new Uint8Array(0) } },
  {
    name: 'WILLMSG binary (not UTF-8, raw bytes)',
    hex: '04 09 ff00',
    packet: { type: 'WILLMSG', willMsg: bytes(0xff, 0x00) },
  },
  // REGISTER 0x0A
  {
    name: 'REGISTER from a client (topic id 0)',
    hex: '10 0a 0000 0001 746573742f746f706963',
    packet: { type: 'REGISTER', topicId: 0, msgId: 1, topicName: 'test/topic' },
  },
  {
    name: 'REGISTER from the gateway',
    hex: '0c 0a 0001 1001 746573742f78',
    packet: { type: 'REGISTER', topicId: 1, msgId: 0x1001, topicName: 'test/x' },
  },
  {
    name: 'REGISTER topic name with a BOM and an astral character',
    hex: '0f 0a 0002 0003 efbbbf 61 f09f9880 62',
    packet: { type: 'REGISTER', topicId: 2, msgId: 3, topicName: '\ufeffa\u{1f600}b' },
  },
  // REGACK 0x0B
  {
    name: 'REGACK',
    hex: '07 0b 0001 0001 00',
    packet: { type: 'REGACK', topicId: 1, msgId: 1, returnCode: 0 },
  },
  {
    name: 'REGACK invalid topic id',
    hex: '07 0b 0001 0001 02',
    packet: { type: 'REGACK', topicId: 1, msgId: 1, returnCode: 2 },
  },
  // PUBLISH 0x0C
  {
    name: 'PUBLISH QoS 0 normal topic id',
    hex: '0c 0c 00 0001 0000 68656c6c6f',
    packet: {
      type: 'PUBLISH',
      dup: false,
      qos: 0,
      retain: false,
      topicIdType: 'normal',
      topicId: 1,
      msgId: 0,
      data: hex('68656c6c6f'),
    },
  },
  {
    name: 'PUBLISH QoS -1 short topic (hivemq-edge#716 example)',
    hex: '12 0c 62 7474 0000 48656c6c6f20576f726c64',
    packet: {
      type: 'PUBLISH',
      dup: false,
      qos: -1,
      retain: false,
      topicIdType: 'short',
      topicId: 0x7474,
      msgId: 0,
      data: hex('48656c6c6f20576f726c64'),
    },
  },
  {
    name: 'PUBLISH DUP QoS 2 retained predefined',
    hex: '08 0c d1 1234 beef 2a',
    packet: {
      type: 'PUBLISH',
      dup: true,
      qos: 2,
      retain: true,
      topicIdType: 'predefined',
      topicId: 0x1234,
      msgId: 0xbeef,
      data: bytes(0x2a),
    },
  },
  {
    name: 'PUBLISH empty payload',
    hex: '07 0c 20 0001 0002',
    packet: {
      type: 'PUBLISH',
      dup: false,
      qos: 1,
      retain: false,
      topicIdType: 'normal',
      topicId: 1,
      msgId: 2,
      data: new Uint8Array(0),
    },
  },
  {
    name: 'PUBLISH reserved topic ids 0x0000 / 0xFFFF decode as numbers',
    hex: '07 0c 20 ffff 0000',
    packet: {
      type: 'PUBLISH',
      dup: false,
      qos: 1,
      retain: false,
      topicIdType: 'normal',
      topicId: 0xffff,
      msgId: 0,
      data: new Uint8Array(0),
    },
  },
  {
    name: 'PUBLISH Paho non-standard QoS -1 normal topic (capture PA4): ordinary PUBLISH',
    hex: '21 0c 60 0011 0000 61206c6f6e6720746f706963206e616d65 6d797061796c6f6164',
    packet: {
      type: 'PUBLISH',
      dup: false,
      qos: -1,
      retain: false,
      topicIdType: 'normal',
      topicId: 17, // the length of the name prepended to the payload
      msgId: 0,
      data: hex('61206c6f6e6720746f706963206e616d65 6d797061796c6f6164'),
    },
  },
  // 255/256/257/258 boundary
  {
    name: 'PUBLISH 254-byte body = 255 total, short form (capture ZN)',
    hex: 'ff 0c 02 6162 0000' + toHex(xs(248)),
    packet: {
      type: 'PUBLISH',
      dup: false,
      qos: 0,
      retain: false,
      topicIdType: 'short',
      topicId: 0x6162,
      msgId: 0,
      data: xs(248),
    },
  },
  {
    name: 'PUBLISH 253-byte body in the long form = 256 total, longLength',
    hex: '01 0100 0c 02 6162 0000' + toHex(xs(247)),
    packet: {
      type: 'PUBLISH',
      dup: false,
      qos: 0,
      retain: false,
      topicIdType: 'short',
      topicId: 0x6162,
      msgId: 0,
      data: xs(247),
      longLength: true,
    },
  },
  {
    name: 'PUBLISH 254-byte body in the long form = 257 total, longLength',
    hex: '01 0101 0c 02 6162 0000' + toHex(xs(248)),
    packet: {
      type: 'PUBLISH',
      dup: false,
      qos: 0,
      retain: false,
      topicIdType: 'short',
      topicId: 0x6162,
      msgId: 0,
      data: xs(248),
      longLength: true,
    },
  },
  {
    name: 'PUBLISH 255-byte body = 258 total, long form required (no longLength)',
    hex: '01 0102 0c 02 6162 0000' + toHex(xs(249)),
    packet: {
      type: 'PUBLISH',
      dup: false,
      qos: 0,
      retain: false,
      topicIdType: 'short',
      topicId: 0x6162,
      msgId: 0,
      data: xs(249),
    },
  },
  {
    name: 'PUBLISH of the largest size, 65535 bytes',
    hex: '01 ffff 0c 01 0005 0000' + toHex(xs(65526)),
    packet: {
      type: 'PUBLISH',
      dup: false,
      qos: 0,
      retain: false,
      topicIdType: 'predefined',
      topicId: 5,
      msgId: 0,
      data: xs(65526),
    },
  },
  // PUBACK 0x0D
  {
    name: 'PUBACK short topic id (capture F)',
    hex: '07 0d 6162 0001 00',
    packet: { type: 'PUBACK', topicId: 0x6162, msgId: 1, returnCode: 0 },
  },
  {
    name: 'PUBACK congestion',
    hex: '07 0d 0001 0002 01',
    packet: { type: 'PUBACK', topicId: 1, msgId: 2, returnCode: 1 },
  },
  // PUBCOMP 0x0E, PUBREC 0x0F, PUBREL 0x10
  { name: 'PUBCOMP', hex: '04 0e 0002', packet: { type: 'PUBCOMP', msgId: 2 } },
  { name: 'PUBREC', hex: '04 0f 0002', packet: { type: 'PUBREC', msgId: 2 } },
  { name: 'PUBREL', hex: '04 10 fffe', packet: { type: 'PUBREL', msgId: 0xfffe } },
  // SUBSCRIBE 0x12
  {
    name: 'SUBSCRIBE topic name',
    hex: '0f 12 00 0001 746573742f746f706963',
    packet: {
      type: 'SUBSCRIBE',
      dup: false,
      qos: 0,
      msgId: 1,
      topicIdType: 'normal',
      topicName: 'test/topic',
    },
  },
  {
    name: 'SUBSCRIBE wildcard, DUP, QoS 2',
    hex: '0b 12 c0 0007 746573742f23',
    packet: { type: 'SUBSCRIBE', dup: true, qos: 2, msgId: 7, topicIdType: 'normal', topicName: 'test/#' },
  },
  {
    name: 'SUBSCRIBE short topic',
    hex: '07 12 22 0001 6162',
    packet: { type: 'SUBSCRIBE', dup: false, qos: 1, msgId: 1, topicIdType: 'short', topicId: 0x6162 },
  },
  {
    name: 'SUBSCRIBE predefined topic id',
    hex: '07 12 41 0003 0009',
    packet: { type: 'SUBSCRIBE', dup: false, qos: 2, msgId: 3, topicIdType: 'predefined', topicId: 9 },
  },
  // SUBACK 0x13
  {
    name: 'SUBACK granted QoS 2',
    hex: '08 13 40 0001 0001 00',
    packet: { type: 'SUBACK', qos: 2, topicId: 1, msgId: 1, returnCode: 0 },
  },
  {
    name: 'SUBACK rejected',
    hex: '08 13 00 0000 0005 03',
    packet: { type: 'SUBACK', qos: 0, topicId: 0, msgId: 5, returnCode: 3 },
  },
  // UNSUBSCRIBE 0x14
  {
    name: 'UNSUBSCRIBE topic name',
    hex: '08 14 00 0004 612f62',
    packet: { type: 'UNSUBSCRIBE', msgId: 4, topicIdType: 'normal', topicName: 'a/b' },
  },
  {
    name: 'UNSUBSCRIBE short topic',
    hex: '07 14 02 0005 6162',
    packet: { type: 'UNSUBSCRIBE', msgId: 5, topicIdType: 'short', topicId: 0x6162 },
  },
  {
    name: 'UNSUBSCRIBE predefined topic id',
    hex: '07 14 01 0006 0009',
    packet: { type: 'UNSUBSCRIBE', msgId: 6, topicIdType: 'predefined', topicId: 9 },
  },
  // UNSUBACK 0x15
  { name: 'UNSUBACK', hex: '04 15 0005', packet: { type: 'UNSUBACK', msgId: 5 } },
  // PINGREQ 0x16, PINGRESP 0x17
  { name: 'PINGREQ', hex: '02 16', packet: { type: 'PINGREQ' } },
  {
    name: 'PINGREQ with client id (sleeping client waking up)',
    hex: '07 16 736c656570',
    packet: { type: 'PINGREQ', clientId: 'sleep' },
  },
  { name: 'PINGRESP', hex: '02 17', packet: { type: 'PINGRESP' } },
  // DISCONNECT 0x18
  { name: 'DISCONNECT', hex: '02 18', packet: { type: 'DISCONNECT' } },
  {
    name: 'DISCONNECT with duration (capture L)',
    hex: '04 18 001e',
    packet: { type: 'DISCONNECT', duration: 30 },
  },
  {
    name: 'DISCONNECT, optional long length form',
    hex: '01 0004 18',
    packet: { type: 'DISCONNECT', longLength: true },
  },
  // WILLTOPICUPD 0x1A .. WILLMSGRESP 0x1D
  {
    name: 'WILLTOPICUPD',
    hex: '05 1a 50 612f',
    packet: { type: 'WILLTOPICUPD', qos: 2, retain: true, willTopic: 'a/' },
  },
  {
    name: 'WILLTOPICUPD empty (deletes the will)',
    hex: '02 1a',
    packet: { type: 'WILLTOPICUPD', qos: 0, retain: false },
  },
  { name: 'WILLTOPICRESP', hex: '03 1b 00', packet: { type: 'WILLTOPICRESP', returnCode: 0 } },
  {
    name: 'WILLMSGUPD',
    hex: '04 1c 6869',
    packet: { type: 'WILLMSGUPD', willMsg: bytes(0x68, 0x69) },
  },
  { name: 'WILLMSGRESP', hex: '03 1d 01', packet: { type: 'WILLMSGRESP', returnCode: 1 } },
  // ENCAPSULATED 0xFE
  {
    name: 'ENCAPSULATED PUBLISH (capture R)',
    hex: '08 fe 00 6e6f646531 | 0c 0c 61 0005 0000 68656c6c6f',
    packet: {
      type: 'ENCAPSULATED',
      radius: 0,
      wirelessNodeId: hex('6e6f646531'),
      packet: {
        type: 'PUBLISH',
        dup: false,
        qos: -1,
        retain: false,
        topicIdType: 'predefined',
        topicId: 5,
        msgId: 0,
        data: hex('68656c6c6f'),
      },
    },
  },
  {
    name: 'ENCAPSULATED with an empty wireless node id and radius 3',
    hex: '03 fe 03 | 02 18',
    packet: {
      type: 'ENCAPSULATED',
      radius: 3,
      wirelessNodeId: new Uint8Array(0),
      packet: { type: 'DISCONNECT' },
    },
  },
  {
    name: 'ENCAPSULATED CONNECT',
    hex: '05 fe 01 0a0b | 08 04 04 01 001e 6964',
    packet: {
      type: 'ENCAPSULATED',
      radius: 1,
      wirelessNodeId: bytes(10, 11),
      packet: {
        type: 'CONNECT',
        will: false,
        cleanSession: true,
        protocolId: 1,
        duration: 30,
        clientId: 'id',
      },
    },
  },
  {
    name: 'ENCAPSULATED, both headers in the optional long form',
    hex: '01 0006 fe 02 aa | 01 0006 0f 0009',
    packet: {
      type: 'ENCAPSULATED',
      radius: 2,
      wirelessNodeId: bytes(0xaa),
      longLength: true,
      packet: { type: 'PUBREC', msgId: 9, longLength: true },
    },
  },
  {
    name: 'ENCAPSULATED with a 253-byte node id: outer header needs the long form',
    hex: '01 0102 fe 00' + 'ab'.repeat(253) + '| 03 05 00',
    packet: {
      type: 'ENCAPSULATED',
      radius: 0,
      wirelessNodeId: new Uint8Array(253).fill(0xab),
      packet: { type: 'CONNACK', returnCode: 0 },
    },
  },
  {
    name: 'ENCAPSULATED with a 252-byte node id: 255-byte header, short form',
    hex: 'ff fe 00' + 'ab'.repeat(252) + '| 03 05 00',
    packet: {
      type: 'ENCAPSULATED',
      radius: 0,
      wirelessNodeId: new Uint8Array(252).fill(0xab),
      packet: { type: 'CONNACK', returnCode: 0 },
    },
  },
  {
    name: 'ENCAPSULATED inner PUBLISH in the required long form',
    hex: '03 fe 00 | 01 0102 0c 02 6162 0000' + toHex(xs(249)),
    packet: {
      type: 'ENCAPSULATED',
      radius: 0,
      wirelessNodeId: new Uint8Array(0),
      packet: {
        type: 'PUBLISH',
        dup: false,
        qos: 0,
        retain: false,
        topicIdType: 'short',
        topicId: 0x6162,
        msgId: 0,
        data: xs(249),
      },
    },
  },
];

describe('codec table: bytes <-> packet', () => {
  it('covers all 28 message types', () => {
    const seen = new Set<string>();
    for (const c of cases) {
      seen.add(c.packet.type);
      if (c.packet.type === 'ENCAPSULATED') seen.add(c.packet.packet.type);
    }
    assert.deepEqual([...seen].sort(), Object.keys(MsgType).sort());
    assert.equal(seen.size, 28);
  });

  for (const c of cases) {
    it(`decode: ${c.name}`, () => {
      assert.deepStrictEqual(decode(hex(c.hex), c.options), c.packet);
    });
    it(`encode: ${c.name}`, () => {
      const out = encode(c.packet, c.options);
      assert.equal(toHex(out), toHex(hex(c.hex)));
      assert.equal(encodedLength(c.packet, c.options), out.length);
      assert.ok(Object.getPrototypeOf(out) === Uint8Array.prototype, 'a plain Uint8Array, not a Buffer');
    });
  }

  it('longLength: true on a packet that needs the long form anyway changes nothing', () => {
    const p: Packet = {
      type: 'PUBLISH',
      dup: false,
      qos: 0,
      retain: false,
      topicIdType: 'short',
      topicId: 0x6162,
      msgId: 0,
      data: xs(249),
    };
    assert.equal(toHex(encode({ ...p, longLength: true })), toHex(encode(p)));
    assert.equal(decode(encode({ ...p, longLength: true })).longLength, undefined);
  });

  it('longLength: false (or absent) gives the short form', () => {
    assert.equal(toHex(encode({ type: 'PINGRESP', longLength: false })), '0217');
  });

  it('PUBLISH data, WILLMSG, GWINFO address and node id are views into the input, not copies', () => {
    const outer = hex('aaaa 0c 0c 00 0001 0000 68656c6c6f bbbb');
    const dgram = outer.subarray(2, 14);
    const p = decode(dgram) as PacketOf<'PUBLISH'>;
    assert.equal(p.data.buffer, outer.buffer);
    assert.equal(p.data.byteOffset, 2 + 7);
    assert.equal(p.data.length, 5);
    outer[9] = 0x48; // mutating the datagram shows through the view
    assert.equal(p.data[0], 0x48);

    const w = hex('05 09 627965');
    assert.equal((decode(w) as PacketOf<'WILLMSG'>).willMsg.buffer, w.buffer);
    const g = hex('07 02 01 c0a80001');
    assert.equal((decode(g) as PacketOf<'GWINFO'>).gwAddress?.buffer, g.buffer);
    const e = hex('08 fe 00 6e6f646531 0c0c610005000068656c6c6f');
    const enc = decode(e) as PacketOf<'ENCAPSULATED'>;
    assert.equal(enc.wirelessNodeId.buffer, e.buffer);
    assert.equal((enc.packet as PacketOf<'PUBLISH'>).data.byteOffset, 15);
  });

  it('decodes a Node Buffer too (a Uint8Array subclass)', () => {
    const p = decode(Buffer.from('0c0c000001000068656c6c6f', 'hex')) as PacketOf<'PUBLISH'>;
    assert.equal(p.topicId, 1);
    assert.equal(Buffer.from(p.data).toString(), 'hello');
  });

  it('strings longer than the fast paths round-trip (TextDecoder / encodeInto paths)', () => {
    const names = ['a/'.repeat(100), 'ü/'.repeat(70) + '\u{1f600}', 'x'.repeat(65), 'é'.repeat(33)];
    for (const topicName of names) {
      const p: Packet = { type: 'REGISTER', topicId: 1, msgId: 2, topicName };
      const b = encode(p);
      assert.equal(toHex(b.subarray(b[0] === 1 ? 8 : 6)), toHex(new TextEncoder().encode(topicName)));
      assert.deepStrictEqual(decode(b), p);
    }
  });

  it('decoded packets have a stable key order per type', () => {
    const a = decode(hex('0c0c000001000068656c6c6f'));
    const b = decode(hex('080cd1123401022a'));
    assert.deepEqual(Object.keys(a), Object.keys(b));
  });
});

interface Reject {
  name: string;
  hex: string;
  reason: string;
  /** Expected msgType; null = must be absent. */
  msgType?: number | null;
  options?: CodecOptions;
  forwarder?: { radius: number; wirelessNodeId: string };
}

const rejects: Reject[] = [
  // header
  { name: 'empty datagram', hex: '', reason: 'truncated', msgType: null },
  { name: 'one byte', hex: '02', reason: 'truncated', msgType: null },
  { name: 'length byte 0x00', hex: '00 0c 00 0001 0000', reason: 'invalid length', msgType: null },
  { name: 'long form cut inside the length', hex: '01 00', reason: 'truncated', msgType: null },
  { name: 'long form without type byte', hex: '01 00 03', reason: 'truncated', msgType: null },
  { name: 'long form length < 4', hex: '01 0003 18', reason: 'invalid length', msgType: 0x18 },
  { name: 'long form length 0', hex: '01 0000 18', reason: 'invalid length', msgType: 0x18 },
  { name: 'length larger than datagram', hex: '05 05 00', reason: 'length mismatch', msgType: 5 },
  { name: 'length smaller than datagram', hex: '02 05 00', reason: 'length mismatch', msgType: 5 },
  { name: 'long length larger than datagram', hex: '01 0006 05 00', reason: 'length mismatch', msgType: 5 },
  {
    name: 'long length smaller than datagram',
    hex: '01 0004 18 0000',
    reason: 'length mismatch',
    msgType: 0x18,
  },
  {
    name: 'two messages in one datagram',
    hex: '0218 0218',
    reason: 'length mismatch',
    msgType: 0x18,
  },
  // unknown types
  { name: 'reserved type 0x03', hex: '02 03', reason: 'unknown message type 0x03', msgType: 3 },
  { name: 'reserved type 0x11', hex: '04 11 0001', reason: 'unknown message type 0x11', msgType: 0x11 },
  { name: 'reserved type 0x19', hex: '02 19', reason: 'unknown message type 0x19', msgType: 0x19 },
  { name: 'reserved type 0x1e', hex: '02 1e', reason: 'unknown message type 0x1e', msgType: 0x1e },
  { name: 'reserved type 0x80', hex: '03 80 00', reason: 'unknown message type 0x80', msgType: 0x80 },
  { name: 'reserved type 0xfd', hex: '02 fd', reason: 'unknown message type 0xfd', msgType: 0xfd },
  { name: 'reserved type 0xff', hex: '02 ff', reason: 'unknown message type 0xff', msgType: 0xff },
  {
    name: 'reserved type in the long form',
    hex: '01 0004 03',
    reason: 'unknown message type 0x03',
    msgType: 3,
  },
  // flags
  { name: 'CONNECT DUP bit', hex: '08 04 84 01 000a 6964', reason: 'reserved flag bits set', msgType: 4 },
  { name: 'CONNECT QoS bits', hex: '08 04 24 01 000a 6964', reason: 'reserved flag bits set', msgType: 4 },
  { name: 'CONNECT retain bit', hex: '08 04 14 01 000a 6964', reason: 'reserved flag bits set', msgType: 4 },
  { name: 'CONNECT topic id type bits', hex: '08 04 05 01 000a 6964', reason: 'reserved flag bits set' },
  { name: 'WILLTOPIC DUP bit', hex: '04 07 80 61', reason: 'reserved flag bits set', msgType: 7 },
  { name: 'WILLTOPIC will bit', hex: '04 07 08 61', reason: 'reserved flag bits set', msgType: 7 },
  { name: 'WILLTOPICUPD clean bit', hex: '04 1a 04 61', reason: 'reserved flag bits set', msgType: 0x1a },
  { name: 'WILLTOPIC topic id type bits', hex: '04 07 02 61', reason: 'reserved flag bits set' },
  { name: 'WILLTOPIC QoS -1', hex: '04 07 60 61', reason: 'invalid qos', msgType: 7 },
  { name: 'PUBLISH will bit', hex: '07 0c 08 0001 0000', reason: 'reserved flag bits set', msgType: 0x0c },
  { name: 'PUBLISH clean session bit', hex: '07 0c 04 0001 0000', reason: 'reserved flag bits set' },
  {
    name: 'PUBLISH topic id type 0b11',
    hex: '07 0c 03 0001 0000',
    reason: 'reserved topic id type',
    msgType: 12,
  },
  {
    name: 'SUBSCRIBE retain bit',
    hex: '07 12 11 0001 0005',
    reason: 'reserved flag bits set',
    msgType: 0x12,
  },
  { name: 'SUBSCRIBE will bit', hex: '07 12 09 0001 0005', reason: 'reserved flag bits set' },
  { name: 'SUBSCRIBE topic id type 0b11', hex: '07 12 03 0001 0005', reason: 'reserved topic id type' },
  { name: 'SUBSCRIBE QoS -1', hex: '07 12 61 0001 0005', reason: 'invalid qos', msgType: 0x12 },
  {
    name: 'UNSUBSCRIBE QoS bits',
    hex: '07 14 21 0001 0005',
    reason: 'reserved flag bits set',
    msgType: 0x14,
  },
  { name: 'UNSUBSCRIBE DUP bit', hex: '07 14 81 0001 0005', reason: 'reserved flag bits set' },
  { name: 'UNSUBSCRIBE topic id type 0b11', hex: '07 14 03 0001 0005', reason: 'reserved topic id type' },
  { name: 'SUBACK DUP bit', hex: '08 13 80 0001 0001 00', reason: 'reserved flag bits set', msgType: 0x13 },
  { name: 'SUBACK topic id type bits', hex: '08 13 01 0001 0001 00', reason: 'reserved flag bits set' },
  { name: 'SUBACK retain bit', hex: '08 13 10 0001 0001 00', reason: 'reserved flag bits set' },
  { name: 'SUBACK QoS -1', hex: '08 13 60 0001 0001 00', reason: 'invalid qos', msgType: 0x13 },
  // return codes
  { name: 'CONNACK rc 4', hex: '03 05 04', reason: 'reserved return code', msgType: 5 },
  { name: 'CONNACK rc 0x80', hex: '03 05 80', reason: 'reserved return code' },
  { name: 'REGACK rc 4', hex: '07 0b 0001 0001 04', reason: 'reserved return code', msgType: 0x0b },
  { name: 'PUBACK rc 0xff', hex: '07 0d 0001 0001 ff', reason: 'reserved return code', msgType: 0x0d },
  { name: 'SUBACK rc 4', hex: '08 13 00 0001 0001 04', reason: 'reserved return code', msgType: 0x13 },
  { name: 'WILLTOPICRESP rc 4', hex: '03 1b 04', reason: 'reserved return code', msgType: 0x1b },
  { name: 'WILLMSGRESP rc 9', hex: '03 1d 09', reason: 'reserved return code', msgType: 0x1d },
  // client ids
  { name: 'CONNECT empty client id', hex: '06 04 04 01 000a', reason: 'empty client id', msgType: 4 },
  {
    name: 'CONNECT 24-byte client id',
    hex: '1e 04 04 01 000a' + ascii('x'.repeat(24)),
    reason: 'client id too long',
    msgType: 4,
  },
  {
    name: 'CONNECT client id over maxClientIdLength',
    hex: '0f 04 04 01 000a 707562636c69656e74',
    reason: 'client id too long',
    options: { maxClientIdLength: 8 },
  },
  {
    name: 'PINGREQ 24-byte client id',
    hex: '1a 16' + ascii('x'.repeat(24)),
    reason: 'client id too long',
    msgType: 0x16,
  },
  // sizes
  { name: 'ADVERTISE short', hex: '04 00 01 00', reason: 'truncated', msgType: 0 },
  { name: 'ADVERTISE long', hex: '06 00 01 0000 00', reason: 'trailing bytes', msgType: 0 },
  { name: 'SEARCHGW without radius', hex: '02 01', reason: 'truncated', msgType: 1 },
  { name: 'SEARCHGW extra byte', hex: '04 01 01 01', reason: 'trailing bytes', msgType: 1 },
  { name: 'GWINFO without gateway id', hex: '02 02', reason: 'truncated', msgType: 2 },
  { name: 'CONNECT without duration', hex: '05 04 04 01 00', reason: 'truncated', msgType: 4 },
  { name: 'CONNECT with only the type', hex: '02 04', reason: 'truncated', msgType: 4 },
  { name: 'CONNACK without code', hex: '02 05', reason: 'truncated', msgType: 5 },
  { name: 'CONNACK extra byte', hex: '04 05 00 00', reason: 'trailing bytes', msgType: 5 },
  { name: 'WILLTOPICREQ extra byte', hex: '03 06 00', reason: 'trailing bytes', msgType: 6 },
  { name: 'WILLMSGREQ extra byte', hex: '03 08 00', reason: 'trailing bytes', msgType: 8 },
  { name: 'REGISTER without msg id', hex: '05 0a 0000 00', reason: 'truncated', msgType: 0x0a },
  { name: 'REGACK short', hex: '06 0b 0001 0001', reason: 'truncated', msgType: 0x0b },
  { name: 'PUBACK long', hex: '08 0d 0001 0001 00 00', reason: 'trailing bytes', msgType: 0x0d },
  { name: 'PUBLISH without msg id', hex: '06 0c 00 0001 00', reason: 'truncated', msgType: 0x0c },
  { name: 'PUBREL short', hex: '03 10 00', reason: 'truncated', msgType: 0x10 },
  { name: 'PUBCOMP long', hex: '05 0e 0001 00', reason: 'trailing bytes', msgType: 0x0e },
  { name: 'UNSUBACK long', hex: '05 15 0001 00', reason: 'trailing bytes', msgType: 0x15 },
  { name: 'SUBSCRIBE without msg id', hex: '04 12 00 00', reason: 'truncated', msgType: 0x12 },
  { name: 'SUBSCRIBE predefined, 1-byte id', hex: '06 12 01 0001 00', reason: 'truncated', msgType: 0x12 },
  { name: 'SUBSCRIBE short, 3-byte name', hex: '08 12 02 0001 616263', reason: 'trailing bytes' },
  { name: 'UNSUBSCRIBE short, no id', hex: '05 14 02 0001', reason: 'truncated', msgType: 0x14 },
  { name: 'SUBACK short', hex: '07 13 00 0001 0001', reason: 'truncated', msgType: 0x13 },
  { name: 'PINGRESP extra byte', hex: '03 17 00', reason: 'trailing bytes', msgType: 0x17 },
  { name: 'DISCONNECT 1 extra byte', hex: '03 18 00', reason: 'truncated', msgType: 0x18 },
  { name: 'DISCONNECT 3 extra bytes', hex: '05 18 001e 00', reason: 'trailing bytes', msgType: 0x18 },
  { name: 'WILLTOPICRESP without code', hex: '02 1b', reason: 'truncated', msgType: 0x1b },
  // topic names
  { name: 'REGISTER empty topic name', hex: '06 0a 0000 0001', reason: 'empty topic name', msgType: 0x0a },
  { name: 'SUBSCRIBE empty topic name', hex: '05 12 00 0001', reason: 'empty topic name', msgType: 0x12 },
  { name: 'UNSUBSCRIBE empty topic name', hex: '05 14 00 0001', reason: 'empty topic name', msgType: 0x14 },
  // UTF-8
  { name: 'REGISTER name 0xff', hex: '07 0a 0000 0001 ff', reason: 'invalid utf-8', msgType: 0x0a },
  { name: 'CONNECT client id c3 28', hex: '08 04 04 01 000a c328', reason: 'invalid utf-8', msgType: 4 },
  { name: 'SUBSCRIBE overlong "/"', hex: '07 12 00 0001 c0af', reason: 'invalid utf-8', msgType: 0x12 },
  { name: 'UNSUBSCRIBE encoded surrogate', hex: '08 14 00 0001 eda080', reason: 'invalid utf-8' },
  { name: 'WILLTOPIC truncated sequence', hex: '05 07 00 e282', reason: 'invalid utf-8', msgType: 7 },
  { name: 'WILLTOPICUPD lone continuation', hex: '04 1a 00 80', reason: 'invalid utf-8', msgType: 0x1a },
  { name: 'PINGREQ code point > U+10FFFF', hex: '06 16 f4908080', reason: 'invalid utf-8', msgType: 0x16 },
  {
    name: 'REGISTER long name with a bad byte at the end (TextDecoder path)',
    hex: '52 0a 0000 0001' + ascii('t'.repeat(75)) + 'fe',
    reason: 'invalid utf-8',
  },
  // encapsulation
  {
    name: 'nested encapsulation',
    hex: '03 fe 00 | 03 fe 00 | 02 18',
    reason: 'nested encapsulation',
    msgType: 0xfe,
    forwarder: { radius: 0, wirelessNodeId: '' },
  },
  {
    name: 'encapsulation ctrl bit 2',
    hex: '03 fe 04 | 02 18',
    reason: 'reserved ctrl bits set',
    msgType: 0xfe,
  },
  {
    name: 'encapsulation ctrl bit 7',
    hex: '03 fe 80 | 02 18',
    reason: 'reserved ctrl bits set',
    msgType: 0xfe,
  },
  {
    name: 'encapsulation header without ctrl',
    hex: '02 fe | 02 18',
    reason: 'invalid length',
    msgType: 0xfe,
  },
  { name: 'encapsulation long header without ctrl', hex: '01 0004 fe | 02 18', reason: 'invalid length' },
  {
    name: 'encapsulation without inner message',
    hex: '08 fe 00 6e6f646531',
    reason: 'truncated',
    msgType: 0xfe,
  },
  {
    name: 'encapsulation header past the end',
    hex: '09 fe 00 6e6f646531',
    reason: 'truncated',
    msgType: 0xfe,
  },
  {
    name: 'encapsulation, inner length too large',
    hex: '04 fe 01 07 | 03 18',
    reason: 'length mismatch',
    msgType: 0x18,
    forwarder: { radius: 1, wirelessNodeId: '07' },
  },
  {
    name: 'encapsulation, bytes after the inner message',
    hex: '03 fe 00 | 02 18 | 00',
    reason: 'length mismatch',
    msgType: 0x18,
  },
  {
    name: 'encapsulation, inner is one byte',
    hex: '03 fe 00 | 02',
    reason: 'truncated',
    msgType: null,
    forwarder: { radius: 0, wirelessNodeId: '' },
  },
  {
    name: 'encapsulation, undecodable inner CONNECT keeps the inner type and the node id',
    hex: '05 fe 02 0102 | 08 04 04 01 000a c328',
    reason: 'invalid utf-8',
    msgType: 4,
    forwarder: { radius: 2, wirelessNodeId: '0102' },
  },
  {
    name: 'encapsulation, inner reserved type',
    hex: '03 fe 00 | 02 03',
    reason: 'unknown message type 0x03',
    msgType: 3,
  },
];

describe('codec rejects malformed datagrams with MqttSnCodecError', () => {
  for (const r of rejects) {
    it(`${r.name} -> ${r.reason}`, () => {
      assert.throws(
        () => decode(hex(r.hex), r.options),
        (err: unknown) => {
          codecError(r.reason, r.msgType)(err);
          const e = err as MqttSnCodecError;
          if (r.forwarder === undefined) {
            if (!r.hex.includes('fe')) assert.equal(e.forwarder, undefined);
          } else {
            assert.ok(e.forwarder, 'forwarder info expected');
            assert.equal(e.forwarder.radius, r.forwarder.radius);
            assert.equal(toHex(e.forwarder.wirelessNodeId), r.forwarder.wirelessNodeId);
          }
          return true;
        },
      );
    });
  }

  it('the error message names the reason and the type', () => {
    try {
      decode(hex('02 03'));
      assert.fail('should throw');
    } catch (err) {
      assert.ok(err instanceof MqttSnCodecError);
      assert.ok(err instanceof Error);
      assert.match(err.message, /unknown message type 0x03/);
      assert.match(err.stack ?? '', /MqttSnCodecError/);
    }
  });

  it('an encapsulated datagram over 65535 bytes', () => {
    const nodeId = new Uint8Array(65000);
    const inner = encode({
      type: 'PUBLISH',
      dup: false,
      qos: 0,
      retain: false,
      topicIdType: 'short',
      topicId: 1,
      msgId: 0,
      data: new Uint8Array(1000),
    });
    const total = 5 + nodeId.length;
    const d = new Uint8Array(total + inner.length);
    d.set([1, total >> 8, total & 0xff, 0xfe, 0]);
    d.set(inner, total);
    assert.throws(() => decode(d), codecError('packet too large', 0xfe));
  });

  it('non-Uint8Array input', () => {
    for (const bad of [null, undefined, 'abc', [2, 0x18], new ArrayBuffer(2), new Uint16Array(2), {}]) {
      assert.throws(() => decode(bad as unknown as Uint8Array), codecError('invalid input', null));
    }
  });

  it('invalid options', () => {
    for (const max of [0, -1, 1.5, Number.NaN, '23', 70000]) {
      const options = { maxClientIdLength: max } as unknown as CodecOptions;
      assert.throws(() => decode(hex('0218'), options), codecError('invalid options'));
      assert.throws(() => encode({ type: 'PINGRESP' }, options), codecError('invalid options'));
    }
    assert.deepEqual(decode(hex('0218'), {}), { type: 'DISCONNECT' });
  });

  it('the maxClientIdLength option raises the PINGREQ bound too', () => {
    const b = hex('1a 16' + ascii('x'.repeat(24)));
    assert.deepEqual(decode(b, { maxClientIdLength: 24 }), { type: 'PINGREQ', clientId: 'x'.repeat(24) });
  });

  it('every type byte that is not a v1.2 message type is rejected, every other one is not "unknown"', () => {
    for (let t = 0; t < 256; t++) {
      const d = hex('02' + t.toString(16).padStart(2, '0'));
      let reason = '';
      try {
        decode(d);
      } catch (err) {
        assert.ok(err instanceof MqttSnCodecError);
        reason = err.reason;
        assert.equal(err.msgType, t);
      }
      const known = MsgTypeName[t] !== undefined;
      assert.equal(reason.startsWith('unknown message type'), !known, `type 0x${t.toString(16)}`);
    }
  });
});

interface Refusal {
  name: string;
  packet: unknown;
  reason: string;
  msgType?: number | null;
  options?: CodecOptions;
}

const pub = {
  type: 'PUBLISH',
  dup: false,
  qos: 0,
  retain: false,
  topicIdType: 'normal',
  topicId: 1,
  msgId: 0,
  data: new Uint8Array(0),
};

const refusals: Refusal[] = [
  { name: 'null', packet: null, reason: 'unknown packet type', msgType: null },
  { name: 'a string', packet: 'PUBLISH', reason: 'unknown packet type', msgType: null },
  { name: 'unknown type name', packet: { type: 'FOO' }, reason: 'unknown packet type', msgType: null },
  { name: 'no type', packet: {}, reason: 'unknown packet type' },
  {
    name: 'gwId 256',
    packet: { type: 'ADVERTISE', gwId: 256, duration: 1 },
    reason: 'invalid gwId',
    msgType: 0,
  },
  { name: 'gwId -1', packet: { type: 'GWINFO', gwId: -1 }, reason: 'invalid gwId', msgType: 2 },
  { name: 'gwId 1.5', packet: { type: 'GWINFO', gwId: 1.5 }, reason: 'invalid gwId' },
  { name: 'gwId NaN', packet: { type: 'GWINFO', gwId: Number.NaN }, reason: 'invalid gwId' },
  { name: 'gwId "1"', packet: { type: 'GWINFO', gwId: '1' }, reason: 'invalid gwId' },
  {
    name: 'duration 65536',
    packet: { type: 'ADVERTISE', gwId: 1, duration: 65536 },
    reason: 'invalid duration',
  },
  { name: 'radius 256', packet: { type: 'SEARCHGW', radius: 256 }, reason: 'invalid radius', msgType: 1 },
  {
    name: 'empty gwAddress',
    packet: { type: 'GWINFO', gwId: 1, gwAddress: new Uint8Array(0) },
    reason: 'empty gwAddress',
  },
  {
    name: 'gwAddress array',
    packet: { type: 'GWINFO', gwId: 1, gwAddress: [1] },
    reason: 'invalid gwAddress',
  },
  {
    name: 'CONNECT empty client id',
    packet: { type: 'CONNECT', will: false, cleanSession: true, protocolId: 1, duration: 1, clientId: '' },
    reason: 'empty client id',
    msgType: 4,
  },
  {
    name: 'CONNECT 24-char client id',
    packet: {
      type: 'CONNECT',
      will: false,
      cleanSession: true,
      protocolId: 1,
      duration: 1,
      clientId: 'x'.repeat(24),
    },
    reason: 'client id too long',
    msgType: 4,
  },
  {
    name: 'CONNECT 12-char client id of 24 bytes',
    packet: {
      type: 'CONNECT',
      will: false,
      cleanSession: true,
      protocolId: 1,
      duration: 1,
      clientId: 'é'.repeat(12),
    },
    reason: 'client id too long',
  },
  {
    name: 'CONNECT client id over maxClientIdLength',
    packet: { type: 'CONNECT', will: false, cleanSession: true, protocolId: 1, duration: 1, clientId: 'abc' },
    reason: 'client id too long',
    options: { maxClientIdLength: 2 },
  },
  {
    name: 'CONNECT protocolId 256',
    packet: { type: 'CONNECT', will: false, cleanSession: true, protocolId: 256, duration: 1, clientId: 'a' },
    reason: 'invalid protocolId',
  },
  {
    name: 'CONNECT will not boolean',
    packet: { type: 'CONNECT', will: 1, cleanSession: true, protocolId: 1, duration: 1, clientId: 'a' },
    reason: 'invalid will',
  },
  {
    name: 'CONNECT client id not a string',
    packet: { type: 'CONNECT', will: false, cleanSession: true, protocolId: 1, duration: 1, clientId: 7 },
    reason: 'invalid clientId',
  },
  {
    name: 'CONNECT client id with a lone surrogate',
    packet: {
      type: 'CONNECT',
      will: false,
      cleanSession: true,
      protocolId: 1,
      duration: 1,
      clientId: 'a\ud800',
    },
    reason: 'unpaired surrogate',
  },
  {
    name: 'CONNACK rc 4',
    packet: { type: 'CONNACK', returnCode: 4 },
    reason: 'reserved return code',
    msgType: 5,
  },
  { name: 'CONNACK rc -1', packet: { type: 'CONNACK', returnCode: -1 }, reason: 'invalid returnCode' },
  { name: 'CONNACK rc "0"', packet: { type: 'CONNACK', returnCode: '0' }, reason: 'invalid returnCode' },
  {
    name: 'WILLTOPIC qos -1',
    packet: { type: 'WILLTOPIC', qos: -1, retain: false, willTopic: 'a' },
    reason: 'invalid qos',
    msgType: 7,
  },
  {
    name: 'WILLTOPIC without topic but qos 1',
    packet: { type: 'WILLTOPIC', qos: 1, retain: false },
    reason: 'flags without will topic',
  },
  {
    name: 'WILLTOPICUPD without topic but retain',
    packet: { type: 'WILLTOPICUPD', qos: 0, retain: true },
    reason: 'flags without will topic',
    msgType: 0x1a,
  },
  {
    name: 'WILLTOPIC topic with a lone low surrogate',
    packet: { type: 'WILLTOPIC', qos: 0, retain: false, willTopic: '\udc00' },
    reason: 'unpaired surrogate',
  },
  {
    name: 'WILLMSG string',
    packet: { type: 'WILLMSG', willMsg: 'bye' },
    reason: 'invalid willMsg',
    msgType: 9,
  },
  {
    name: 'REGISTER empty name',
    packet: { type: 'REGISTER', topicId: 0, msgId: 1, topicName: '' },
    reason: 'empty topic name',
    msgType: 0x0a,
  },
  {
    name: 'REGISTER reversed surrogate pair',
    packet: { type: 'REGISTER', topicId: 0, msgId: 1, topicName: 'a\udc00\ud800b' },
    reason: 'unpaired surrogate',
  },
  {
    name: 'REGISTER msgId 65536',
    packet: { type: 'REGISTER', topicId: 0, msgId: 65536, topicName: 'a' },
    reason: 'invalid msgId',
  },
  {
    name: 'REGACK topicId -1',
    packet: { type: 'REGACK', topicId: -1, msgId: 1, returnCode: 0 },
    reason: 'invalid topicId',
    msgType: 0x0b,
  },
  {
    name: 'PUBACK rc 4',
    packet: { type: 'PUBACK', topicId: 1, msgId: 1, returnCode: 4 },
    reason: 'reserved return code',
  },
  { name: 'PUBLISH qos 3', packet: { ...pub, qos: 3 }, reason: 'invalid qos', msgType: 0x0c },
  { name: 'PUBLISH qos -2', packet: { ...pub, qos: -2 }, reason: 'invalid qos' },
  { name: 'PUBLISH dup undefined', packet: { ...pub, dup: undefined }, reason: 'invalid dup' },
  { name: 'PUBLISH retain "yes"', packet: { ...pub, retain: 'yes' }, reason: 'invalid retain' },
  {
    name: 'PUBLISH topicIdType "reserved"',
    packet: { ...pub, topicIdType: 'reserved' },
    reason: 'reserved topic id type',
  },
  { name: 'PUBLISH topicId 65536', packet: { ...pub, topicId: 0x10000 }, reason: 'invalid topicId' },
  { name: 'PUBLISH msgId 1.5', packet: { ...pub, msgId: 1.5 }, reason: 'invalid msgId' },
  { name: 'PUBLISH data string', packet: { ...pub, data: 'hello' }, reason: 'invalid data' },
  { name: 'PUBLISH data number[]', packet: { ...pub, data: [1, 2] }, reason: 'invalid data' },
  {
    name: 'PUBLISH over 65535 bytes',
    packet: { ...pub, data: new Uint8Array(65527) },
    reason: 'packet too large',
    msgType: 0x0c,
  },
  { name: 'PUBREL msgId -1', packet: { type: 'PUBREL', msgId: -1 }, reason: 'invalid msgId', msgType: 0x10 },
  { name: 'UNSUBACK msgId missing', packet: { type: 'UNSUBACK' }, reason: 'invalid msgId' },
  {
    name: 'SUBSCRIBE qos -1',
    packet: { type: 'SUBSCRIBE', dup: false, qos: -1, msgId: 1, topicIdType: 'normal', topicName: 'a' },
    reason: 'invalid qos',
    msgType: 0x12,
  },
  {
    name: 'SUBSCRIBE empty topic name',
    packet: { type: 'SUBSCRIBE', dup: false, qos: 0, msgId: 1, topicIdType: 'normal', topicName: '' },
    reason: 'empty topic name',
  },
  {
    name: 'SUBSCRIBE normal without a name',
    packet: { type: 'SUBSCRIBE', dup: false, qos: 0, msgId: 1, topicIdType: 'normal', topicId: 5 },
    reason: 'invalid topicName',
  },
  {
    name: 'SUBSCRIBE short topic id wider than 2 bytes',
    packet: { type: 'SUBSCRIBE', dup: false, qos: 0, msgId: 1, topicIdType: 'short', topicId: 0x616263 },
    reason: 'invalid topicId',
  },
  {
    name: 'SUBSCRIBE short topic given as a name',
    packet: { type: 'SUBSCRIBE', dup: false, qos: 0, msgId: 1, topicIdType: 'short', topicName: 'ab' },
    reason: 'invalid topicId',
  },
  {
    name: 'UNSUBSCRIBE predefined topicId 65536',
    packet: { type: 'UNSUBSCRIBE', msgId: 1, topicIdType: 'predefined', topicId: 65536 },
    reason: 'invalid topicId',
    msgType: 0x14,
  },
  {
    name: 'UNSUBSCRIBE topicIdType 3',
    packet: { type: 'UNSUBSCRIBE', msgId: 1, topicIdType: 3, topicId: 1 },
    reason: 'reserved topic id type',
  },
  {
    name: 'SUBACK qos 3',
    packet: { type: 'SUBACK', qos: 3, topicId: 1, msgId: 1, returnCode: 0 },
    reason: 'invalid qos',
    msgType: 0x13,
  },
  {
    name: 'SUBACK rc 4',
    packet: { type: 'SUBACK', qos: 0, topicId: 1, msgId: 1, returnCode: 4 },
    reason: 'reserved return code',
  },
  { name: 'PINGREQ empty client id', packet: { type: 'PINGREQ', clientId: '' }, reason: 'empty client id' },
  {
    name: 'PINGREQ client id too long',
    packet: { type: 'PINGREQ', clientId: 'y'.repeat(24) },
    reason: 'client id too long',
    msgType: 0x16,
  },
  {
    name: 'DISCONNECT duration -1',
    packet: { type: 'DISCONNECT', duration: -1 },
    reason: 'invalid duration',
  },
  {
    name: 'DISCONNECT duration null',
    packet: { type: 'DISCONNECT', duration: null },
    reason: 'invalid duration',
  },
  {
    name: 'WILLMSGRESP rc 4',
    packet: { type: 'WILLMSGRESP', returnCode: 4 },
    reason: 'reserved return code',
  },
  {
    name: 'nested encapsulation',
    packet: {
      type: 'ENCAPSULATED',
      radius: 0,
      wirelessNodeId: new Uint8Array(0),
      packet: {
        type: 'ENCAPSULATED',
        radius: 0,
        wirelessNodeId: new Uint8Array(0),
        packet: { type: 'PINGREQ' },
      },
    },
    reason: 'nested encapsulation',
    msgType: 0xfe,
  },
  {
    name: 'encapsulation radius 4',
    packet: {
      type: 'ENCAPSULATED',
      radius: 4,
      wirelessNodeId: new Uint8Array(0),
      packet: { type: 'PINGREQ' },
    },
    reason: 'invalid radius',
    msgType: 0xfe,
  },
  {
    name: 'encapsulation node id string',
    packet: { type: 'ENCAPSULATED', radius: 0, wirelessNodeId: 'node1', packet: { type: 'PINGREQ' } },
    reason: 'invalid wirelessNodeId',
  },
  {
    name: 'encapsulation without inner packet',
    packet: { type: 'ENCAPSULATED', radius: 0, wirelessNodeId: new Uint8Array(0) },
    reason: 'invalid packet',
  },
  {
    name: 'encapsulation with an invalid inner packet',
    packet: {
      type: 'ENCAPSULATED',
      radius: 0,
      wirelessNodeId: new Uint8Array(0),
      packet: { type: 'CONNACK', returnCode: 7 },
    },
    reason: 'reserved return code',
    msgType: 5,
  },
  {
    name: 'encapsulation over 65535 bytes in total',
    packet: {
      type: 'ENCAPSULATED',
      radius: 0,
      wirelessNodeId: new Uint8Array(60000),
      packet: { ...pub, data: new Uint8Array(6000) },
    },
    reason: 'packet too large',
    msgType: 0xfe,
  },
];

describe('encode refuses packets that would not decode back', () => {
  for (const r of refusals) {
    it(`${r.name} -> ${r.reason}`, () => {
      assert.throws(() => encode(r.packet as Packet, r.options), codecError(r.reason, r.msgType));
      assert.throws(() => encodedLength(r.packet as Packet, r.options), codecError(r.reason, r.msgType));
    });
  }
});

describe('short topic helpers', () => {
  it('shortTopicId', () => {
    assert.equal(shortTopicId('ab'), 0x6162);
    assert.equal(shortTopicId('tt'), 0x7474);
    assert.equal(shortTopicId('é'), 0xc3a9);
    assert.equal(shortTopicId('\0\0'), 0);
  });
  it('shortTopicId refuses names that are not exactly 2 bytes', () => {
    for (const bad of ['', 'a', 'abc', '€', 'aé', '\u{1f600}', 'a/b']) {
      assert.throws(() => shortTopicId(bad), codecError('invalid short topic name'), JSON.stringify(bad));
    }
    assert.throws(() => shortTopicId(12 as unknown as string), codecError('invalid short topic name'));
  });
  it('shortTopicName', () => {
    assert.equal(shortTopicName(0x6162), 'ab');
    assert.equal(shortTopicName(0xc3a9), 'é');
    assert.throws(() => shortTopicName(0xc328), codecError('invalid utf-8'));
    assert.throws(() => shortTopicName(0x00e9), codecError('invalid utf-8'));
    for (const bad of [-1, 0x10000, 1.5, Number.NaN]) {
      assert.throws(() => shortTopicName(bad), codecError('invalid topicId'));
    }
  });
  it('shortTopicName and shortTopicId are inverse over all 65536 ids', () => {
    let names = 0;
    for (let id = 0; id <= 0xffff; id++) {
      let name: string;
      try {
        name = shortTopicName(id);
      } catch (err) {
        assert.ok(err instanceof MqttSnCodecError);
        continue;
      }
      names++;
      assert.equal(shortTopicId(name), id);
      assert.equal(new TextEncoder().encode(name).length, 2);
    }
    // 128*128 ASCII pairs + 1920 two-byte characters (U+0080..U+07FF)
    assert.equal(names, 128 * 128 + 1920);
  });
  it('a SUBSCRIBE to a short topic built with shortTopicId encodes the two characters', () => {
    const b = encode({
      type: 'SUBSCRIBE',
      dup: false,
      qos: 1,
      msgId: 1,
      topicIdType: 'short',
      topicId: shortTopicId('ab'),
    });
    assert.equal(toHex(b), '07122200016162');
  });
});

describe('PacketOf', () => {
  it('narrows shared interfaces to a single type name', () => {
    const ack: PacketOf<'PUBACK'> = { type: 'PUBACK', topicId: 1, msgId: 2, returnCode: 0 };
    const upd: PacketOf<'WILLTOPICUPD'> = { type: 'WILLTOPICUPD', qos: 0, retain: false };
    assert.equal(toHex(encode(ack)), '070d0001000200');
    assert.equal(toHex(encode(upd)), '021a');
    assert.equal(MAX_PACKET_LENGTH, 65535);
  });
});
