/**
 * The broker's rules for a UTF-8 string (MQTT 3.1.1 §1.5.3, MQTT 5 §1.5.4) as Mosquitto enforces them
 * (mosquitto_validate_utf8): a string it refuses makes it close the connection, so one such topic
 * stored in the outbox would drop the uplink on every replay. Everything that reaches the broker
 * (topics, filters, client ids in topics and user properties) passes through here first.
 *
 * Refused: ill-formed UTF-8 (overlongs, surrogates, beyond U+10FFFF, truncated), U+0000, the C0
 * controls (TAB included), DEL, the C1 controls U+0080–U+009F, and the noncharacters U+FDD0–U+FDEF
 * and U+xFFFE / U+xFFFF in every plane. At most 65,535 bytes (the length prefix is 16 bits).
 */

/** Longest UTF-8 string MQTT can carry (two-byte length prefix). */
export const MQTT_MAX_STRING_BYTES = 0xffff;

/** Why `s` is not a string the broker accepts, or null. `s` may hold lone surrogates (JS strings can). */
export function mqttStringProblem(s: string): string | null {
  let bytes = 0;
  for (let i = 0; i < s.length; i++) {
    let cp = s.charCodeAt(i);
    if (cp >= 0xd800 && cp <= 0xdfff) {
      const next = s.charCodeAt(i + 1);
      // A lone surrogate has no UTF-8 form (Buffer.from would silently make it U+FFFD).
      if (cp > 0xdbff || !(next >= 0xdc00 && next <= 0xdfff)) return 'not well-formed UTF-8 (lone surrogate)';
      cp = 0x10000 + ((cp - 0xd800) << 10) + (next - 0xdc00);
      i++;
    }
    const problem = codePointProblem(cp);
    if (problem) return problem;
    bytes += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
  }
  if (bytes > MQTT_MAX_STRING_BYTES) return `longer than ${MQTT_MAX_STRING_BYTES} bytes`;
  return null;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Decodes bytes the broker would accept as a string; otherwise returns why not. */
export function decodeMqttString(bytes: Uint8Array): { value: string } | { problem: string } {
  let value: string;
  try {
    // `fatal` refuses overlongs, encoded surrogates, values beyond U+10FFFF and truncated sequences.
    value = strictUtf8.decode(bytes);
  } catch {
    return { problem: 'not well-formed UTF-8' };
  }
  const problem = mqttStringProblem(value);
  return problem ? { problem } : { value };
}

/** Why one code point is refused, or null. */
function codePointProblem(cp: number): string | null {
  if (cp === 0) return 'contains U+0000';
  if (cp < 0x20) return 'contains a control character (C0)';
  if (cp >= 0x7f && cp <= 0x9f) return cp === 0x7f ? 'contains DEL' : 'contains a control character (C1)';
  if ((cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) === 0xfffe) return 'contains a Unicode noncharacter';
  return null;
}
