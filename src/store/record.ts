/**
 * Outbox record format (version 2):
 *
 *   byte 0       format version (2)
 *   bytes 1..8   receive time, ms since the epoch, float64 big-endian (what users see; the wall clock)
 *   bytes 9..16  birth on the outbox's own running clock (ms the outbox has been open, summed over
 *                restarts; float64): ages and TTL come from this, never from the wall clock, which NTP moves
 *   bytes 17..   an MQTT 5 PUBLISH packet as written by mqtt-packet (QoS 1, packet id 0 as a placeholder:
 *               the uplink allocates real ids), carrying topic, payload, retain and user properties.
 *
 * Storing a standard packet instead of a home-made layout keeps the format documented and versioned.
 * Version 1 (no birth field, packet at byte 9) is still read: such a record's age counts from the open.
 */
import mqttPacket, { type IPublishPacket, type Parser } from 'mqtt-packet';

export const RECORD_FORMAT_VERSION = 2;
const HEADER_BYTES = 17;
const V1_HEADER_BYTES = 9;

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

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function encodeRecord(fields: RecordFields): Buffer {
  const packet = mqttPacket.generate(
    {
      cmd: 'publish',
      topic: fields.topic,
      payload: asBuffer(fields.payload),
      qos: 1,
      dup: false,
      retain: fields.retain,
      messageId: 0,
      properties: { userProperties: fields.userProperties },
    },
    { protocolVersion: 5 },
  );
  const record = Buffer.allocUnsafe(HEADER_BYTES + packet.length);
  record[0] = RECORD_FORMAT_VERSION;
  record.writeDoubleBE(fields.receivedAt, 1);
  record.writeDoubleBE(fields.bornAt ?? 0, 9);
  packet.copy(record, HEADER_BYTES);
  return record;
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
  if (record[0] === RECORD_FORMAT_VERSION && record.length >= HEADER_BYTES) return HEADER_BYTES;
  if (record[0] === 1 && record.length >= V1_HEADER_BYTES) return V1_HEADER_BYTES;
  return undefined;
}

// mqtt-packet's parser is a streaming parser that emits synchronously; one instance is reused and
// replaced after an error, because a failed parse can leave bytes behind in its buffer.
let parser: Parser | undefined;
const parseResult: { packet?: IPublishPacket | undefined; error?: Error | undefined } = {};

function getParser(): Parser {
  if (parser === undefined) {
    const fresh = mqttPacket.parser({ protocolVersion: 5 });
    fresh.on('packet', (packet) => {
      if (packet.cmd === 'publish') parseResult.packet = packet;
    });
    fresh.on('error', (err: Error) => {
      parseResult.error = err;
    });
    parser = fresh;
  }
  return parser;
}

function takeParseResult(): { packet?: IPublishPacket | undefined; error?: Error | undefined } {
  const result = { ...parseResult };
  parseResult.packet = undefined;
  parseResult.error = undefined;
  return result;
}

function flattenUserProperties(props: IPublishPacket['properties']): Record<string, string> {
  const flat: Record<string, string> = {};
  const source = props?.userProperties;
  if (source === undefined) return flat;
  // for...in over the parser's null-prototype object: no per-entry arrays as with Object.entries.
  for (const name in source) {
    const value = source[name]!;
    flat[name] = typeof value === 'string' ? value : value.join(',');
  }
  return flat;
}

export function decodeRecord(record: Buffer): DecodedRecord {
  const header = headerBytes(record);
  if (header === undefined) throw new Error(`outbox record: unsupported format version ${record[0]}`);
  const leftover = getParser().parse(record.subarray(header));
  const { packet, error } = takeParseResult();
  if (error !== undefined || packet === undefined || leftover !== 0) {
    parser = undefined;
    throw new Error(`outbox record: invalid PUBLISH packet${error ? `: ${error.message}` : ''}`);
  }
  return {
    topic: packet.topic,
    payload: asBuffer(packet.payload as Uint8Array),
    retain: packet.retain,
    receivedAt: record.readDoubleBE(1),
    userProperties: flattenUserProperties(packet.properties),
  };
}
