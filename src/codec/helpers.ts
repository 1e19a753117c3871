import { MqttSnCodecError } from './errors.js';

/*
 * UTF-8 helpers shared by decode and encode, plus the public short-topic helpers.
 * Only standard Web APIs (TextDecoder / TextEncoder), so the codec runs in browsers and Deno too.
 */

/**
 * `fatal` makes malformed input (overlong forms, encoded surrogates, truncated sequences) throw;
 * `ignoreBOM` keeps a leading U+FEFF in the string, so such a string re-encodes to the same bytes.
 */
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const utf8Encoder = new TextEncoder();

/**
 * Strings up to this many bytes are first tried on an ASCII-only path (8 bytes per
 * String.fromCharCode call), which beats a TextDecoder call for typical topic names and client ids.
 */
const ASCII_FAST_PATH_MAX = 40;
/** Strings up to this many UTF-16 units are written byte by byte instead of with encodeInto. */
const MANUAL_ENCODE_MAX = 64;

/** Decodes `buf[start, end)` as strict UTF-8. Throws MqttSnCodecError('invalid utf-8', msgType). */
export function decodeUtf8(buf: Uint8Array, start: number, end: number, msgType: number): string {
  if (end - start <= ASCII_FAST_PATH_MAX) {
    const s = asciiOrNull(buf, start, end);
    if (s !== null) return s;
  }
  try {
    return utf8Decoder.decode(buf.subarray(start, end));
  } catch {
    throw new MqttSnCodecError('invalid utf-8', msgType);
  }
}

/** `buf[start, end)` as a string if every byte is ASCII, else null. */
function asciiOrNull(buf: Uint8Array, start: number, end: number): string | null {
  let s = '';
  let i = start;
  for (; i + 8 <= end; i += 8) {
    const c0 = buf[i]!;
    const c1 = buf[i + 1]!;
    const c2 = buf[i + 2]!;
    const c3 = buf[i + 3]!;
    const c4 = buf[i + 4]!;
    const c5 = buf[i + 5]!;
    const c6 = buf[i + 6]!;
    const c7 = buf[i + 7]!;
    if (((c0 | c1 | c2 | c3 | c4 | c5 | c6 | c7) & 0x80) !== 0) return null;
    s += String.fromCharCode(c0, c1, c2, c3, c4, c5, c6, c7);
  }
  for (; i < end; i++) {
    const c = buf[i]!;
    if (c > 0x7f) return null;
    s += String.fromCharCode(c);
  }
  return s;
}

/**
 * Number of bytes `s` takes in UTF-8, or -1 if it contains an unpaired surrogate (which UTF-8
 * cannot represent: TextEncoder would silently substitute U+FFFD and the string would not round-trip).
 */
export function utf8Length(s: string): number {
  const len = s.length;
  let n = 0;
  for (let i = 0; i < len; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c < 0xd800 || c > 0xdfff) n += 3;
    else {
      if (c > 0xdbff || i + 1 >= len) return -1;
      const d = s.charCodeAt(i + 1);
      if (d < 0xdc00 || d > 0xdfff) return -1;
      n += 4;
      i++;
    }
  }
  return n;
}

/** Writes `s` (already checked with utf8Length) at `off`; returns the offset after it. */
export function writeUtf8(buf: Uint8Array, off: number, s: string): number {
  const len = s.length;
  if (len > MANUAL_ENCODE_MAX) {
    return off + utf8Encoder.encodeInto(s, buf.subarray(off)).written;
  }
  for (let i = 0; i < len; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      buf[off++] = c;
    } else if (c < 0x800) {
      buf[off++] = 0xc0 | (c >> 6);
      buf[off++] = 0x80 | (c & 0x3f);
    } else if (c < 0xd800 || c > 0xdfff) {
      buf[off++] = 0xe0 | (c >> 12);
      buf[off++] = 0x80 | ((c >> 6) & 0x3f);
      buf[off++] = 0x80 | (c & 0x3f);
    } else {
      c = 0x10000 + ((c - 0xd800) << 10) + (s.charCodeAt(++i) - 0xdc00);
      buf[off++] = 0xf0 | (c >> 18);
      buf[off++] = 0x80 | ((c >> 12) & 0x3f);
      buf[off++] = 0x80 | ((c >> 6) & 0x3f);
      buf[off++] = 0x80 | (c & 0x3f);
    }
  }
  return off;
}

/**
 * The TopicId value of a short topic name (TopicIdType 'short', §5.3.11): its two bytes, big-endian.
 * `shortTopicId('ab') === 0x6162`. The name must be exactly 2 bytes of UTF-8 (two ASCII characters,
 * or one character in U+0080..U+07FF); anything else throws MqttSnCodecError('invalid short topic name').
 */
export function shortTopicId(name: string): number {
  if (typeof name === 'string') {
    if (name.length === 2) {
      const a = name.charCodeAt(0);
      const b = name.charCodeAt(1);
      if (a < 0x80 && b < 0x80) return (a << 8) | b;
    } else if (name.length === 1) {
      const c = name.charCodeAt(0);
      if (c >= 0x80 && c < 0x800) return ((0xc0 | (c >> 6)) << 8) | 0x80 | (c & 0x3f);
    }
  }
  throw new MqttSnCodecError('invalid short topic name');
}

/**
 * The short topic name carried in a TopicId (inverse of shortTopicId): `shortTopicName(0x6162) === 'ab'`.
 * Throws MqttSnCodecError('invalid topicId') unless `id` is an integer in 0..0xFFFF, and
 * MqttSnCodecError('invalid utf-8') if the two bytes are not UTF-8 (e.g. 0xC328).
 */
export function shortTopicName(id: number): string {
  if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id > 0xffff) {
    throw new MqttSnCodecError('invalid topicId');
  }
  const a = id >> 8;
  const b = id & 0xff;
  if (a < 0x80 && b < 0x80) return String.fromCharCode(a, b);
  const bytes = new Uint8Array(2);
  bytes[0] = a;
  bytes[1] = b;
  try {
    return utf8Decoder.decode(bytes);
  } catch {
    throw new MqttSnCodecError('invalid utf-8');
  }
}
