import { ReturnCode, type QoS, type TopicIdTypeName } from '../codec/constants.js';
import { shortTopicName } from '../codec/index.js';
import type { MsgIdPacket, Packet, PublishPacket, RegisterPacket } from '../codec/types.js';
import type { TopicTable } from './topics.js';

export interface ReceivedMessage {
  /** The name when the client knows it (registered, subscribed or short); undefined for predefined ids. */
  topicName: string | undefined;
  topicIdType: TopicIdTypeName;
  topicId: number;
  payload: Uint8Array;
  qos: QoS;
  retain: boolean;
}

/**
 * What the gateway sends on its own initiative towards a subscriber: REGISTER (answered REGACK),
 * PUBLISH (PUBACK at QoS 1, PUBREC at QoS 2) and PUBREL (PUBCOMP). Each message is delivered once,
 * however often the gateway repeats it before it hears our acknowledgement.
 */
export class Inbound {
  /** QoS 2 message ids delivered and answered with PUBREC, awaiting PUBREL. */
  private readonly releasePending = new Set<number>();
  private lastQos1MsgId: number | undefined;
  private receiving = true;

  constructor(
    private readonly topics: TopicTable,
    private readonly send: (packet: Packet) => void,
    private readonly deliver: (message: ReceivedMessage) => void,
  ) {}

  /** New PUBLISHes are from now on ignored: unacknowledged, the gateway keeps them. */
  stopReceiving(): void {
    this.receiving = false;
  }

  /** A clean session starts with no exchange half done. */
  reset(): void {
    this.releasePending.clear();
    this.lastQos1MsgId = undefined;
  }

  /** The gateway names a topic before publishing on it (wildcard subscriptions, §6.3). */
  onRegister(packet: RegisterPacket): void {
    this.topics.learn(packet.topicId, packet.topicName);
    this.send({
      type: 'REGACK',
      topicId: packet.topicId,
      msgId: packet.msgId,
      returnCode: ReturnCode.ACCEPTED,
    });
  }

  onPublish(packet: PublishPacket): void {
    if (!this.receiving) return;
    const { topicId, msgId, qos } = packet;
    const topicName = this.topicNameOf(packet);
    if (topicName === undefined && packet.topicIdType !== 'predefined') {
      // §6.3: an id we do not know is refused, so the gateway can REGISTER it.
      this.send({ type: 'PUBACK', topicId, msgId, returnCode: ReturnCode.INVALID_TOPIC_ID });
      return;
    }
    if (qos === 2) {
      // Delivered on the first PUBLISH; repeats until PUBREL are answered, not delivered again.
      if (!this.releasePending.has(msgId)) {
        this.releasePending.add(msgId);
        this.deliverCopy(packet, topicName);
      }
      this.send({ type: 'PUBREC', msgId });
      return;
    }
    if (qos === 1) {
      const repeated = packet.dup && msgId === this.lastQos1MsgId;
      this.lastQos1MsgId = msgId;
      if (!repeated) this.deliverCopy(packet, topicName);
      this.send({ type: 'PUBACK', topicId, msgId, returnCode: ReturnCode.ACCEPTED });
      return;
    }
    this.deliverCopy(packet, topicName);
  }

  /** Ends a QoS 2 delivery; also answered for an id already released (our PUBCOMP was lost). */
  onPubrel(packet: MsgIdPacket): void {
    this.releasePending.delete(packet.msgId);
    this.send({ type: 'PUBCOMP', msgId: packet.msgId });
  }

  private deliverCopy(packet: PublishPacket, topicName: string | undefined): void {
    this.deliver({
      topicName,
      topicIdType: packet.topicIdType,
      topicId: packet.topicId,
      // The packet is a view into the datagram: the receiver gets its own copy.
      payload: Uint8Array.from(packet.data),
      qos: packet.qos,
      retain: packet.retain,
    });
  }

  private topicNameOf(packet: PublishPacket): string | undefined {
    switch (packet.topicIdType) {
      case 'normal':
        return this.topics.nameOf(packet.topicId);
      case 'short':
        try {
          return shortTopicName(packet.topicId);
        } catch {
          return undefined;
        }
      case 'predefined':
        return undefined;
    }
  }
}
