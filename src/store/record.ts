/**
 * Outbox record format (version 4):
 *
 *   byte 0       format version (4)
 *   bytes 1..8   receive time, ms since the epoch, float64 big-endian (what users see; the wall clock)
 *   bytes 9..16  birth on the outbox's own running clock (ms the outbox has been open, summed over
 *                restarts; float64): ages and TTL come from this, never from the wall clock, which NTP moves
 *   bytes 17..   an MQTT 5 PUBLISH packet (QoS 1, DUP clear, packet id 0 as a placeholder: the uplink
 *                patches in real ids), carrying topic, retain, user properties (its only properties) and
 *                payload. The uplink sends these bytes as they are.
 *
 * Version 4 has the layout of version 2; the version says more: the topic and the user properties were
 * checked, when the record was written, to be strings the broker accepts, so the uplink sends such a record
 * without looking at them again. A record whose strings fail that check is written as version 2, like the
 * records of earlier versions, which the uplink checks before every send (a broker closes the link on a bad
 * string, on every replay). Version 1 (no birth field, packet at byte 9) is still read: such a record's age
 * counts from the open. Version 3 is not a message record: it is the segment format (store/segments.ts).
 *
 * The PUBLISH is written here directly, not with mqtt-packet's generate(): the bytes are the same
 * (test/record.test.ts compares them, and parses them back with mqtt-packet), at a fraction of the cost.
 */
import { decodeMqttString } from '../topics/mqtt-string.js';
import { brokerTopicProblem } from '../topics/names.js';

export const RECORD_FORMAT_VERSION = 4;
/** Same layout as RECORD_FORMAT_VERSION, strings not known to be valid for the broker. */
const UNCHECKED_FORMAT_VERSION = 2;
const HEADER_BYTES = 17;
const V1_HEADER_BYTES = 9;
/** PUBLISH, QoS 1 (fixed header byte 0 without DUP and RETAIN). */
const PUBLISH_QOS1 = 0x32;
const USER_PROPERTY = 0x26;

export interface RecordFields {
  topic: string;
  payload: Uint8Array;
  retain: boolean;
  receivedAt: number;
  /** Birth on the outbox's running clock (see the format above); 0 when not given. */
  bornAt?: number;
  userProperties: Record<string, string>;
}

export interface DecodedRecord {
  topic: string;
  payload: Buffer;
  retain: boolean;
  receivedAt: number;
  userProperties: Record<string, string>;
}

/**
 * Where the parts of a stored PUBLISH are, as offsets into `packet` (a view into the record): what the
 * uplink needs to send it, patch it, or send it without properties (MQTT 3.1.1).
 */
export interface PublishLayout {
  packet: Buffer;
  /** The topic's 2-byte length prefix (right after the fixed header). */
  topicAt: number;
  /** The properties' variable-length size (right after the 2-byte packet id). */
  propertiesAt: number;
  payloadAt: number;
  /** Record format 4: topic and user properties known to be valid for the broker. */
  checked: boolean;
  receivedAt: number;
}

/** A string written as UTF-8 with its 2-byte length prefix: `bytes` is its UTF-8 length. */
function writeString(target: Buffer, at: number, text: string, bytes: number): number {
  target[at] = bytes >> 8;
  target[at + 1] = bytes & 0xff;
  // For ASCII text (length = bytes) latin1 writes the same bytes, faster than the UTF-8 encoder.
  target.write(text, at + 2, bytes, bytes === text.length ? 'latin1' : 'utf8');
  return at + 2 + bytes;
}

/** MQTT's variable-length integer at `at`; returns the offset after it. */
export function writeVarint(target: Buffer, at: number, value: number): number {
  do {
    let byte = value % 128;
    value = Math.floor(value / 128);
    if (value > 0) byte |= 0x80;
    target[at++] = byte;
  } while (value > 0);
  return at;
}

export function varintBytes(value: number): number {
  if (value < 128) return 1;
  if (value < 16_384) return 2;
  if (value < 2_097_152) return 3;
  return 4;
}

/**
 * Whether `text` is printable ASCII (U+0020..U+007E): then it is valid for the broker (nothing MQTT or
 * Mosquitto refuses is in that range) and its UTF-8 length is its length. Topics and ids almost always are.
 */
function printableAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

function utf8Bytes(text: string, ascii: boolean): number {
  return ascii ? text.length : Buffer.byteLength(text, 'utf8');
}

export function encodeRecord(fields: RecordFields): Buffer {
  return encodeRecordLayout(fields).record;
}

