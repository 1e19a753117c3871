import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TimerWheel, type WheelEntry } from '../src/gateway/wheel.js';

function entry(deadline: number, fired: number[]): WheelEntry {
  return { deadline, slot: -1, expire: (now) => fired.push(now) };
}

test('entries fire once their deadline has passed, not before', () => {
  const wheel = new TimerWheel(0, 100, 8);
  const fired: number[] = [];
  wheel.schedule(entry(350, fired));
  wheel.tick(300);
  assert.deepEqual(fired, []);
  wheel.tick(400);
  assert.deepEqual(fired, [400]);
  wheel.tick(10_000);
  assert.equal(fired.length, 1, 'fires once');
});

test('moving a deadline forward needs no rescheduling; far deadlines survive several rotations', () => {
  const wheel = new TimerWheel(0, 100, 8);
  const fired: number[] = [];
  const e = entry(500, fired);
  wheel.schedule(e);
  e.deadline = 5_000;
  for (let t = 0; t <= 4_900; t += 100) wheel.tick(t);
  assert.deepEqual(fired, []);
  wheel.tick(5_000);
  assert.deepEqual(fired, [5_000]);
});

test('cancel and Infinity', () => {
  const wheel = new TimerWheel(0, 100, 8);
  const fired: number[] = [];
  const a = entry(200, fired);
  const b = entry(Infinity, fired);
  wheel.schedule(a);
  wheel.schedule(b);
  assert.equal(wheel.size, 1);
  wheel.cancel(a);
  wheel.tick(1_000);
  assert.deepEqual(fired, []);
});

test('many entries: each fires exactly once at or after its deadline', () => {
  const wheel = new TimerWheel(0, 250, 64);
  const firedAt = new Map<number, number>();
  const deadlines = Array.from({ length: 5000 }, (_, i) => (i * 7919) % 100_000);
  deadlines.forEach((deadline, i) => {
    wheel.schedule({ deadline, slot: -1, expire: (now) => firedAt.set(i, now) });
  });
  for (let t = 0; t <= 100_250; t += 250) wheel.tick(t);
  assert.equal(firedAt.size, deadlines.length);
  deadlines.forEach((deadline, i) => {
    const at = firedAt.get(i)!;
    assert.ok(at >= deadline && at < deadline + 500, `entry ${i}: deadline ${deadline}, fired ${at}`);
  });
});
