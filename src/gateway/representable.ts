import { MAX_PACKET_LENGTH } from '../codec/constants.js';
import { encodedLength } from '../codec/index.js';
import type { Packet } from '../codec/types.js';
import { isIPv6 } from 'node:net';
import type { DownlinkMessage } from '../store/ports.js';
import type { Session } from './session.js';

/** The largest UDP payload: 65,535 minus the IP and UDP headers (IPv4: 20 + 8; IPv6: 8, no jumbograms). */
export const MAX_UDP_PAYLOAD_IPV4 = 65_507;
export const MAX_UDP_PAYLOAD_IPV6 = 65_527;

/**
 * Whether a broker message can be sent to one device at all: MQTT allows 256 MB, MQTT-SN 65,535 bytes
 * per datagram, and a device may take less. A message that cannot be encoded must be refused before it
 * is stored, or it would throw on every delivery attempt and wedge the device's queue behind it.
 *
 * The PUBLISH is measured as it will be sent (topic id, payload, the encapsulation of a forwarder),
 * and for a normal topic also the REGISTER that announces its name first.
 */
export function downlinkProblem(
  message: Pick<DownlinkMessage, 'topicIdType' | 'payload'>,
  deviceTopicName: string,
  options: { maxPacketSize: number; wirelessNodeIdLength: number; ipv6: boolean },
): string | null {
  const udp = options.ipv6 ? MAX_UDP_PAYLOAD_IPV6 : MAX_UDP_PAYLOAD_IPV4;
  const limit = Math.min(options.maxPacketSize, MAX_PACKET_LENGTH, udp);
  const publish: Packet = {
    type: 'PUBLISH',
    dup: false,
    qos: 1,
    retain: false,
    topicIdType: message.topicIdType,
    topicId: 1,
    msgId: 1,
    data: message.payload,
  };
  const publishSize = sizeOf(publish, options.wirelessNodeIdLength);
  if (publishSize > limit) return `PUBLISH of ${publishSize} bytes exceeds ${limit}`;
  if (message.topicIdType === 'normal') {
    if (deviceTopicName.length === 0) return 'empty topic name';
    const registerSize = sizeOf(
      { type: 'REGISTER', topicId: 1, msgId: 1, topicName: deviceTopicName },
      options.wirelessNodeIdLength,
    );
    if (registerSize > limit) return `REGISTER of ${registerSize} bytes exceeds ${limit}`;
  }
  return null;
}

/** Encoded size, Infinity when it cannot be encoded at all (over 65,535 bytes, a lone surrogate). */
function sizeOf(packet: Packet, wirelessNodeIdLength: number): number {
  try {
    // The encapsulation header: length, type, ctrl and the node id (§5.5).
    return encodedLength(packet) + (wirelessNodeIdLength > 0 ? 3 + wirelessNodeIdLength : 0);
  } catch {
    return Infinity;
  }
}

/** The device topic name of a broker topic: relative to its namespace, else the absolute topic. */
export function deviceTopicName(session: Pick<Session, 'prefix'>, topic: string): string {
  return session.prefix && topic.startsWith(session.prefix) ? topic.slice(session.prefix.length) : topic;
}

/**
 * Why `message` cannot be sent to this device (too large for a datagram or for the device's limit),
 * or null. Checked before storing, and again before sending: copies stored by an older version, or
 * a device that moved behind a forwarder, must not throw out of a delivery and wedge its queue.
 */
export function unrepresentable(
  session: Pick<Session, 'prefix' | 'peer'>,
  message: Pick<DownlinkMessage, 'topic' | 'topicIdType' | 'payload'>,
  maxPacketSize: number | undefined,
): string | null {
  return downlinkProblem(message, deviceTopicName(session, message.topic), {
    maxPacketSize: maxPacketSize ?? 0xffff,
    wirelessNodeIdLength: session.peer.wirelessNodeId?.length ?? 0,
    // A restored session has no address yet: IPv4's smaller limit is the safe guess.
    ipv6: isIPv6(session.peer.address),
  });
}
