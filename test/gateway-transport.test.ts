import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import pino from 'pino';
import { ReturnCode } from '../src/codec/constants.js';
import { encode, shortTopicId } from '../src/codec/index.js';
import type { Packet } from '../src/codec/types.js';
import { Boundaries } from '../src/gateway/boundary.js';
import { CommitTable } from '../src/gateway/commits.js';
import { ReplyBuffers } from '../src/gateway/reply-buffers.js';
import type { Session } from '../src/gateway/session.js';
import { GatewayStats } from '../src/gateway/stats.js';
import { RateLimitedWarn } from '../src/log/rate-limit.js';
import { waitUntil } from './helpers/index.js';
import { startGateway } from './support/gateway-fixture.js';

test('pooled replies have the bytes the codec gives them', () => {
  const pool = new ReplyBuffers(() => undefined);
  const replies: Packet[] = [
    { type: 'PUBACK', topicId: 0x1234, msgId: 0xfedc, returnCode: ReturnCode.CONGESTION },
    { type: 'PUBREC', msgId: 0x0102 },
    { type: 'PUBREL', msgId: 0xffff },
    { type: 'PUBCOMP', msgId: 1 },
    { type: 'PINGRESP' },
  ];
  for (const packet of replies) {
    const slot = pool.take(packet)!;
    assert.deepEqual([...slot.bytes], [...encode(packet)], packet.type);
    slot.done(null);
  }
  assert.equal(pool.take({ type: 'CONNACK', returnCode: 0 }), undefined, 'other types are encoded as usual');
});

test('a pooled buffer is reused only once its send callback has run', () => {
  const sent: Array<Error | null> = [];
  const pool = new ReplyBuffers((err) => sent.push(err), 1);
  const a = pool.take({ type: 'PUBACK', topicId: 1, msgId: 1, returnCode: 0 })!;
  const b = pool.take({ type: 'PUBACK', topicId: 2, msgId: 2, returnCode: 0 })!;
  assert.notEqual(a.bytes, b.bytes, 'both sends in flight: two buffers');
  assert.equal(a.bytes.readUInt16BE(4), 1, 'the first is untouched by the second');
  a.done(null);
  b.done(null);
  assert.equal(pool.pooled, 1, 'at most `keep` slots are kept');
  const c = pool.take({ type: 'PUBACK', topicId: 3, msgId: 3, returnCode: 0 })!;
  assert.equal(c.bytes, a.bytes, 'reused after its callback');
  assert.deepEqual(sent, [null, null]);
});

test('PUBACKs of one group commit each carry their own message id (no buffer reused before its send)', async (t) => {
  const gw = await startGateway(t);
  const c = await gw.client();
  await c.connect({ clientId: 'burst' });
  const count = 200;
  // Sent without waiting: one group commit acknowledges many of them in one synchronous loop.
  for (let msgId = 1; msgId <= count; msgId++)
    await c.send({
      type: 'PUBLISH',
      dup: false,
      qos: 1,
      retain: false,
      topicIdType: 'short',
      topicId: shortTopicId('ab'),
      msgId,
      data: Buffer.from(String(msgId)),
    });
  const acked = new Set<number>();
  for (let i = 0; i < count; i++) {
    const puback = await c.next('PUBACK');
    assert.equal(puback.returnCode, ReturnCode.ACCEPTED);
    assert.equal(puback.topicId, shortTopicId('ab'));
    acked.add(puback.msgId);
  }
  assert.equal(acked.size, count, 'every message id acknowledged once');
  await waitUntil(async () => (await gw.stored()).length === count);
});

function commitTable(onCommitted: ConstructorParameters<typeof CommitTable>[0]): {
  table: CommitTable;
  stats: GatewayStats;
} {
  const stats = new GatewayStats();
  const warn = new RateLimitedWarn(pino({ level: 'silent' }), 10_000, () => 0);
  return { table: new CommitTable(onCommitted, new Boundaries(stats, warn)), stats };
}

test('the commit table: one slot per message in the commit, reused, each answered once', () => {
  const session = { clientId: 'c' } as Session;
  const answered: string[] = [];
  const { table } = commitTable((s, commit, err) =>
    answered.push(
      `${s.clientId} ${commit.qos} ${commit.msgId} ${commit.topicId} ${commit.started} ${err?.message ?? 'ok'}`,
    ),
  );
  const first = table.take(session, 1, 10, 7, 100);
  const second = table.take(session, 2, 11, 7, 101);
  assert.notEqual(first, second);
  second.callback(new Error('disk full'));
  first.callback();
  first.callback(); // a sink calling twice does not answer twice
  assert.deepEqual(answered, ['c 2 11 7 101 disk full', 'c 1 10 7 100 ok']);
  assert.equal(table.pooled, 2);
  const refused = table.take(session, 1, 12, 7, 102);
  assert.ok(refused === first || refused === second, 'a slot is reused');
  table.release(refused); // the sink refused the message: its callback never runs
  assert.equal(table.pooled, 2);
});

test('the commit table: an exception in the acknowledgement is caught at the commit boundary', () => {
  const { table, stats } = commitTable(() => {
    throw new Error('bug');
  });
  table.take({ clientId: 'c' } as Session, 1, 1, 1, 0).callback();
  assert.equal(stats.errorsByBoundary.get('commit'), 1);
  assert.equal(table.pooled, 1, 'the slot is back in the pool anyway');
});

/**
 * A device in a worker thread (its own event loop), so it can receive while the gateway's thread is
 * blocked: it connects, publishes one QoS 1 message and raises `flag` when the PUBACK arrives.
 */
const DEVICE_THREAD = `
const { workerData, parentPort } = require('node:worker_threads');
const dgram = require('node:dgram');
const { port, connect, publish, flag } = workerData;
const socket = dgram.createSocket('udp4');
socket.on('message', (msg) => {
  if (msg[1] === 0x05) socket.send(publish, port, '127.0.0.1');
  else if (msg[1] === 0x0d) {
    Atomics.store(flag, 0, 1);
    Atomics.notify(flag, 0);
    socket.close();
    parentPort.postMessage('acked');
  }
});
socket.bind(0, '127.0.0.1', () => socket.send(connect, port, '127.0.0.1'));
`;

test('a commit hands its PUBACKs to the kernel before anything after it runs (the uplink publishing the batch)', async (t) => {
  const gw = await startGateway(t);
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const waited: string[] = [];
  // The uplink listens to the same event: whatever it does for the batch comes after this listener.
  gw.outbox.on('committed', () => {
    // Blocks the gateway's thread: a PUBACK deferred to a later tick (dns.lookup answering an IP
    // literal on the next tick, as Node's default does) cannot reach the device meanwhile.
    if (waited.length === 0) waited.push(Atomics.wait(flag, 0, 0, 10_000));
  });
  const device = new Worker(DEVICE_THREAD, {
    eval: true,
    workerData: {
      port: gw.port,
      flag,
      connect: encode({
        type: 'CONNECT',
        will: false,
        cleanSession: true,
        protocolId: 1,
        duration: 60,
        clientId: 'worker-device',
      }),
      publish: encode({
        type: 'PUBLISH',
        dup: false,
        qos: 1,
        retain: false,
        topicIdType: 'short',
        topicId: shortTopicId('ab'),
        msgId: 7,
        data: Buffer.from('x'),
      }),
    },
  });
  t.after(() => device.terminate());
  await once(device, 'message');
  assert.equal(waited.length, 1, 'one commit');
  assert.notEqual(waited[0], 'timed-out', 'the PUBACK reached the device while the commit was still running');
});
