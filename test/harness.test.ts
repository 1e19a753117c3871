/**
 * Proves the test helpers work against real parts: aedes, mosquitto, the fault proxy, temp dirs.
 * Helpers are imported module by module (not via helpers/index.js) so these tests do not depend on
 * the codec that helpers/udp-client.ts needs.
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import type { MqttClient } from 'mqtt';
import { requireMosquitto, startAedes, startMosquitto } from './helpers/broker.js';
import { collect, connectClient, publishTo, uniqueClientId } from './helpers/mqtt.js';
import { canConnect, freePort } from './helpers/ports.js';
import { startFaultProxy } from './helpers/proxy.js';
import { tempDir, withTempDir } from './helpers/tmp.js';
import { waitUntil } from './helpers/wait.js';

/** Resolves true if `promise` settles within `ms`, false otherwise. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const settled = await Promise.race([
    promise.then(
      () => true,
      () => true,
    ),
    new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms))),
  ]);
  clearTimeout(timer);
  return settled;
}

function closed(client: MqttClient): Promise<void> {
  return new Promise((resolve) => client.once('close', () => resolve()));
}

describe('aedes', () => {
  test('starts on an ephemeral loopback port, round-trips a message, closes', async (t) => {
    const aedes = await startAedes();
    t.after(() => aedes.close());
    assert.match(aedes.url, /^mqtt:\/\/127\.0\.0\.1:\d+$/);
    assert.notEqual(aedes.port, 0);

    const client = await connectClient(aedes.url);
    t.after(() => client.endAsync(true));
    const received = new Promise<[string, Buffer]>((resolve) =>
      client.once('message', (...m) => resolve([m[0], m[1]])),
    );
    await client.subscribeAsync('harness/+', { qos: 1 });
    await client.publishAsync('harness/a', 'hello', { qos: 1 });
    const [topic, payload] = await received;
    assert.equal(topic, 'harness/a');
    assert.equal(payload.toString(), 'hello');
  });

  test('collect and publishTo', async (t) => {
    const aedes = await startAedes();
    t.after(() => aedes.close());
    const sub = await collect(aedes.url, ['x/#', 'y']);
    t.after(() => sub.close());
    await publishTo(aedes.url, 'x/1', 'one', { qos: 1 });
    await publishTo(aedes.url, 'y', Buffer.from([0, 255]), { qos: 0 });
    const messages = await sub.waitFor(2);
    assert.deepEqual(
      messages.map((m) => [m.topic, m.payload, m.qos, m.retain]),
      [
        ['x/1', Buffer.from('one'), 1, false],
        ['y', Buffer.from([0, 255]), 0, false],
      ],
    );
    await assert.rejects(sub.waitFor(3, 100), /expected 3 message\(s\) within 100 ms, got 2: x\/1="one"/);
  });

  test('close() does not hang on connected clients and frees the port', async () => {
    const aedes = await startAedes();
    const client = await connectClient(aedes.url);
    const clientClosed = closed(client);
    await aedes.close();
    await clientClosed;
    await client.endAsync(true);
    assert.equal(await canConnect(aedes.port), false);
    await aedes.close(); // idempotent
  });
});

describe('mosquitto', () => {
  test('publish/subscribe, kill, restart on the same port', async (t) => {
    if (!requireMosquitto(t)) return;
    const broker = await startMosquitto();
    t.after(() => broker.stop());
    assert.match(broker.url, /^mqtt:\/\/127\.0\.0\.1:\d+$/);
    const firstPid = broker.pid;
    assert.ok(firstPid);

    // MQTT 5 with retain-as-published: the retain flag is what the publisher set.
    const sub = await collect(broker.url, 'm/#', { protocolVersion: 5 });
    t.after(() => sub.close());
    await publishTo(broker.url, 'm/retained', 'r', { qos: 1, retain: true, protocolVersion: 5 });
    await publishTo(broker.url, 'm/plain', 'p', { qos: 1 });
    const before = await sub.waitFor(2);
    assert.deepEqual(
      before.map((m) => [m.topic, m.payload.toString(), m.retain]),
      [
        ['m/retained', 'r', true],
        ['m/plain', 'p', false],
      ],
    );

    await broker.kill();
    assert.equal(broker.running, false);
    assert.equal(await canConnect(broker.port), false);
    await waitUntil(() => !sub.client.connected, { description: 'collector to notice the broker died' });

    await broker.restart();
    assert.equal(broker.running, true);
    assert.notEqual(broker.pid, firstPid);
    assert.equal(await canConnect(broker.port), true);

    // The collector reconnects and resubscribes by itself (reconnectPeriod 100 ms).
    // Publish until it arrives: 'connect' fires before the resubscription has reached the broker.
    await waitUntil(
      async () => {
        await publishTo(broker.url, 'm/after', 'a', { qos: 1 });
        return sub.messages.some((m) => m.topic === 'm/after');
      },
      { intervalMs: 50, description: 'collector to resubscribe' },
    );
    assert.match(broker.logs(), /mosquitto version .* running/);

    await broker.stop();
    assert.equal(await canConnect(broker.port), false);
    await broker.stop(); // idempotent
  });

  test('persistence survives kill -9 + restart', async (t) => {
    if (!requireMosquitto(t)) return;
    const broker = await startMosquitto({ persistence: true });
    t.after(() => broker.stop());
    await publishTo(broker.url, 'persist/me', 'kept', { qos: 1, retain: true });
    const db = path.join(broker.persistenceDir ?? assert.fail('no persistence dir'), 'mosquitto.db');
    await waitUntil(() => existsSync(db), { description: 'mosquitto to autosave' });
    await broker.kill();
    await broker.restart();
    const sub = await collect(broker.url, 'persist/#');
    t.after(() => sub.close());
    const [retained] = await sub.waitFor(1);
    assert.equal(retained?.payload.toString(), 'kept');
    assert.equal(retained?.retain, true);
  });

  test('a taken port fails start with the logs in the error', async (t) => {
    if (!requireMosquitto(t)) return;
    const aedes = await startAedes();
    t.after(() => aedes.close());
    await assert.rejects(
      startMosquitto({ port: aedes.port }),
      /mosquitto exited[\s\S]*Address already in use/,
    );
  });

  test('graceful stop() then restart() keeps persisted state in a caller-owned dir', async (t) => {
    if (!requireMosquitto(t)) return;
    const data = tempDir('mosq-data-');
    const broker = await startMosquitto({ persistenceDir: data.path });
    t.after(async () => {
      await broker.stop();
      data.cleanup(); // after the broker stopped writing into it
    });
    await publishTo(broker.url, 'graceful/r', 'v', { qos: 1, retain: true });
    await broker.stop();
    assert.equal(broker.running, false);
    assert.ok(existsSync(path.join(data.path, 'mosquitto.db')));
    await broker.restart();
    const sub = await collect(broker.url, 'graceful/#');
    t.after(() => sub.close());
    assert.equal((await sub.waitFor(1))[0]?.payload.toString(), 'v');
  });
});

describe('fault proxy', () => {
  test('forwards, counts, cut() closes clients', async (t) => {
    const aedes = await startAedes();
    t.after(() => aedes.close());
    const proxy = await startFaultProxy(aedes.port);
    t.after(() => proxy.close());
    assert.match(proxy.url, /^mqtt:\/\/127\.0\.0\.1:\d+$/);

    const sub = await collect(aedes.url, 'p/#');
    t.after(() => sub.close());
    const client = await connectClient(proxy.url);
    t.after(() => client.endAsync(true));
    assert.equal(proxy.connections, 1);
    assert.equal(proxy.accepted, 1);
    await client.publishAsync('p/1', 'via proxy', { qos: 1 });
    await sub.waitFor(1);
    assert.ok(proxy.bytesForwarded > 0);

    const clientClosed = closed(client);
    proxy.cut();
    assert.equal(proxy.connections, 0);
    await clientClosed;
    assert.equal(client.connected, false);
  });

  test('refuse() makes connecting fail until turned off', async (t) => {
    const aedes = await startAedes();
    t.after(() => aedes.close());
    const proxy = await startFaultProxy(aedes.port);
    t.after(() => proxy.close());

    proxy.refuse(true);
    await assert.rejects(connectClient(proxy.url));
    assert.equal(proxy.accepted, 0);

    proxy.refuse(false);
    const client = await connectClient(proxy.url);
    await client.endAsync();
  });

  test('blackhole() keeps the socket open but forwards nothing, then recovers', async (t) => {
    const aedes = await startAedes();
    t.after(() => aedes.close());
    const proxy = await startFaultProxy(aedes.port);
    t.after(() => proxy.close());
    const sub = await collect(aedes.url, 'b/#');
    t.after(() => sub.close());
    const client = await connectClient(proxy.url, { keepalive: 60 });
    t.after(() => client.endAsync(true));

    proxy.blackhole(true);
    const lost = client.publishAsync('b/lost', 'x', { qos: 1 });
    lost.catch(() => {}); // rejected when the client is force-closed at the end
    assert.equal(await settlesWithin(lost, 300), false, 'no PUBACK through a blackhole');
    assert.equal(client.connected, true);
    assert.equal(proxy.connections, 1);
    assert.ok(proxy.bytesDropped > 0);
    assert.equal(sub.messages.length, 0);

    // New connections are accepted but get no CONNACK either.
    const stuck = connectClient(proxy.url, { connectTimeout: 300 });
    await assert.rejects(stuck);

    proxy.blackhole(false);
    await client.publishAsync('b/ok', 'y', { qos: 1 });
    const [message] = await sub.waitFor(1);
    assert.equal(message?.topic, 'b/ok');
    const fresh = await connectClient(proxy.url);
    await fresh.endAsync();
  });

  test('setTarget() redirects new connections', async (t) => {
    const first = await startAedes();
    t.after(() => first.close());
    const second = await startAedes();
    t.after(() => second.close());
    const proxy = await startFaultProxy(first.port);
    t.after(() => proxy.close());

    const seen: string[] = [];
    second.broker.on('client', (c) => seen.push(c.id));
    proxy.setTarget(second.port);
    const clientId = uniqueClientId('redir');
    const client = await connectClient(proxy.url, { clientId });
    await client.endAsync();
    assert.deepEqual(seen, [clientId]);
  });

  test('a dead target closes the client connection', async (t) => {
    const deadPort = await freePort();
    const proxy = await startFaultProxy(deadPort);
    t.after(() => proxy.close());
    await assert.rejects(connectClient(proxy.url));
    await waitUntil(() => proxy.connections === 0, { description: 'proxy to drop the link' });
  });
});

describe('temp dirs', () => {
  test('tempDir() creates under os.tmpdir() and cleanup() removes it', () => {
    const dir = tempDir('harness-');
    assert.ok(path.basename(dir.path).startsWith('harness-'));
    writeFileSync(path.join(dir.path, 'f'), 'x');
    dir.cleanup();
    assert.equal(existsSync(dir.path), false);
    dir.cleanup(); // idempotent
  });

  test('withTempDir() removes the dir after the test', async (t) => {
    let inner = '';
    await t.test('inner', (t2) => {
      inner = withTempDir(t2);
      assert.equal(existsSync(inner), true);
    });
    assert.equal(existsSync(inner), false);
  });
});

describe('MQTT-SN UDP test client', () => {
  /** A scripted stand-in for the gateway on 127.0.0.1, using the project's codec. */
  async function fakeGateway() {
    const { decode, encode } = await import('../src/codec/index.js');
    const socket = dgram.createSocket('udp4');
    const received: string[] = [];
    socket.on('message', (msg, from) => {
      const packet = decode(msg);
      received.push(packet.type);
      const reply = (p: Parameters<typeof encode>[0]): void =>
        void socket.send(encode(p), from.port, from.address);
      switch (packet.type) {
        case 'CONNECT':
          if (packet.will) reply({ type: 'WILLTOPICREQ' });
          else reply({ type: 'CONNACK', returnCode: 0 });
          break;
        case 'WILLTOPIC':
          reply({ type: 'WILLMSGREQ' });
          break;
        case 'WILLMSG':
          reply({ type: 'CONNACK', returnCode: 0 });
          break;
        case 'REGISTER':
          reply({ type: 'REGACK', topicId: 7, msgId: packet.msgId, returnCode: 0 });
          break;
        case 'PUBLISH':
          // An unsolicited downlink PUBLISH first: it must stay queued, not be mistaken for the ack.
          reply({ ...packet, msgId: 99, dup: false });
          if (packet.qos === 1)
            reply({ type: 'PUBACK', topicId: packet.topicId, msgId: packet.msgId, returnCode: 0 });
          if (packet.qos === 2) reply({ type: 'PUBREC', msgId: packet.msgId });
          break;
        case 'PUBREL':
          reply({ type: 'PUBCOMP', msgId: packet.msgId });
          break;
        case 'PINGREQ':
          reply({ type: 'PINGRESP' });
          break;
        case 'DISCONNECT':
          reply({ type: 'DISCONNECT' });
          break;
      }
    });
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    return {
      port: socket.address().port,
      received,
      close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
    };
  }

  test('flows, queueing and timeouts', async (t) => {
    const { MqttSnTestClient } = await import('./helpers/udp-client.js');
    const gw = await fakeGateway();
    t.after(() => gw.close());
    const client = await MqttSnTestClient.create({ gatewayPort: gw.port });
    t.after(() => client.close());

    const connack = await client.connect({ clientId: 'c1', will: { topic: 'w', message: 'bye', qos: 1 } });
    assert.equal(connack.returnCode, 0);
    assert.deepEqual(gw.received, ['CONNECT', 'WILLTOPIC', 'WILLMSG']);

    const puback = await client.publish({ topicName: 'a/b', qos: 1, data: 'x' });
    assert.deepEqual([puback?.type, puback?.msgId], ['PUBACK', 2]); // msgId 1 went to the REGISTER
    const pubcomp = await client.publish({ topicId: 7, qos: 2, data: new Uint8Array([1]) });
    assert.deepEqual([pubcomp?.type, pubcomp?.msgId], ['PUBCOMP', 3]);
    await client.publish({ topicName: 'a/b', qos: 0, data: 'no register again' });
    assert.equal(gw.received.filter((type) => type === 'REGISTER').length, 1);

    // The downlink PUBLISHes stayed queued, in order.
    const first = await client.next('PUBLISH');
    assert.equal(Buffer.from(first.data).toString(), 'x');
    await client.next('PUBLISH');
    await client.next('PUBLISH');
    await client.expectNothing(50);

    await assert.rejects(
      client.next('SUBACK', 50),
      /timed out after 50 ms waiting for SUBACK \(queued: nothing\)/,
    );
    assert.equal((await client.pingreq()).type, 'PINGRESP');
    assert.equal((await client.disconnect()).type, 'DISCONNECT');
  });
});
