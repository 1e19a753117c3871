import { MAX_CLIENT_ID_LENGTH, MAX_PACKET_LENGTH, MsgType } from './constants.js';
import { resolveMaxClientIdLength } from './decode.js';
import { MqttSnCodecError } from './errors.js';
import { utf8Length, writeUtf8 } from './helpers.js';
import type { CodecOptions, Packet, PlainPacket } from './types.js';

/*
 * Encoder. Two passes over the packet object: `bodyLength` validates every field and computes the
 * exact size, then one Uint8Array is allocated and `writeBody` fills it in place. Validation is as
 * strict as the decoder, so decode(encode(p)) deep-equals p for every packet encode accepts.
 */

/** Largest body (bytes after the length field, MsgType included) that fits the 1-byte length form. */
const MAX_SHORT_FORM_BODY = 254;

/**
 * Encodes a packet into a new Uint8Array (allocated once, exactly sized).
 * Uses the 1-byte length form whenever the message has at most 255 bytes, unless
 * `packet.longLength` is true; the 3-byte form otherwise.
 *
 * @throws MqttSnCodecError (and nothing else) for any field the decoder would not give back as is.
 */
export function encode(packet: Packet, options?: CodecOptions): Uint8Array {
  const maxClientId = options === undefined ? MAX_CLIENT_ID_LENGTH : resolveMaxClientIdLength(options);
  if (typeof packet !== 'object' || packet === null) throw new MqttSnCodecError('unknown packet type');
  if (packet.type === 'ENCAPSULATED') {
    const inner = checkEncapsulated(packet);
    const nodeId = packet.wirelessNodeId;
    const outerN = 2 + nodeId.length;
    const outerLong = packet.longLength === true || outerN > MAX_SHORT_FORM_BODY;
    const outerTotal = outerLong ? outerN + 3 : outerN + 1;
    const innerN = 1 + bodyLength(inner, maxClientId);
    const innerLong = inner.longLength === true || innerN > MAX_SHORT_FORM_BODY;
    const innerTotal = innerLong ? innerN + 3 : innerN + 1;
    if (outerTotal + innerTotal > MAX_PACKET_LENGTH) fail('packet too large', MsgType.ENCAPSULATED);
    const buf = new Uint8Array(outerTotal + innerTotal);
    let o = writeLength(buf, 0, outerTotal, outerLong);
    buf[o - 1] = MsgType.ENCAPSULATED;
    buf[o] = packet.radius;
    buf.set(nodeId, o + 1);
    o = writeLength(buf, outerTotal, innerTotal, innerLong);
    writeBody(buf, o, inner);
    return buf;
  }
  const n = 1 + bodyLength(packet, maxClientId);
  const long = packet.longLength === true || n > MAX_SHORT_FORM_BODY;
  const total = long ? n + 3 : n + 1;
  if (total > MAX_PACKET_LENGTH) fail('packet too large', MsgType[packet.type]);
  const buf = new Uint8Array(total);
  writeBody(buf, writeLength(buf, 0, total, long), packet);
  return buf;
}

/**
 * The number of bytes `encode(packet, options)` would return, with the same validation
 * (throws the same MqttSnCodecError).
 */
export function encodedLength(packet: Packet, options?: CodecOptions): number {
  const maxClientId = options === undefined ? MAX_CLIENT_ID_LENGTH : resolveMaxClientIdLength(options);
  if (typeof packet !== 'object' || packet === null) throw new MqttSnCodecError('unknown packet type');
  if (packet.type === 'ENCAPSULATED') {
    const inner = checkEncapsulated(packet);
    const outerTotal = totalLength(2 + packet.wirelessNodeId.length, packet.longLength, MsgType.ENCAPSULATED);
    const innerTotal = totalLength(1 + bodyLength(inner, maxClientId), inner.longLength, MsgType[inner.type]);
    if (outerTotal + innerTotal > MAX_PACKET_LENGTH) {
      throw new MqttSnCodecError('packet too large', MsgType.ENCAPSULATED);
    }
    return outerTotal + innerTotal;
  }
  return totalLength(1 + bodyLength(packet, maxClientId), packet.longLength, MsgType[packet.type]);
}

function checkEncapsulated(packet: Packet & { type: 'ENCAPSULATED' }): PlainPacket {
  const code = MsgType.ENCAPSULATED;
  checkUint(packet.radius, 3, 'radius', code);
  if (!(packet.wirelessNodeId instanceof Uint8Array)) fail('invalid wirelessNodeId', code);
  const inner = packet.packet;
  if (typeof inner !== 'object' || inner === null) fail('invalid packet', code);
  if ((inner as Packet).type === 'ENCAPSULATED') fail('nested encapsulation', code);
  return inner;
}

