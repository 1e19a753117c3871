import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isoTime } from '../src/store/iso-time.js';
import { prng } from './helpers/prng.js';

test('isoTime is toISOString: across seconds, years, fractions, negatives and the ends of the range', () => {
  const random = prng(20261201);
  const times = [
    0, -0, 1, 999, 1000, -1, -999, -1000, -1001, 0.5, -0.5, 1.999, 8.64e15, -8.64e15, 253402300800000,
  ];
  // Runs of nearby times (the cache's case) and jumps between far ones.
  let t = 1_764_600_000_000;
  for (let i = 0; i < 5000; i++) {
    t += random() < 0.9 ? Math.floor(random() * 40) : Math.floor((random() - 0.5) * 1e13);
    times.push(t, t + random());
  }
  for (const ms of times) assert.equal(isoTime(ms), new Date(ms).toISOString(), String(ms));
  for (const bad of [NaN, Infinity, 8.64e15 + 1])
    assert.throws(() => isoTime(bad), RangeError, `${bad}: as toISOString`);
});
