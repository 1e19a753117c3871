/**
 * Outbox entries built on the stored bytes: reading one costs a parse of the PUBLISH's length fields
 * (record.ts recordLayout), not a decode; topic, payload and user properties are read when asked for.
 */
import type { OutboxEntry } from './ports.js';
import { publishTopic, publishUserProperties, recordLayout, type PublishLayout } from './record.js';

/** The user property naming the device (outbox.ts USER_PROPERTY_CLIENT). */
const CLIENT_PROPERTY = 'mqttsn-client';

class StoredEntry implements OutboxEntry {
  readonly packet: Buffer;
  readonly topicAt: number;
  readonly propertiesAt: number;
  readonly payloadAt: number;
  readonly checked: boolean;
  readonly receivedAt: number;
  private properties: Record<string, string> | undefined;

  constructor(
    readonly seq: number,
    layout: PublishLayout,
  ) {
    this.packet = layout.packet;
    this.topicAt = layout.topicAt;
    this.propertiesAt = layout.propertiesAt;
    this.payloadAt = layout.payloadAt;
    this.checked = layout.checked;
    this.receivedAt = layout.receivedAt;
  }

  get retain(): boolean {
    return (this.packet[0]! & 1) === 1;
  }

  get topic(): string {
    return publishTopic(this);
  }

  get payload(): Buffer {
    return this.packet.subarray(this.payloadAt);
  }

  get userProperties(): Record<string, string> {
    this.properties ??= publishUserProperties(this);
    return this.properties;
  }

  get clientId(): string {
    return this.userProperties[CLIENT_PROPERTY] ?? '';
  }

  /** Plain fields for JSON and assertions (getters are not own properties). */
  toJSON(): Record<string, unknown> {
    return {
      seq: this.seq,
      topic: this.topic,
      payload: this.payload,
      retain: this.retain,
      userProperties: this.userProperties,
      clientId: this.clientId,
      receivedAt: this.receivedAt,
    };
  }
}

/** The entry for a stored record, or undefined when the record is not a readable PUBLISH. */
export function entryOf(seq: number, record: Buffer): OutboxEntry | undefined {
  const layout = recordLayout(record);
  return layout === undefined ? undefined : entryOfLayout(seq, layout);
}

/** The entry for a record whose layout is known (record.ts encodeRecordLayout: just written). */
export function entryOfLayout(seq: number, layout: PublishLayout): OutboxEntry {
  return new StoredEntry(seq, layout);
}
