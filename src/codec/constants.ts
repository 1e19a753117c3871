/** Message type codes of MQTT-SN v1.2 (§5.2.2). Note PUBCOMP < PUBREC < PUBREL numerically. */
export const MsgType = {
  ADVERTISE: 0x00,
  SEARCHGW: 0x01,
  GWINFO: 0x02,
  CONNECT: 0x04,
  CONNACK: 0x05,
  WILLTOPICREQ: 0x06,
  WILLTOPIC: 0x07,
  WILLMSGREQ: 0x08,
  WILLMSG: 0x09,
  REGISTER: 0x0a,
  REGACK: 0x0b,
  PUBLISH: 0x0c,
  PUBACK: 0x0d,
  PUBCOMP: 0x0e,
  PUBREC: 0x0f,
  PUBREL: 0x10,
  SUBSCRIBE: 0x12,
  SUBACK: 0x13,
  UNSUBSCRIBE: 0x14,
  UNSUBACK: 0x15,
  PINGREQ: 0x16,
  PINGRESP: 0x17,
  DISCONNECT: 0x18,
  WILLTOPICUPD: 0x1a,
  WILLTOPICRESP: 0x1b,
  WILLMSGUPD: 0x1c,
  WILLMSGRESP: 0x1d,
  ENCAPSULATED: 0xfe,
} as const;

export type PacketType = keyof typeof MsgType;

/** Return codes (§5.3.10). 0x04–0xFF are reserved and never decoded or encoded. */
export const ReturnCode = {
  ACCEPTED: 0x00,
  CONGESTION: 0x01,
  INVALID_TOPIC_ID: 0x02,
  NOT_SUPPORTED: 0x03,
} as const;

export type ReturnCodeValue = (typeof ReturnCode)[keyof typeof ReturnCode];

/** Wire values of the TopicIdType flag bits (§5.3.4). 0b11 is reserved. */
export const TopicIdType = {
  normal: 0b00,
  predefined: 0b01,
  short: 0b10,
} as const;

export type TopicIdTypeName = keyof typeof TopicIdType;

/** QoS as MQTT-SN knows it: -1 is "publish without connection" (flag bits 0b11). */
export type QoS = -1 | 0 | 1 | 2;

/** The only ProtocolId of v1.2. 0x02 is sent by MQTT-SN 2.0 draft clients. */
export const PROTOCOL_ID = 0x01;

/** Client id bounds of §5.3.1; the upper bound can be raised per decode/encode call. */
export const MIN_CLIENT_ID_LENGTH = 1;
export const MAX_CLIENT_ID_LENGTH = 23;

/** Topic ids 0x0000 and 0xFFFF are reserved (§5.3.11). */
export const RESERVED_TOPIC_IDS: readonly number[] = [0x0000, 0xffff];

/** Largest datagram the long length form can describe. */
export const MAX_PACKET_LENGTH = 0xffff;

/** Bits of the Flags byte (§5.3.4). */
export const Flags = {
  DUP: 0x80,
  /** Two bits, 6–5: 00 QoS 0, 01 QoS 1, 10 QoS 2, 11 QoS −1. */
  QOS_MASK: 0x60,
  QOS_SHIFT: 5,
  RETAIN: 0x10,
  WILL: 0x08,
  CLEAN_SESSION: 0x04,
  /** Two bits, 1–0: see TopicIdType; 0b11 is reserved. */
  TOPIC_ID_TYPE_MASK: 0x03,
} as const;

/** Ctrl byte of an encapsulation (§5.5): bits 1–0 are the radius, bits 7–2 are reserved. */
export const ENCAPSULATION_RADIUS_MASK = 0x03;

/** Message type code → name, e.g. MsgTypeName[0x0c] === 'PUBLISH'; undefined for reserved codes. */
export const MsgTypeName: Readonly<Partial<Record<number, PacketType>>> = Object.freeze(
  Object.fromEntries(Object.entries(MsgType).map(([name, code]) => [code, name as PacketType])),
);
