/**
 * Where an error happened inside a forwarder encapsulation (§5.5): the encapsulation header was
 * valid, but the inner message was not. A gateway can use it to answer through the same forwarder.
 */
export interface ForwarderInfo {
  radius: number;
  /** A view into the decoded datagram, not a copy. */
  wirelessNodeId: Uint8Array;
}

/**
 * The only error `decode`, `encode`, `encodedLength`, `shortTopicId` and `shortTopicName` throw.
 *
 * `reason` is short and stable (safe to switch on or to count in metrics):
 *
 * | reason | when |
 * |---|---|
 * | `'invalid input'` | decode: the argument is not a Uint8Array |
 * | `'invalid options'` | `maxClientIdLength` is not an integer in 1..65535 |
 * | `'truncated'` | too few bytes for the header or for the fixed fields of the message |
 * | `'trailing bytes'` | more bytes than the (fixed-size part of the) message allows |
 * | `'invalid length'` | length byte 0x00, or a long-form / encapsulation length below its minimum |
 * | `'length mismatch'` | the length field differs from the datagram size (or the inner message's) |
 * | `'packet too large'` | more than 65 535 bytes (MAX_PACKET_LENGTH) |
 * | `'unknown message type 0xNN'` | reserved message type byte (0x03, 0x11, 0x19, 0x1e–0xfd, 0xff) |
 * | `'unknown packet type'` | encode: `packet.type` is not a known name (or packet is not an object) |
 * | `'nested encapsulation'` | an encapsulation inside an encapsulation |
 * | `'reserved flag bits set'` | a Flags bit the message does not use is 1 |
 * | `'reserved ctrl bits set'` | encapsulation Ctrl bits 7–2 are not 0 |
 * | `'reserved topic id type'` | TopicIdType 0b11 (encode: an unknown topicIdType name) |
 * | `'invalid qos'` | QoS not allowed for the message (−1 outside PUBLISH) |
 * | `'reserved return code'` | return code ≥ 4 |
 * | `'invalid utf-8'` | a string field is not well-formed UTF-8 |
 * | `'unpaired surrogate'` | encode: a string with a lone UTF-16 surrogate (would not decode back) |
 * | `'empty topic name'` | REGISTER / SUBSCRIBE / UNSUBSCRIBE with an empty topic name |
 * | `'empty client id'` / `'client id too long'` | client id outside 1..maxClientIdLength bytes |
 * | `'flags without will topic'` | encode: WILLTOPIC(UPD) without topic but with qos ≠ 0 or retain |
 * | `'empty gwAddress'` | encode: zero-length gwAddress (omit it instead; decode never yields one) |
 * | `'invalid <field>'` | encode: a field of the wrong type or out of range, e.g. `'invalid msgId'` |
 * | `'invalid short topic name'` | shortTopicId: the name is not exactly 2 bytes of UTF-8 |
 *
 * `msgType` is the raw message type byte whenever the header could be read (also for reserved
 * types and length mismatches); on encode it is the code of `packet.type` when that is known.
 * For errors inside an encapsulated message it is the inner type byte and `forwarder` is set.
 */
export class MqttSnCodecError extends Error {
  override name = 'MqttSnCodecError';
  readonly reason: string;
  readonly msgType?: number;
  readonly forwarder?: ForwarderInfo;

  constructor(reason: string, msgType?: number, forwarder?: ForwarderInfo) {
    super(
      msgType === undefined
        ? `MQTT-SN codec: ${reason}`
        : `MQTT-SN codec: ${reason} (message type 0x${msgType.toString(16).padStart(2, '0')})`,
    );
    this.reason = reason;
    this.msgType = msgType;
    this.forwarder = forwarder;
  }
}
