import { MsgType } from '../codec/constants.js';
import type { Packet } from '../codec/types.js';

/**
 * Reusable buffers for the fixed-size replies sent once per device message (PUBACK, PUBREC, PUBREL,
 * PUBCOMP, PINGRESP): encoding each into a fresh buffer was an allocation per message on the hot path.
 *
 * Node's dgram keeps a reference to the bytes, not a copy, until the send callback runs (the address
 * goes through a lookup first, and a full socket queues the send), so a buffer is taken for one send
 * and given back only by its callback. Each slot's callback is made once, with the slot: no closure
 * per send.
 */
export class ReplyBuffers {
  private readonly free: Slot[] = [];

  constructor(
    /** Runs for every send made with a slot, after the slot is back in the pool. */
    private readonly onSent: (err: Error | null) => void,
    /** Slots kept for reuse; a burst beyond this allocates, and those slots are dropped afterwards. */
    private readonly keep = 256,
  ) {}

  /**
   * The packet encoded into a pooled buffer with the callback that returns it, or undefined for a
   * packet that is not one of the fixed-size replies (the caller encodes it the general way).
   */
  take(packet: Packet): Slot | undefined {
    const length = fixedLength(packet);
    if (length === 0) return undefined;
    const slot = this.slotOf(length);
    writeFixed(packet, slot.bytes);
    return slot;
  }

  /** Slots waiting in the pool (for tests). */
  get pooled(): number {
    return this.free.length;
  }

  private slotOf(length: number): Slot {
    for (let i = this.free.length - 1; i >= 0; i--) {
      const slot = this.free[i]!;
      if (slot.bytes.length !== length) continue;
      this.free[i] = this.free[this.free.length - 1]!;
      this.free.pop();
      return slot;
    }
    const bytes = Buffer.allocUnsafe(length);
    const slot: Slot = {
      bytes,
      done: (err) => {
        if (this.free.length < this.keep) this.free.push(slot);
        this.onSent(err);
      },
    };
    return slot;
  }
}

export interface Slot {
  readonly bytes: Buffer;
  readonly done: (err: Error | null) => void;
}

function fixedLength(packet: Packet): number {
  switch (packet.type) {
    case 'PUBACK':
      return 7;
    case 'PUBREC':
    case 'PUBREL':
    case 'PUBCOMP':
      return 4;
    case 'PINGRESP':
      return 2;
    default:
      return 0;
  }
}

/** The layouts of §5.4.13, §5.4.14 and §5.4.20; test/gateway-transport.test.ts checks them against the codec. */
function writeFixed(packet: Packet, bytes: Buffer): void {
  bytes[0] = bytes.length;
  switch (packet.type) {
    case 'PUBACK':
      bytes[1] = MsgType.PUBACK;
      bytes.writeUInt16BE(packet.topicId, 2);
      bytes.writeUInt16BE(packet.msgId, 4);
      bytes[6] = packet.returnCode;
      return;
    case 'PUBREC':
    case 'PUBREL':
    case 'PUBCOMP':
      bytes[1] = MsgType[packet.type];
      bytes.writeUInt16BE(packet.msgId, 2);
      return;
    default:
      bytes[1] = MsgType.PINGRESP;
  }
}