/** Total size for `n` bytes after the length field (MsgType + body). */
function totalLength(n: number, longLength: boolean | undefined, code: number): number {
  if (n <= MAX_SHORT_FORM_BODY && longLength !== true) return n + 1;
  if (n + 3 > MAX_PACKET_LENGTH) fail('packet too large', code);
  return n + 3;
}

/**
 * Writes the length field at `off`; returns the offset of the first body byte. The MsgType byte
 * (just before it) is written by the caller / writeBody.
 */
function writeLength(buf: Uint8Array, off: number, total: number, long: boolean): number {
  if (!long) {
    buf[off] = total;
    return off + 2;
  }
  buf[off] = 0x01;
  buf[off + 1] = total >> 8;
  buf[off + 2] = total & 0xff;
  return off + 4;
}

function fail(reason: string, code?: number): never {
  throw new MqttSnCodecError(reason, code);
}

function checkUint(v: unknown, max: number, field: string, code: number): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) fail(`invalid ${field}`, code);
}

function checkBool(v: unknown, field: string, code: number): void {
  if (typeof v !== 'boolean') fail(`invalid ${field}`, code);
}

function checkBytes(v: unknown, field: string, code: number): number {
  if (!(v instanceof Uint8Array)) fail(`invalid ${field}`, code);
  return v.length;
}

function checkReturnCode(v: unknown, code: number): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 255) fail('invalid returnCode', code);
  if (v > 3) fail('reserved return code', code);
}

/** QoS 0..2 (everything except PUBLISH). */
function checkQos(v: unknown, code: number): void {
  if (v !== 0 && v !== 1 && v !== 2) fail('invalid qos', code);
}

/** UTF-8 length of a string field; rejects non-strings and unpaired surrogates. */
function stringLength(v: unknown, field: string, code: number): number {
  if (typeof v !== 'string') fail(`invalid ${field}`, code);
  const len = utf8Length(v);
  if (len < 0) fail('unpaired surrogate', code);
  return len;
}

function topicNameLength(v: unknown, code: number): number {
  const len = stringLength(v, 'topicName', code);
  if (len === 0) fail('empty topic name', code);
  return len;
}

function clientIdLength(v: unknown, maxClientId: number, code: number): number {
  const len = stringLength(v, 'clientId', code);
  if (len === 0) fail('empty client id', code);
  if (len > maxClientId) fail('client id too long', code);
  return len;
}

/** Flag bits 1–0 for a TopicIdType name, or a failure. */
function topicIdTypeBits(v: unknown, code: number): number {
  if (v === 'normal') return 0;
  if (v === 'predefined') return 1;
  if (v === 'short') return 2;
  return fail('reserved topic id type', code);
}