/** A record just written and where its parts are: what recordLayout() would find, without reading it back. */
export interface EncodedRecord extends PublishLayout {
  record: Buffer;
}

/**
 * encodeRecord() with the layout of what it wrote, so an append builds its entry without parsing the
 * bytes it has just written (recordLayout() is for bytes read from disk).
 */
export function encodeRecordLayout(fields: RecordFields): EncodedRecord {
  const { topic, payload, userProperties } = fields;
  // Checked while measuring: the common case (all printable ASCII, no wildcard) costs one pass per string.
  const asciiTopic = printableAscii(topic);
  let plain = asciiTopic;
  const topicBytes = utf8Bytes(topic, asciiTopic);
  let propertiesBytes = 0;
  for (const name in userProperties) {
    const value = userProperties[name]!;
    const ascii = printableAscii(name) && printableAscii(value);
    plain &&= ascii;
    propertiesBytes += 5 + utf8Bytes(name, ascii) + utf8Bytes(value, ascii);
  }
  const remaining = 2 + topicBytes + 2 + varintBytes(propertiesBytes) + propertiesBytes + payload.length;
  const record = Buffer.allocUnsafe(HEADER_BYTES + 1 + varintBytes(remaining) + remaining);
  record.writeDoubleBE(fields.receivedAt, 1);
  record.writeDoubleBE(fields.bornAt ?? 0, 9);
  record[HEADER_BYTES] = PUBLISH_QOS1 | (fields.retain ? 1 : 0);
  let at = writeVarint(record, HEADER_BYTES + 1, remaining);
  const topicAt = at - HEADER_BYTES;
  at = writeString(record, at, topic, topicBytes);
  record[at++] = 0; // packet id 0: a placeholder
  record[at++] = 0;
  const propertiesAt = at - HEADER_BYTES;
  at = writeVarint(record, at, propertiesBytes);
  for (const name in userProperties) {
    const value = userProperties[name]!;
    record[at++] = USER_PROPERTY;
    at = writeString(record, at, name, utf8Bytes(name, plain));
    at = writeString(record, at, value, utf8Bytes(value, plain));
  }
  const payloadAt = at - HEADER_BYTES;
  record.set(payload, at);
  // A wildcard is printable but not allowed in a topic name; anything else needs the full check.
  let valid = plain && topic.length > 0 && !topic.includes('+') && !topic.includes('#');
  if (!valid) {
    const packet = record.subarray(HEADER_BYTES);
    valid = publishStringsProblem({ packet, topicAt, propertiesAt, payloadAt }) === null;
  }
  record[0] = valid ? RECORD_FORMAT_VERSION : UNCHECKED_FORMAT_VERSION;
  return {
    record,
    packet: record.subarray(HEADER_BYTES),
    topicAt,
    propertiesAt,
    payloadAt,
    checked: valid,
    receivedAt: fields.receivedAt,
  };
}

/** Receive time without parsing the packet (used when rebuilding the index at open); undefined if malformed. */
export function recordReceivedAt(record: Buffer): number | undefined {
  return headerBytes(record) === undefined ? undefined : record.readDoubleBE(1);
}

/** Birth on the outbox's running clock; undefined for a version 1 record or a malformed one. */
export function recordBornAt(record: Buffer): number | undefined {
  return headerBytes(record) === HEADER_BYTES ? record.readDoubleBE(9) : undefined;
}

/** Where the packet starts, by format version; undefined when the record is too short or unknown. */
function headerBytes(record: Buffer): number | undefined {
  const version = record[0];
  if ((version === RECORD_FORMAT_VERSION || version === 2) && record.length >= HEADER_BYTES)
    return HEADER_BYTES;
  if (version === 1 && record.length >= V1_HEADER_BYTES) return V1_HEADER_BYTES;
  return undefined;
}

/**
 * The layout of a record's PUBLISH, reading only its length fields; undefined when the record is not a
 * well-formed QoS 1 PUBLISH whose properties are user properties only (as every version wrote them). What
 * passes is safe to send byte for byte: the framing the broker parses is exactly as it expects.
 */
