/**
 * Outbox keys are 8-byte big-endian sequence numbers, so LevelDB's bytewise order is arrival order.
 * Sequence numbers stay below 2^53 (a JS number), which at 10k msg/s lasts ~28,000 years.
 */
const TWO_POW_32 = 2 ** 32;

export const SEQ_KEY_BYTES = 8;

export function writeSeq(target: Buffer, offset: number, seq: number): void {
  target.writeUInt32BE(Math.floor(seq / TWO_POW_32), offset);
  target.writeUInt32BE(seq >>> 0, offset + 4);
}

export function readSeq(source: Uint8Array, offset = 0): number {
  const view = Buffer.isBuffer(source)
    ? source
    : Buffer.from(source.buffer, source.byteOffset, source.byteLength);
  return view.readUInt32BE(offset) * TWO_POW_32 + view.readUInt32BE(offset + 4);
}

export function seqKey(seq: number): Buffer {
  const key = Buffer.allocUnsafe(SEQ_KEY_BYTES);
  writeSeq(key, 0, seq);
  return key;
}
