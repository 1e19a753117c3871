import { MAX_CLIENT_ID_LENGTH, MAX_PACKET_LENGTH, MsgType } from './constants.js';
import type { QoS, ReturnCodeValue, TopicIdTypeName } from './constants.js';
import { MqttSnCodecError } from './errors.js';
import { decodeUtf8 } from './helpers.js';
import type { CodecOptions, EncapsulatedPacket, Packet, PlainPacket } from './types.js';

/*
 * Decoder. One datagram is exactly one message (plus, for an encapsulation, exactly one inner message).
 * Reads bytes by index, never copies: Uint8Array fields (data, willMsg, gwAddress, wirelessNodeId)
 * are subarray views into the input. Throws only MqttSnCodecError and never returns a partial packet.
 *
 * The decoder is deliberately exactly as strict as the encoder, so that for every input either
 * decode throws or encode(decode(bytes)) reproduces the bytes exactly: reserved Flags bits must be
 * zero, fixed-size messages must have their exact size, return codes must be 0..3, strings must be
 * well-formed UTF-8, and a long-form length on a message that would fit the short form is recorded
 * in `longLength: true`.
 */

/** Flag bits 6–5 → QoS; 0b11 is QoS −1. */
const QOS_BY_BITS: readonly QoS[] = [0, 1, 2, -1];
/** Flag bits 1–0 → TopicIdType name (index 3, reserved, is handled before lookup). */
const TOPIC_ID_TYPE_BY_BITS: readonly TopicIdTypeName[] = ['normal', 'predefined', 'short'];

/**
 * Flags bits each message does NOT use (must be zero).
 * CONNECT uses Will + CleanSession; WILLTOPIC(UPD) QoS + Retain; PUBLISH DUP + QoS + Retain + TopicIdType;
 * SUBSCRIBE DUP + QoS + TopicIdType; UNSUBSCRIBE TopicIdType; SUBACK QoS.
 */
const UNUSED_CONNECT = 0xf3;
const UNUSED_WILLTOPIC = 0x8f;
const UNUSED_PUBLISH = 0x0c;
const UNUSED_SUBSCRIBE = 0x1c;
const UNUSED_UNSUBSCRIBE = 0xfc;
const UNUSED_SUBACK = 0x9f;

/** A long-form length describing at most this many bytes would have fitted the short form. */
const MAX_OPTIONAL_LONG_TOTAL = 257;

/** Resolves CodecOptions.maxClientIdLength (shared with encode). */
export function resolveMaxClientIdLength(options: CodecOptions | undefined): number {
  if (options == null) return MAX_CLIENT_ID_LENGTH;
  const max = options.maxClientIdLength;
  if (max === undefined) return MAX_CLIENT_ID_LENGTH;
  if (typeof max !== 'number' || !Number.isInteger(max) || max < 1 || max > MAX_PACKET_LENGTH) {
    throw new MqttSnCodecError('invalid options');
  }
  return max;
}

/**
 * Decodes one datagram into a packet.
 *
 * Notes on inputs real clients send:
 * - QoS −1 PUBLISH is decoded whatever its TopicIdType. Paho's MQTTSNPacket library emits a
 *   non-standard QoS −1 PUBLISH with TopicIdType 'normal' whose TopicId is the length of a topic
 *   name that is prepended to the payload (capture PA4). The codec decodes it as an ordinary PUBLISH
 *   (qos −1, topicIdType 'normal', topicId = name length, data = name + payload) and re-encodes it
 *   byte for byte; interpreting it is up to the gateway.
 * - Topic ids 0x0000 and 0xFFFF (reserved, §5.3.11) decode as plain numbers; the gateway answers
 *   them with a return code.
 * - CONNECT ProtocolId is decoded whatever its value (0x02 = an MQTT-SN 2.0 client).
 *
 * @throws MqttSnCodecError (and nothing else) if the datagram is not exactly one valid message.
 */
export function decode(buf: Uint8Array, options?: CodecOptions): Packet {
  if (!(buf instanceof Uint8Array)) throw new MqttSnCodecError('invalid input');
  const maxClientId = options === undefined ? MAX_CLIENT_ID_LENGTH : resolveMaxClientIdLength(options);
  return decodeAt(buf, 0, maxClientId, true);
}

function u16(buf: Uint8Array, i: number): number {
  return (buf[i]! << 8) | buf[i + 1]!;
}

function sizeError(n: number, expected: number, msgType: number): MqttSnCodecError {
  return new MqttSnCodecError(n < expected ? 'truncated' : 'trailing bytes', msgType);
}

