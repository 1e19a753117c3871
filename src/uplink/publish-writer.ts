/**
 * Writes the drain's PUBLISHes to the broker connection's socket: the packets of one refill are made
 * into one buffer (wire.ts) and written at once — one TCP write per refill, not one per packet, and no
 * MQTT.js or mqtt-packet encoding on the way. Honours backpressure: once the socket's buffer is full
 * (write() returned false) nothing more is taken until it has drained.
 */
import type { Writable } from 'node:stream';
import type { OutboxEntry } from '../store/ports.js';
import { writePublish, type WireForm } from './wire.js';

/** A refill larger than this is written in pieces, so that backpressure is seen between them. */
const MAX_WRITE_BYTES = 256 * 1024;

export class PublishWriter {
  private readonly entries: OutboxEntry[] = [];
  private readonly ids: number[] = [];
  private readonly dups: boolean[] = [];
  private bytes = 0;
  private waitingForDrain = false;

  constructor(
    private readonly socket: Writable,
    private readonly form: WireForm,
    /** The socket has room again after backpressure. */
    private readonly onWritable: () => void,
  ) {}

  /** The socket's buffer is full: take nothing more until onWritable. */
  get blocked(): boolean {
    return this.waitingForDrain;
  }

  /** Queue one PUBLISH of `size` wire bytes (wire.ts wireSize) for the next flush(). */
  add(entry: OutboxEntry, id: number, dup: boolean, size: number): void {
    this.entries.push(entry);
    this.ids.push(id);
    this.dups.push(dup);
    this.bytes += size;
    if (this.bytes >= MAX_WRITE_BYTES) this.flush();
  }

  /** Write what was queued as one buffer. */
  flush(): void {
    const count = this.entries.length;
    if (count === 0) return;
    const out = Buffer.allocUnsafe(this.bytes);
    let at = 0;
    for (let i = 0; i < count; i++) {
      at = writePublish(this.entries[i]!, this.form, this.ids[i]!, this.dups[i]!, out, at);
    }
    this.entries.length = 0;
    this.ids.length = 0;
    this.dups.length = 0;
    this.bytes = 0;
    // A closing socket: the link is going; what was in flight goes out again on the next one.
    if (this.socket.destroyed || !this.socket.writable) return;
    if (!this.socket.write(out) && !this.waitingForDrain) {
      this.waitingForDrain = true;
      this.socket.once('drain', () => {
        this.waitingForDrain = false;
        this.onWritable();
      });
    }
  }
}