export function recordLayout(record: Buffer): PublishLayout | undefined {
  const header = headerBytes(record);
  if (header === undefined) return undefined;
  const packet = record.subarray(header);
  const end = packet.length;
  if ((packet[0]! & 0xf6) !== PUBLISH_QOS1) return undefined; // PUBLISH, QoS 1, DUP clear
  const remaining = readVarint(packet, 1);
  if (remaining === undefined || remaining.next + remaining.value !== end) return undefined;
  const topicAt = remaining.next;
  if (topicAt + 2 > end) return undefined;
  const propertiesAt = topicAt + 2 + packet.readUInt16BE(topicAt) + 2;
  const properties = readVarint(packet, propertiesAt);
  if (properties === undefined) return undefined;
  const payloadAt = properties.next + properties.value;
  if (payloadAt > end) return undefined;
  for (let at = properties.next; at < payloadAt;) {
    if (packet[at] !== USER_PROPERTY) return undefined;
    at = skipString(packet, at + 1, payloadAt);
    at = skipString(packet, at, payloadAt);
    if (at < 0) return undefined;
  }
  return {
    packet,
    topicAt,
    propertiesAt,
    payloadAt,
    checked: record[0] === RECORD_FORMAT_VERSION,
    receivedAt: record.readDoubleBE(1),
  };
}

/** Offset after the length-prefixed string at `at`, or -1 when it does not end by `end`. */
function skipString(packet: Buffer, at: number, end: number): number {
  if (at < 0 || at + 2 > end) return -1;
  const next = at + 2 + packet.readUInt16BE(at);
  return next > end ? -1 : next;
}

function readVarint(packet: Buffer, at: number): { value: number; next: number } | undefined {
  let value = 0;
  let multiplier = 1;
  for (let i = 0; i < 4; i++) {
    const byte = packet[at + i];
    if (byte === undefined) return undefined;
    value += (byte & 0x7f) * multiplier;
    if ((byte & 0x80) === 0) return { value, next: at + i + 1 };
    multiplier *= 128;
  }
  return undefined;
}

type Layout = Pick<PublishLayout, 'packet' | 'topicAt' | 'propertiesAt' | 'payloadAt'>;

export function publishTopic(layout: Layout): string {
  const { packet, topicAt } = layout;
  return packet.toString('utf8', topicAt + 2, topicAt + 2 + packet.readUInt16BE(topicAt));
}

/** The user properties, in stored order; a repeated name keeps its values joined with commas. */
export function publishUserProperties(layout: Layout): Record<string, string> {
  const found: Record<string, string> = {};
  forEachUserProperty(layout, (name, value) => {
    const text = value.toString('utf8');
    const key = name.toString('utf8');
    found[key] = key in found ? `${found[key]},${text}` : text;
  });
  return found;
}

function forEachUserProperty(layout: Layout, visit: (name: Buffer, value: Buffer) => void): void {
  const { packet, propertiesAt, payloadAt } = layout;
  let at = propertiesAt + varintBytes(readVarint(packet, propertiesAt)!.value);
  while (at < payloadAt) {
    const nameAt = at + 1;
    const valueAt = nameAt + 2 + packet.readUInt16BE(nameAt);
    at = valueAt + 2 + packet.readUInt16BE(valueAt);
    visit(packet.subarray(nameAt + 2, valueAt), packet.subarray(valueAt + 2, at));
  }
}

/**
 * Why the broker would refuse the PUBLISH's topic or a user property, judged on the bytes it would get
 * (strict UTF-8: a record of an older version may hold bytes that decode only with replacements), or null.
 */
export function publishStringsProblem(layout: Layout): string | null {
  const { packet, topicAt } = layout;
  const topic = decodeMqttString(packet.subarray(topicAt + 2, topicAt + 2 + packet.readUInt16BE(topicAt)));
  if ('problem' in topic) return `topic name ${topic.problem}`;
  const topicProblem = brokerTopicProblem(topic.value);
  if (topicProblem) return topicProblem;
  let problem: string | null = null;
  forEachUserProperty(layout, (name, value) => {
    for (const text of [name, value]) {
      if (problem !== null) return;
      const decoded = decodeMqttString(text);
      if ('problem' in decoded) problem = `user property ${decoded.problem}`;
    }
  });
  return problem;
}

/** The whole record as fields (dead letters, tests); throws when it cannot be read. */
export function decodeRecord(record: Buffer): DecodedRecord {
  if (headerBytes(record) === undefined)
    throw new Error(`outbox record: unsupported format version ${record[0]}`);
  const layout = recordLayout(record);
  if (layout === undefined) throw new Error('outbox record: invalid PUBLISH packet');
  return {
    topic: publishTopic(layout),
    payload: layout.packet.subarray(layout.payloadAt),
    retain: (layout.packet[0]! & 1) === 1,
    receivedAt: layout.receivedAt,
    userProperties: publishUserProperties(layout),
  };
}