function returnCode(rc: number, msgType: number): ReturnCodeValue {
  if (rc > 3) throw new MqttSnCodecError('reserved return code', msgType);
  return rc as ReturnCodeValue;
}

/** Decodes the message starting at `start` and ending exactly at the end of `buf`. */
function decodeAt(buf: Uint8Array, start: number, maxClientId: number, allowEncapsulation: boolean): Packet {
  const end = buf.length;
  const size = end - start;
  if (size < 2) throw new MqttSnCodecError('truncated');
  const b0 = buf[start]!;
  let total: number;
  let p: number; // first body byte (after the MsgType byte)
  let optionalLong = false;
  if (b0 === 0x01) {
    if (size < 4) throw new MqttSnCodecError('truncated');
    total = u16(buf, start + 1);
    p = start + 4;
    if (total < 4) throw new MqttSnCodecError('invalid length', buf[start + 3]);
    optionalLong = total <= MAX_OPTIONAL_LONG_TOTAL;
  } else if (b0 === 0x00) {
    throw new MqttSnCodecError('invalid length');
  } else {
    total = b0;
    p = start + 2;
  }
  const type = buf[p - 1]!;

  if (type === 0xfe) {
    // ENCAPSULATED
    if (!allowEncapsulation) throw new MqttSnCodecError('nested encapsulation', type);
    return decodeEncapsulated(buf, start, p, total, optionalLong, maxClientId);
  }
  if (total !== size) throw new MqttSnCodecError('length mismatch', type);
  const pkt = decodeBody(buf, p, type, maxClientId);
  if (optionalLong) pkt.longLength = true;
  return pkt;
}

