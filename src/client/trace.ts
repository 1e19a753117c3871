import type { ReturnCodeValue } from '../codec/constants.js';
import { shortTopicName } from '../codec/index.js';
import type { Packet } from '../codec/types.js';
import { describeReturnCode } from './errors.js';
import type { TraceEvent } from './transport.js';

/** Payload bytes shown in a trace line before it is cut short. */
const MAX_SHOWN_BYTES = 64;

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * One line per datagram for `--debug`, e.g.
 * `-> PUBLISH dup=false qos=1 retain=false topicIdType=normal topicId=1 msgId=2 data="21.5" (12 bytes)`.
 */
export function formatTrace(event: TraceEvent): string {
  if ('undecodable' in event) {
    const bytes = event.undecodable;
    return `<- undecodable datagram (${event.reason}): ${formatBytes(bytes, 'hex')} (${bytes.length} bytes)`;
  }
  const arrow = event.direction === 'out' ? '->' : '<-';
  return `${arrow} ${formatPacket(event.packet)} (${event.size} bytes)`;
}

export function formatPacket(packet: Packet): string {
  const fields = Object.entries(packet)
    .filter(([name]) => name !== 'type' && name !== 'longLength')
    .map(([name, value]) => formatField(packet, name, value));
  return [packet.type, ...fields].join(' ');
}

function formatField(packet: Packet, name: string, value: unknown): string {
  switch (name) {
    case 'packet':
      return `{ ${formatPacket(value as Packet)} }`;
    case 'returnCode':
      return `returnCode=${value} (${describeReturnCode(value as ReturnCodeValue)})`;
    case 'topicIdType':
      return `topicIdType=${value}`;
    case 'topicId':
      if ('topicIdType' in packet && packet.topicIdType === 'short') {
        return `topicId=${value} (${formatShortName(value as number)})`;
      }
  }
  return `${name}=${formatValue(value)}`;
}

function formatShortName(topicId: number): string {
  try {
    return JSON.stringify(shortTopicName(topicId));
  } catch {
    return 'not UTF-8';
  }
}

function formatValue(value: unknown): string {
  if (value instanceof Uint8Array) return formatBytes(value);
  if (typeof value === 'string') return JSON.stringify(value);
  return String(value);
}

/** Text in quotes when the bytes are UTF-8 (escaped like JSON), else hex; long ones are cut. */
function formatBytes(bytes: Uint8Array, as: 'text or hex' | 'hex' = 'text or hex'): string {
  const shown = bytes.subarray(0, MAX_SHOWN_BYTES);
  const more = bytes.length > shown.length ? `…(+${bytes.length - shown.length})` : '';
  if (as === 'hex') return `0x${hex(shown)}${more}`;
  try {
    return JSON.stringify(strictUtf8.decode(shown)) + more;
  } catch {
    // Cut in the middle of a character, or binary.
    return `0x${hex(shown)}${more}`;
  }
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}
