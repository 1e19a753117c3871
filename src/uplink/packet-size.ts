/**
 * Size on the wire of the QoS 1 PUBLISH the uplink sends for an outbox entry (MQTT 5 §3.3), to compare
 * with the broker's Maximum Packet Size from CONNACK: a broker closes the link on a larger packet, and
 * sending it again on every reconnect would stall the outbox.
 */
export function publishPacketSize(
  topic: string,
  payloadBytes: number,
  userProperties: Record<string, string> | undefined,
): number {
  let properties = 0;
  if (userProperties !== undefined) {
    for (const [key, value] of Object.entries(userProperties)) {
      properties += 1 + 2 + Buffer.byteLength(key) + 2 + Buffer.byteLength(value);
    }
  }
  const propertiesField = userProperties === undefined ? 0 : varintBytes(properties) + properties;
  const remaining = 2 + Buffer.byteLength(topic) + 2 + propertiesField + payloadBytes;
  return 1 + varintBytes(remaining) + remaining;
}

function varintBytes(value: number): number {
  if (value < 128) return 1;
  if (value < 16_384) return 2;
  if (value < 2_097_152) return 3;
  return 4;
}