/** The message of type `type` whose body runs from `p` to the end of `buf`. */
function decodeBody(buf: Uint8Array, p: number, type: number, maxClientId: number): PlainPacket {
  const end = buf.length;
  const n = end - p; // body bytes after MsgType

  // Literal case labels (see MsgType) so the switch compiles to a jump table.
  switch (type) {
    case 0x00: {
      // ADVERTISE
      if (n !== 3) throw sizeError(n, 3, type);
      const pkt: PlainPacket = { type: 'ADVERTISE', gwId: buf[p]!, duration: u16(buf, p + 1) };
      return pkt;
    }
    case 0x01: {
      // SEARCHGW
      if (n !== 1) throw sizeError(n, 1, type);
      const pkt: PlainPacket = { type: 'SEARCHGW', radius: buf[p]! };
      return pkt;
    }
    case 0x02: {
      // GWINFO
      if (n < 1) throw new MqttSnCodecError('truncated', type);
      const pkt: PlainPacket =
        n === 1
          ? { type: 'GWINFO', gwId: buf[p]! }
          : { type: 'GWINFO', gwId: buf[p]!, gwAddress: buf.subarray(p + 1, end) };
      return pkt;
    }
    case 0x04: {
      // CONNECT
      if (n < 4) throw new MqttSnCodecError('truncated', type);
      const flags = buf[p]!;
      if ((flags & UNUSED_CONNECT) !== 0) throw new MqttSnCodecError('reserved flag bits set', type);
      const idLen = n - 4;
      if (idLen === 0) throw new MqttSnCodecError('empty client id', type);
      if (idLen > maxClientId) throw new MqttSnCodecError('client id too long', type);
      const pkt: PlainPacket = {
        type: 'CONNECT',
        will: (flags & 0x08) !== 0,
        cleanSession: (flags & 0x04) !== 0,
        protocolId: buf[p + 1]!,
        duration: u16(buf, p + 2),
        clientId: decodeUtf8(buf, p + 4, end, type),
      };
      return pkt;
    }
    case 0x05: {
      // CONNACK
      if (n !== 1) throw sizeError(n, 1, type);
      const pkt: PlainPacket = { type: 'CONNACK', returnCode: returnCode(buf[p]!, type) };
      return pkt;
    }
    case 0x06: {
      // WILLTOPICREQ
      if (n !== 0) throw sizeError(n, 0, type);
      const pkt: PlainPacket = { type: 'WILLTOPICREQ' };
      return pkt;
    }
    case 0x07: // WILLTOPIC
    case 0x1a: {
      // WILLTOPICUPD
      const name = type === 0x07 ? 'WILLTOPIC' : 'WILLTOPICUPD';
      let pkt: PlainPacket;
      if (n === 0) {
        pkt = { type: name, qos: 0, retain: false };
      } else {
        const flags = buf[p]!;
        if ((flags & UNUSED_WILLTOPIC) !== 0) throw new MqttSnCodecError('reserved flag bits set', type);
        const qos = (flags >> 5) & 3;
        if (qos === 3) throw new MqttSnCodecError('invalid qos', type);
        pkt = {
          type: name,
          qos: qos as 0 | 1 | 2,
          retain: (flags & 0x10) !== 0,
          willTopic: decodeUtf8(buf, p + 1, end, type),
        };
      }
      return pkt;
    }
    case 0x08: {
      // WILLMSGREQ
      if (n !== 0) throw sizeError(n, 0, type);
      const pkt: PlainPacket = { type: 'WILLMSGREQ' };
      return pkt;
    }
    case 0x09: // WILLMSG
    case 0x1c: {
      // WILLMSGUPD
      const pkt: PlainPacket = {
        type: type === 0x09 ? 'WILLMSG' : 'WILLMSGUPD',
        willMsg: buf.subarray(p, end),
      };
      return pkt;
    }
    case 0x0a: {
      // REGISTER
      if (n < 4) throw new MqttSnCodecError('truncated', type);
      if (n === 4) throw new MqttSnCodecError('empty topic name', type);
      const pkt: PlainPacket = {
        type: 'REGISTER',
        topicId: u16(buf, p),
        msgId: u16(buf, p + 2),
        topicName: decodeUtf8(buf, p + 4, end, type),
      };
      return pkt;
    }
    case 0x0b: // REGACK
    case 0x0d: {
      // PUBACK
      if (n !== 5) throw sizeError(n, 5, type);
      const pkt: PlainPacket = {
        type: type === 0x0b ? 'REGACK' : 'PUBACK',
        topicId: u16(buf, p),
        msgId: u16(buf, p + 2),
        returnCode: returnCode(buf[p + 4]!, type),
      };
      return pkt;
    }
    case 0x0c: {
      // PUBLISH
      if (n < 5) throw new MqttSnCodecError('truncated', type);
      const flags = buf[p]!;
      if ((flags & UNUSED_PUBLISH) !== 0) throw new MqttSnCodecError('reserved flag bits set', type);
      const tit = flags & 3;
      if (tit === 3) throw new MqttSnCodecError('reserved topic id type', type);
      const pkt: PlainPacket = {
        type: 'PUBLISH',
        dup: (flags & 0x80) !== 0,
        qos: QOS_BY_BITS[(flags >> 5) & 3]!,
        retain: (flags & 0x10) !== 0,
        topicIdType: TOPIC_ID_TYPE_BY_BITS[tit]!,
        topicId: u16(buf, p + 1),
        msgId: u16(buf, p + 3),
        data: buf.subarray(p + 5, end),
      };
      return pkt;
    }
    case 0x0e: // PUBCOMP
    case 0x0f: // PUBREC
    case 0x10: // PUBREL
    case 0x15: {
      // UNSUBACK
      if (n !== 2) throw sizeError(n, 2, type);
      const pkt: PlainPacket = {
        type: type === 0x0e ? 'PUBCOMP' : type === 0x0f ? 'PUBREC' : type === 0x10 ? 'PUBREL' : 'UNSUBACK',
        msgId: u16(buf, p),
      };
      return pkt;
    }
    case 0x12: // SUBSCRIBE
    case 0x14: {
      // UNSUBSCRIBE
      if (n < 3) throw new MqttSnCodecError('truncated', type);
      const flags = buf[p]!;
      const subscribe = type === 0x12;
      if ((flags & (subscribe ? UNUSED_SUBSCRIBE : UNUSED_UNSUBSCRIBE)) !== 0) {
        throw new MqttSnCodecError('reserved flag bits set', type);
      }
      const tit = flags & 3;
      if (tit === 3) throw new MqttSnCodecError('reserved topic id type', type);
      const qos = (flags >> 5) & 3;
      if (qos === 3) throw new MqttSnCodecError('invalid qos', type);
      const msgId = u16(buf, p + 1);
      let pkt: PlainPacket;
      if (tit === 0) {
        if (n === 3) throw new MqttSnCodecError('empty topic name', type);
        const topicName = decodeUtf8(buf, p + 3, end, type);
        pkt = subscribe
          ? {
              type: 'SUBSCRIBE',
              dup: (flags & 0x80) !== 0,
              qos: qos as 0 | 1 | 2,
              msgId,
              topicIdType: 'normal',
              topicName,
            }
          : { type: 'UNSUBSCRIBE', msgId, topicIdType: 'normal', topicName };
      } else {
        if (n !== 5) throw sizeError(n, 5, type);
        const topicIdType = tit === 1 ? 'predefined' : 'short';
        const topicId = u16(buf, p + 3);
        pkt = subscribe
          ? {
              type: 'SUBSCRIBE',
              dup: (flags & 0x80) !== 0,
              qos: qos as 0 | 1 | 2,
              msgId,
              topicIdType,
              topicId,
            }
          : { type: 'UNSUBSCRIBE', msgId, topicIdType, topicId };
      }
      return pkt;
    }
    case 0x13: {
      // SUBACK
      if (n !== 6) throw sizeError(n, 6, type);
      const flags = buf[p]!;
      if ((flags & UNUSED_SUBACK) !== 0) throw new MqttSnCodecError('reserved flag bits set', type);
      const qos = (flags >> 5) & 3;
      if (qos === 3) throw new MqttSnCodecError('invalid qos', type);
      const pkt: PlainPacket = {
        type: 'SUBACK',
        qos: qos as 0 | 1 | 2,
        topicId: u16(buf, p + 1),
        msgId: u16(buf, p + 3),
        returnCode: returnCode(buf[p + 5]!, type),
      };
      return pkt;
    }
    case 0x16: {
      // PINGREQ
      let pkt: PlainPacket;
      if (n === 0) {
        pkt = { type: 'PINGREQ' };
      } else {
        if (n > maxClientId) throw new MqttSnCodecError('client id too long', type);
        pkt = { type: 'PINGREQ', clientId: decodeUtf8(buf, p, end, type) };
      }
      return pkt;
    }
    case 0x17: {
      // PINGRESP
      if (n !== 0) throw sizeError(n, 0, type);
      const pkt: PlainPacket = { type: 'PINGRESP' };
      return pkt;
    }
    case 0x18: {
      // DISCONNECT
      let pkt: PlainPacket;
      if (n === 0) pkt = { type: 'DISCONNECT' };
      else if (n === 2) pkt = { type: 'DISCONNECT', duration: u16(buf, p) };
      else throw sizeError(n, 2, type);
      return pkt;
    }
    case 0x1b: // WILLTOPICRESP
    case 0x1d: {
      // WILLMSGRESP
      if (n !== 1) throw sizeError(n, 1, type);
      const pkt: PlainPacket = {
        type: type === 0x1b ? 'WILLTOPICRESP' : 'WILLMSGRESP',
        returnCode: returnCode(buf[p]!, type),
      };
      return pkt;
    }
    default:
      throw new MqttSnCodecError(`unknown message type 0x${type.toString(16).padStart(2, '0')}`, type);
  }
}