/** Validates every field; returns the body size (bytes after MsgType). */
function bodyLength(p: PlainPacket, maxClientId: number): number {
  switch (p.type) {
    case 'ADVERTISE':
      checkUint(p.gwId, 0xff, 'gwId', MsgType.ADVERTISE);
      checkUint(p.duration, 0xffff, 'duration', MsgType.ADVERTISE);
      return 3;
    case 'SEARCHGW':
      checkUint(p.radius, 0xff, 'radius', MsgType.SEARCHGW);
      return 1;
    case 'GWINFO': {
      checkUint(p.gwId, 0xff, 'gwId', MsgType.GWINFO);
      if (p.gwAddress === undefined) return 1;
      const len = checkBytes(p.gwAddress, 'gwAddress', MsgType.GWINFO);
      if (len === 0) fail('empty gwAddress', MsgType.GWINFO);
      return 1 + len;
    }
    case 'CONNECT':
      checkBool(p.will, 'will', MsgType.CONNECT);
      checkBool(p.cleanSession, 'cleanSession', MsgType.CONNECT);
      checkUint(p.protocolId, 0xff, 'protocolId', MsgType.CONNECT);
      checkUint(p.duration, 0xffff, 'duration', MsgType.CONNECT);
      return 4 + clientIdLength(p.clientId, maxClientId, MsgType.CONNECT);
    case 'CONNACK':
      checkReturnCode(p.returnCode, MsgType.CONNACK);
      return 1;
    case 'WILLTOPICREQ':
    case 'WILLMSGREQ':
    case 'PINGRESP':
      return 0;
    case 'WILLTOPIC':
    case 'WILLTOPICUPD': {
      const code = MsgType[p.type];
      checkQos(p.qos, code);
      checkBool(p.retain, 'retain', code);
      if (p.willTopic === undefined) {
        if (p.qos !== 0 || p.retain) fail('flags without will topic', code);
        return 0;
      }
      return 1 + stringLength(p.willTopic, 'willTopic', code);
    }
    case 'WILLMSG':
    case 'WILLMSGUPD':
      return checkBytes(p.willMsg, 'willMsg', MsgType[p.type]);
    case 'REGISTER':
      checkUint(p.topicId, 0xffff, 'topicId', MsgType.REGISTER);
      checkUint(p.msgId, 0xffff, 'msgId', MsgType.REGISTER);
      return 4 + topicNameLength(p.topicName, MsgType.REGISTER);
    case 'REGACK':
    case 'PUBACK': {
      const code = MsgType[p.type];
      checkUint(p.topicId, 0xffff, 'topicId', code);
      checkUint(p.msgId, 0xffff, 'msgId', code);
      checkReturnCode(p.returnCode, code);
      return 5;
    }
    case 'PUBLISH': {
      const code = MsgType.PUBLISH;
      checkBool(p.dup, 'dup', code);
      const q = p.qos;
      if (q !== 0 && q !== 1 && q !== 2 && q !== -1) fail('invalid qos', code);
      checkBool(p.retain, 'retain', code);
      topicIdTypeBits(p.topicIdType, code);
      checkUint(p.topicId, 0xffff, 'topicId', code);
      checkUint(p.msgId, 0xffff, 'msgId', code);
      return 5 + checkBytes(p.data, 'data', code);
    }
    case 'PUBCOMP':
    case 'PUBREC':
    case 'PUBREL':
    case 'UNSUBACK':
      checkUint(p.msgId, 0xffff, 'msgId', MsgType[p.type]);
      return 2;
    case 'SUBSCRIBE':
    case 'UNSUBSCRIBE': {
      const code = MsgType[p.type];
      if (p.type === 'SUBSCRIBE') {
        checkBool(p.dup, 'dup', code);
        checkQos(p.qos, code);
      }
      checkUint(p.msgId, 0xffff, 'msgId', code);
      if (topicIdTypeBits(p.topicIdType, code) === 0) {
        return 3 + topicNameLength((p as { topicName: unknown }).topicName, code);
      }
      checkUint((p as { topicId: unknown }).topicId, 0xffff, 'topicId', code);
      return 5;
    }
    case 'SUBACK':
      checkQos(p.qos, MsgType.SUBACK);
      checkUint(p.topicId, 0xffff, 'topicId', MsgType.SUBACK);
      checkUint(p.msgId, 0xffff, 'msgId', MsgType.SUBACK);
      checkReturnCode(p.returnCode, MsgType.SUBACK);
      return 6;
    case 'PINGREQ':
      if (p.clientId === undefined) return 0;
      return clientIdLength(p.clientId, maxClientId, MsgType.PINGREQ);
    case 'DISCONNECT':
      if (p.duration === undefined) return 0;
      checkUint(p.duration, 0xffff, 'duration', MsgType.DISCONNECT);
      return 2;
    case 'WILLTOPICRESP':
    case 'WILLMSGRESP':
      checkReturnCode(p.returnCode, MsgType[p.type]);
      return 1;
    default:
      return fail(
        (p as { type: unknown }).type === 'ENCAPSULATED' ? 'nested encapsulation' : 'unknown packet type',
      );
  }
}

/**
 * Writes MsgType (at `o - 1`) and the body (from `o`) of a packet already validated by bodyLength.
 * Writing the type code here saves a keyed MsgType[type] lookup per call.
 */
