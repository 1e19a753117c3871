/**
 * MQTT-SN v1.2 codec: `decode` one datagram into a packet object, `encode` a packet object into one
 * datagram. Pure (no I/O, no Node-only APIs: Uint8Array, TextEncoder/TextDecoder only), so it also
 * runs in browsers and Deno. Published as the package subpath `mqttsn-bridge/codec`.
 *
 * ```ts
 * import { decode, encode, MqttSnCodecError } from 'mqttsn-bridge/codec';
 * const packet = decode(datagram); // throws MqttSnCodecError only
 * const bytes = encode({ type: 'PUBACK', topicId: 1, msgId: 2, returnCode: 0 });
 * ```
 */
export { decode } from './decode.js';
export { encode, encodedLength } from './encode.js';
export { MqttSnCodecError } from './errors.js';
export type { ForwarderInfo } from './errors.js';
export { shortTopicId, shortTopicName } from './helpers.js';
export {
  ENCAPSULATION_RADIUS_MASK,
  Flags,
  MAX_CLIENT_ID_LENGTH,
  MAX_PACKET_LENGTH,
  MIN_CLIENT_ID_LENGTH,
  MsgType,
  MsgTypeName,
  PROTOCOL_ID,
  RESERVED_TOPIC_IDS,
  ReturnCode,
  TopicIdType,
} from './constants.js';
export type { PacketType, QoS, ReturnCodeValue, TopicIdTypeName } from './constants.js';
export type {
  AdvertisePacket,
  CodecOptions,
  ConnackPacket,
  ConnectPacket,
  DisconnectPacket,
  EncapsulatedPacket,
  GwInfoPacket,
  MsgIdPacket,
  Packet,
  PacketOf,
  PingReqPacket,
  PingRespPacket,
  PlainPacket,
  PublishPacket,
  RegisterPacket,
  SearchGwPacket,
  SubackPacket,
  SubscribePacket,
  SubscriptionTopic,
  TopicAckPacket,
  UnsubscribePacket,
  WillMsgPacket,
  WillMsgReqPacket,
  WillRespPacket,
  WillTopicPacket,
  WillTopicReqPacket,
} from './types.js';