/**
 * Forwarder encapsulation (§5.5). The header's length counts only Length + MsgType + Ctrl +
 * WirelessNodeId; the inner message follows with its own length and must end exactly at the end
 * of the datagram. WirelessNodeId may be empty (0..n bytes; the spec leaves its size to the network).
 * An error in the inner message carries the inner type byte in `msgType` and the forwarder's
 * radius and node id in `forwarder`.
 */
function decodeEncapsulated(
  buf: Uint8Array,
  start: number,
  p: number,
  headerTotal: number,
  optionalLong: boolean,
  maxClientId: number,
): EncapsulatedPacket {
  const type = MsgType.ENCAPSULATED;
  const ctrlAt = p;
  if (start + headerTotal < ctrlAt + 1) throw new MqttSnCodecError('invalid length', type);
  const innerStart = start + headerTotal;
  const end = buf.length;
  if (innerStart >= end) throw new MqttSnCodecError('truncated', type);
  if (end - start > MAX_PACKET_LENGTH) throw new MqttSnCodecError('packet too large', type);
  const ctrl = buf[ctrlAt]!;
  if ((ctrl & 0xfc) !== 0) throw new MqttSnCodecError('reserved ctrl bits set', type);
  const radius = ctrl & 0x03;
  const wirelessNodeId = buf.subarray(ctrlAt + 1, innerStart);
  let inner: Packet;
  try {
    inner = decodeAt(buf, innerStart, maxClientId, false);
  } catch (err) {
    if (err instanceof MqttSnCodecError && err.forwarder === undefined) {
      throw new MqttSnCodecError(err.reason, err.msgType, { radius, wirelessNodeId });
    }
    throw err;
  }
  const pkt: EncapsulatedPacket = {
    type: 'ENCAPSULATED',
    radius,
    wirelessNodeId,
    packet: inner as PlainPacket,
  };
  if (optionalLong) pkt.longLength = true;
  return pkt;
}
