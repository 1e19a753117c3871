import type { QoS, ReturnCodeValue, TopicIdTypeName } from './constants.js';

/**
 * Present (and true) only on a decoded packet whose datagram used the 3-byte length form although
 * the 1-byte form would have fitted (v1.2 allows that). `encode` honours it, so such a datagram
 * re-encodes to the same bytes; without it `encode` always picks the shortest form.
 */
interface LengthForm {
  longLength?: boolean;
}

export interface AdvertisePacket extends LengthForm {
  type: 'ADVERTISE';
  gwId: number;
  /** Seconds until the next ADVERTISE. */
  duration: number;
}

export interface SearchGwPacket extends LengthForm {
  type: 'SEARCHGW';
  radius: number;
}

export interface GwInfoPacket extends LengthForm {
  type: 'GWINFO';
  gwId: number;
  /** Only present when a client answers on behalf of a gateway. */
  gwAddress?: Uint8Array;
}

export interface ConnectPacket extends LengthForm {
  type: 'CONNECT';
  will: boolean;
  cleanSession: boolean;
  protocolId: number;
  /** Keep-alive in seconds. */
  duration: number;
  clientId: string;
}

export interface ConnackPacket extends LengthForm {
  type: 'CONNACK';
  returnCode: ReturnCodeValue;
}

export interface WillTopicReqPacket extends LengthForm {
  type: 'WILLTOPICREQ';
}

/**
 * WILLTOPIC and WILLTOPICUPD. Without `willTopic` the packet is the 2-byte empty form, which deletes
 * the will (then qos is 0 and retain false; encode refuses other values). `willTopic: ''` is the
 * 3-byte form: flags but an empty topic.
 */
export interface WillTopicPacket extends LengthForm {
  type: 'WILLTOPIC' | 'WILLTOPICUPD';
  qos: 0 | 1 | 2;
  retain: boolean;
  willTopic?: string;
}

export interface WillMsgReqPacket extends LengthForm {
  type: 'WILLMSGREQ';
}

/** WILLMSG and WILLMSGUPD. */
export interface WillMsgPacket extends LengthForm {
  type: 'WILLMSG' | 'WILLMSGUPD';
  willMsg: Uint8Array;
}

export interface RegisterPacket extends LengthForm {
  type: 'REGISTER';
  /** 0x0000 when sent by a client. */
  topicId: number;
  msgId: number;
  topicName: string;
}

/** REGACK and PUBACK share a layout. */
export interface TopicAckPacket extends LengthForm {
  type: 'REGACK' | 'PUBACK';
  topicId: number;
  msgId: number;
  returnCode: ReturnCodeValue;
}

/**
 * PUBLISH. Any TopicIdType decodes at any QoS, including Paho's non-standard QoS −1 PUBLISH with
 * TopicIdType 'normal' (capture PA4): there `topicId` is the length of a topic name that starts
 * `data`, followed by the payload. The codec leaves that interpretation to the gateway.
 */
export interface PublishPacket extends LengthForm {
  type: 'PUBLISH';
  dup: boolean;
  qos: QoS;
  retain: boolean;
  topicIdType: TopicIdTypeName;
  /** A registered or predefined id, or the two bytes of a short topic name (see shortTopicId). */
  topicId: number;
  msgId: number;
  /** A view into the decoded datagram, not a copy. */
  data: Uint8Array;
}

/** PUBCOMP, PUBREC, PUBREL and UNSUBACK carry only a message id. */
export interface MsgIdPacket extends LengthForm {
  type: 'PUBCOMP' | 'PUBREC' | 'PUBREL' | 'UNSUBACK';
  msgId: number;
}

/** The topic of a SUBSCRIBE / UNSUBSCRIBE: a name (type normal) or a 2-byte id (predefined, short). */
export type SubscriptionTopic =
  { topicIdType: 'normal'; topicName: string } | { topicIdType: 'predefined' | 'short'; topicId: number };

export type SubscribePacket = LengthForm & {
  type: 'SUBSCRIBE';
  dup: boolean;
  qos: 0 | 1 | 2;
  msgId: number;
} & SubscriptionTopic;

export type UnsubscribePacket = LengthForm & {
  type: 'UNSUBSCRIBE';
  msgId: number;
} & SubscriptionTopic;

export interface SubackPacket extends LengthForm {
  type: 'SUBACK';
  /** Granted QoS. */
  qos: 0 | 1 | 2;
  /** 0x0000 for wildcard and short-name subscriptions. */
  topicId: number;
  msgId: number;
  returnCode: ReturnCodeValue;
}

export interface PingReqPacket extends LengthForm {
  type: 'PINGREQ';
  /** Present only when a sleeping client wakes up to collect its messages. */
  clientId?: string;
}

export interface PingRespPacket extends LengthForm {
  type: 'PINGRESP';
}

export interface DisconnectPacket extends LengthForm {
  type: 'DISCONNECT';
  /** Sleep duration in seconds; present only from a client going to sleep. */
  duration?: number;
}

/** WILLTOPICRESP and WILLMSGRESP. */
export interface WillRespPacket extends LengthForm {
  type: 'WILLTOPICRESP' | 'WILLMSGRESP';
  returnCode: ReturnCodeValue;
}

/** Any packet except an encapsulation (encapsulations do not nest). */
export type PlainPacket =
  | AdvertisePacket
  | SearchGwPacket
  | GwInfoPacket
  | ConnectPacket
  | ConnackPacket
  | WillTopicReqPacket
  | WillTopicPacket
  | WillMsgReqPacket
  | WillMsgPacket
  | RegisterPacket
  | TopicAckPacket
  | PublishPacket
  | MsgIdPacket
  | SubscribePacket
  | UnsubscribePacket
  | SubackPacket
  | PingReqPacket
  | PingRespPacket
  | DisconnectPacket
  | WillRespPacket;

/** Forwarder encapsulation (§5.5): a forwarder relays `packet` for the wireless node `wirelessNodeId`. */
export interface EncapsulatedPacket extends LengthForm {
  type: 'ENCAPSULATED';
  /** Broadcast radius, Ctrl bits 1–0. */
  radius: number;
  /** 0..n bytes (the spec leaves the format to the network). Decoded as a view into the datagram. */
  wirelessNodeId: Uint8Array;
  packet: PlainPacket;
}

export type Packet = PlainPacket | EncapsulatedPacket;

/**
 * The packet type for a given `type` name, e.g. PacketOf<'PUBLISH'>. Also works for names that share
 * an interface (PacketOf<'PUBACK'> is a TopicAckPacket whose type is 'PUBACK'), which a plain
 * `Extract<Packet, { type: T }>` would turn into `never`.
 */
export type PacketOf<T extends Packet['type']> = Packet extends infer P
  ? P extends { type: infer U }
    ? T extends U
      ? P & { type: T }
      : never
    : never
  : never;

export interface CodecOptions {
  /**
   * Upper bound for client ids in CONNECT and PINGREQ, in UTF-8 bytes (default 23, as in §5.3.1;
   * an integer 1..65535).
   */
  maxClientIdLength?: number;
}
