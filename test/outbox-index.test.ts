/**
 * The outbox's in-memory index (typed arrays, compaction) against a plain Map model, with fast-check.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { LiveIndex } from '../src/store/live-index.js';

type Op =
  { kind: 'add'; gap: number; size: number } | { kind: 'remove'; pick: number } | { kind: 'removeOldest' };

const opArbitrary: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({ kind: fc.constant('add' as const), gap: fc.nat(3), size: fc.nat(1000) }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('remove' as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('removeOldest' as const) }) },
);

describe('outbox live index', () => {
  test('behaves like a sorted map of seq -> (size, time)', () => {
    fc.assert(
      fc.property(fc.array(opArbitrary, { maxLength: 4000 }), (ops) => {
        const index = new LiveIndex();
        const model = new Map<number, { size: number; time: number }>();
        let seq = 0;
        for (const op of ops) {
          if (op.kind === 'add') {
            seq += op.gap + 1;
            index.add(seq, op.size, seq * 10);
            model.set(seq, { size: op.size, time: seq * 10 });
          } else if (op.kind === 'remove') {
            const candidate = seq === 0 ? 1 : (op.pick % (seq + 2)) + 1; // sometimes not live / unknown
            const expected = model.get(candidate);
            assert.equal(index.remove(candidate), expected === undefined ? -1 : expected.size);
            model.delete(candidate);
          } else {
            const oldest = index.oldest();
            const first = [...model.keys()].sort((a, b) => a - b)[0];
            assert.equal(oldest?.seq, first);
            if (first !== undefined) index.remove(first);
            model.delete(first!);
          }
          assert.equal(index.count, model.size);
        }
        let bytes = 0;
        for (const { size } of model.values()) bytes += size;
        assert.equal(index.bytes, bytes);
        for (let s = 1; s <= seq; s++) {
          assert.equal(index.has(s), model.has(s));
          assert.equal(index.receivedAt(s), model.get(s)?.time);
        }
        const oldestSeq = [...model.keys()].sort((a, b) => a - b)[0];
        assert.equal(index.oldest()?.seq, oldestSeq);
      }),
      { numRuns: 200 },
    );
  });

  test('memory stays proportional to live entries when the head lingers', () => {
    const index = new LiveIndex();
    index.add(1, 10, 0); // never removed: the head stays put
    for (let seq = 2; seq < 200_000; seq++) {
      index.add(seq, 10, 0);
      index.remove(seq); // acknowledged at once, out of order relative to the lingering head
    }
    assert.equal(index.count, 1);
    assert.equal(index.oldest()?.seq, 1);
    // Compaction keeps the arrays small although 200k entries passed through.
    const capacity = (index as unknown as { seqs: Float64Array }).seqs.length;
    assert.ok(capacity <= 4096, `capacity ${capacity}`);
  });

  test('refuses sequence numbers that do not increase', () => {
    const index = new LiveIndex();
    index.add(5, 1, 0);
    assert.throws(() => index.add(5, 1, 0), /not after/);
    assert.throws(() => index.add(4, 1, 0), /not after/);
  });
});
