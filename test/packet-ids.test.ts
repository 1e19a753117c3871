/**
 * The packet-id allocator the drain shares with MQTT.js (its messageIdProvider): never an id in use,
 * in order round the 16-bit range, null only when all 65,535 are held.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PacketIds } from '../src/uplink/packet-ids.js';

test('ids go round in order, skip the ones in use, and run out only when all are held', () => {
  const ids = new PacketIds();
  assert.deepEqual([ids.allocate(), ids.allocate(), ids.allocate()], [1, 2, 3]);
  assert.equal(ids.getLastAllocated(), 3);
  ids.deallocate(2);
  assert.equal(ids.allocate(), 4, 'a freed id comes back only after the others');
  assert.equal(ids.register(10), true, 'MQTT.js re-sending a stored packet under its id');
  assert.equal(ids.register(10), false, 'taken');
  const seen = new Set<number>([1, 3, 4, 10]);
  for (;;) {
    const id = ids.allocate();
    if (id === null) break;
    assert.ok(id >= 1 && id <= 65_535 && !seen.has(id), `id ${id} handed out twice`);
    seen.add(id);
  }
  assert.equal(seen.size, 65_535, 'every id once, 2 included after the wrap');
  assert.equal(ids.count, 65_535);
  ids.deallocate(40_000);
  assert.equal(ids.allocate(), 40_000);
  ids.clear();
  assert.equal(ids.count, 0);
  assert.notEqual(ids.allocate(), null);
});
