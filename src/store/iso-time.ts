/**
 * `new Date(ms).toISOString()`, the receive time every outbox message carries (`mqttsn-received`),
 * without a Date and a full format per message: that cost ~1-3 µs of each append. Messages arrive
 * many per second, so the part up to the seconds is kept and only the milliseconds are added.
 */
let cachedSecond = NaN;
let cachedPrefix = '';

/** Date's range: ±100,000,000 days around 1970. */
const MAX_TIME = 8.64e15;

export function isoTime(ms: number): string {
  const t = Math.trunc(ms); // what Date does with a fractional time (TimeClip)
  // Outside Date's range (or NaN): toISOString throws its RangeError, as it always did.
  if (!(Math.abs(t) <= MAX_TIME)) return new Date(ms).toISOString();
  const second = Math.floor(t / 1000);
  if (second !== cachedSecond) {
    const full = new Date(second * 1000).toISOString();
    cachedSecond = second;
    // "…T12:34:56." of "…T12:34:56.000Z" (years past 9999 are longer: cut from the end).
    cachedPrefix = full.slice(0, full.length - 4);
  }
  const millis = t - second * 1000;
  return `${cachedPrefix}${millis < 10 ? '00' : millis < 100 ? '0' : ''}${millis}Z`;
}