function writeBody(buf: Uint8Array, o: number, p: PlainPacket): void {
  switch (p.type) {
    case 'ADVERTISE':
      buf[o - 1] = 0x00;
      buf[o] = p.gwId;
      buf[o + 1] = p.duration >> 8;
      buf[o + 2] = p.duration;
      return;
    case 'SEARCHGW':
      buf[o - 1] = 0x01;
      buf[o] = p.radius;
      return;
    case 'GWINFO':
      buf[o - 1] = 0x02;
      buf[o] = p.gwId;
      if (p.gwAddress !== undefined) buf.set(p.gwAddress, o + 1);
      return;
    case 'CONNECT':
      buf[o - 1] = 0x04;
      buf[o] = (p.will ? 0x08 : 0) | (p.cleanSession ? 0x04 : 0);
      buf[o + 1] = p.protocolId;
      buf[o + 2] = p.duration >> 8;
      buf[o + 3] = p.duration;
      writeUtf8(buf, o + 4, p.clientId);
      return;
    case 'CONNACK':
      buf[o - 1] = 0x05;
      buf[o] = p.returnCode;
      return;
    case 'WILLTOPICREQ':
      buf[o - 1] = 0x06;
      return;
    case 'WILLTOPIC':
    case 'WILLTOPICUPD':
      buf[o - 1] = p.type === 'WILLTOPIC' ? 0x07 : 0x1a;
      if (p.willTopic === undefined) return;
      buf[o] = (p.qos << 5) | (p.retain ? 0x10 : 0);
      writeUtf8(buf, o + 1, p.willTopic);
      return;
    case 'WILLMSGREQ':
      buf[o - 1] = 0x08;
      return;
    case 'WILLMSG':
    case 'WILLMSGUPD':
      buf[o - 1] = p.type === 'WILLMSG' ? 0x09 : 0x1c;
      buf.set(p.willMsg, o);
      return;
    case 'REGISTER':
      buf[o - 1] = 0x0a;
      buf[o] = p.topicId >> 8;
      buf[o + 1] = p.topicId;
      buf[o + 2] = p.msgId >> 8;
      buf[o + 3] = p.msgId;
      writeUtf8(buf, o + 4, p.topicName);
      return;
    case 'REGACK':
    case 'PUBACK':
      buf[o - 1] = p.type === 'REGACK' ? 0x0b : 0x0d;
      buf[o] = p.topicId >> 8;
      buf[o + 1] = p.topicId;
      buf[o + 2] = p.msgId >> 8;
      buf[o + 3] = p.msgId;
      buf[o + 4] = p.returnCode;
      return;
    case 'PUBLISH':
      buf[o - 1] = 0x0c;
      buf[o] =
        (p.dup ? 0x80 : 0) |
        ((p.qos & 3) << 5) | // QoS -1: -1 & 3 === 0b11
        (p.retain ? 0x10 : 0) |
        (p.topicIdType === 'normal' ? 0 : p.topicIdType === 'predefined' ? 1 : 2);
      buf[o + 1] = p.topicId >> 8;
      buf[o + 2] = p.topicId;
      buf[o + 3] = p.msgId >> 8;
      buf[o + 4] = p.msgId;
      buf.set(p.data, o + 5);
      return;
    case 'PUBCOMP':
    case 'PUBREC':
    case 'PUBREL':
    case 'UNSUBACK':
      buf[o - 1] =
        p.type === 'PUBCOMP' ? 0x0e : p.type === 'PUBREC' ? 0x0f : p.type === 'PUBREL' ? 0x10 : 0x15;
      buf[o] = p.msgId >> 8;
      buf[o + 1] = p.msgId;
      return;
    case 'SUBSCRIBE':
    case 'UNSUBSCRIBE': {
      let flags = p.topicIdType === 'normal' ? 0 : p.topicIdType === 'predefined' ? 1 : 2;
      if (p.type === 'SUBSCRIBE') {
        buf[o - 1] = 0x12;
        flags |= (p.dup ? 0x80 : 0) | (p.qos << 5);
      } else {
        buf[o - 1] = 0x14;
      }
      buf[o] = flags;
      buf[o + 1] = p.msgId >> 8;
      buf[o + 2] = p.msgId;
      if (p.topicIdType === 'normal') {
        writeUtf8(buf, o + 3, p.topicName);
      } else {
        buf[o + 3] = p.topicId >> 8;
        buf[o + 4] = p.topicId;
      }
      return;
    }
    case 'SUBACK':
      buf[o - 1] = 0x13;
      buf[o] = p.qos << 5;
      buf[o + 1] = p.topicId >> 8;
      buf[o + 2] = p.topicId;
      buf[o + 3] = p.msgId >> 8;
      buf[o + 4] = p.msgId;
      buf[o + 5] = p.returnCode;
      return;
    case 'PINGREQ':
      buf[o - 1] = 0x16;
      if (p.clientId !== undefined) writeUtf8(buf, o, p.clientId);
      return;
    case 'PINGRESP':
      buf[o - 1] = 0x17;
      return;
    case 'DISCONNECT':
      buf[o - 1] = 0x18;
      if (p.duration !== undefined) {
        buf[o] = p.duration >> 8;
        buf[o + 1] = p.duration;
      }
      return;
    case 'WILLTOPICRESP':
    case 'WILLMSGRESP':
      buf[o - 1] = p.type === 'WILLTOPICRESP' ? 0x1b : 0x1d;
      buf[o] = p.returnCode;
      return;
  }
}
