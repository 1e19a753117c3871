/**
 * Size on the wire of the QoS 1 PUBLISH the uplink sends for an outbox entry (MQTT 5 §3.3), to compare
 * with the broker's Maximum Packet Size from CONNACK: a broker closes the link on a larger packet, and
 * sending it again on every reconnect would stall the outbox.
 *
 * The caller sums its user properties with userPropertyBytes(), so what does not change from one message
 * to the next is summed once rather than built into strings for every message.
 */
export function publishPacketSize(
  topic: string,
  payloadBytes: number,
  /** Bytes of the properties (undefined: MQTT 3.1.1, no property field). */
  propertyBytes: number | undefined,
): number {
  const propertiesField = propertyBytes === undefined ? 0 : varintBytes(propertyBytes) + propertyBytes;
  const remaining = 2 + Buffer.byteLength(topic) + 2 + propertiesField + payloadBytes;
  return 1 + varintBytes(remaining) + remaining;
}

/** Bytes of one user property (MQTT 5 §3.3.2.3.7): its identifier and two length-prefixed strings. */
export function userPropertyBytes(key: string, value: string): number {
  return 1 + 2 + Buffer.byteLength(key) + 2 + Buffer.byteLength(value);
}

function varintBytes(value: number): number {
  if (value < 128) return 1;
  if (value < 16_384) return 2;
  if (value < 2_097_152) return 3;
  return 4;
}
