/**
 * The PUBLISH the uplink sends for an outbox entry, made from the bytes stored at append (record.ts):
 * copied as they are with the packet id and DUP patched in, or — for MQTT 3.1.1, or MQTT 5 without user
 * properties — with the properties cut out and the remaining length written anew. Nothing is encoded
 * again from fields.
 */
import type { OutboxEntry } from '../store/ports.js';
import { varintBytes, writeVarint } from '../store/record.js';

/** What goes on the wire: the stored MQTT 5 PUBLISH; MQTT 5 with no properties; MQTT 3.1.1 (none at all). */
export type WireForm = 'v5' | 'v5-bare' | 'v4';

const DUP = 0x08;

export function wireFormOf(protocolVersion: 4 | 5, userProperties: boolean): WireForm {
  if (protocolVersion === 4) return 'v4';
  return userProperties ? 'v5' : 'v5-bare';
}

/** Remaining length of the packet in `form`. */
function remainingLength(entry: OutboxEntry, form: WireForm): number {
  const stored = entry.packet.length - entry.topicAt;
  if (form === 'v5') return stored;
  const properties = entry.payloadAt - entry.propertiesAt;
  return stored - properties + (form === 'v5-bare' ? 1 : 0);
}

/** Bytes the PUBLISH takes on the wire in `form` (for the broker's Maximum Packet Size). */
export function wireSize(entry: OutboxEntry, form: WireForm): number {
  if (form === 'v5') return entry.packet.length;
  const remaining = remainingLength(entry, form);
  return 1 + varintBytes(remaining) + remaining;
}

/** Writes the PUBLISH into `target` at `at` with packet id `id`; returns the offset after it. */
export function writePublish(
  entry: OutboxEntry,
  form: WireForm,
  id: number,
  dup: boolean,
  target: Buffer,
  at: number,
): number {
  const { packet, topicAt, propertiesAt, payloadAt } = entry;
  const start = at;
  let idAt: number;
  if (form === 'v5') {
    target.set(packet, at);
    idAt = at + propertiesAt - 2; // the packet id sits right before the properties
    at += packet.length;
  } else {
    target[at++] = packet[0]!;
    at = writeVarint(target, at, remainingLength(entry, form));
    // Topic and packet id, then (MQTT 5) an empty property list, then the payload.
    target.set(packet.subarray(topicAt, propertiesAt), at);
    at += propertiesAt - topicAt;
    idAt = at - 2;
    if (form === 'v5-bare') target[at++] = 0;
    target.set(packet.subarray(payloadAt), at);
    at += packet.length - payloadAt;
  }
  if (dup) target[start] = target[start]! | DUP;
  target[idAt] = id >> 8;
  target[idAt + 1] = id & 0xff;
  return at;
}
