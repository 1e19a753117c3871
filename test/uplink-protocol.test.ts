/**
 * The MQTT 5 → 3.1.1 fallback recovers by itself: a broker that turned down MQTT 5 (aedes speaks only
 * 3.1.1) is asked for 3.1.1 directly on reconnects for a while, then for MQTT 5 again, so a broker
 * upgraded in place (here: the same address now leads to a real Mosquitto, MQTT 5) gets MQTT 5 and its
 * user properties back without a gateway restart. Time is a manual clock; the brokers, the proxy
 * between them and the LevelDB outbox are real.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ManualClock } from '../src/time.js';
import { MQTT5_RETRY_MS } from '../src/uplink/uplink.js';
import { requireMosquitto, startAedes, startMosquitto } from './helpers/broker.js';
import { collect } from './helpers/mqtt.js';
import { startFaultProxy } from './helpers/proxy.js';
import { withTempDir } from './helpers/tmp.js';
import { waitUntil } from './helpers/wait.js';
import { openOutboxStore, startUplink } from './support/uplink-rig.js';

test('a broker that turned down MQTT 5 is asked for it again after a while, and an upgraded one gets it', async (t) => {
  if (!requireMosquitto(t)) return;
  const old = await startAedes();
  t.after(() => old.close());
  const upgraded = await startMosquitto();
  t.after(() => upgraded.stop());
  const proxy = await startFaultProxy(old.port);
  t.after(() => proxy.close());
  const sub = await collect(upgraded.url, 'mqttsn/#', { protocolVersion: 5 });
  t.after(() => sub.close());
  const { outbox } = await openOutboxStore(t, withTempDir(t, 'uplink-protocol-'));
  const clock = new ManualClock();
  const uplink = startUplink(t, outbox, { brokers: [proxy.url], now: () => clock.now() });
  await waitUntil(() => uplink.stats.state === 'connected', { description: 'connected to aedes' });
  assert.equal(uplink.stats.protocolFallbacks, 1, 'aedes turned MQTT 5 down');

  let sent = 0;
  /** One message through the uplink; resolves with the user properties it arrived with. */
  const deliver = async (): Promise<Record<string, unknown> | undefined> => {
    const n = sent++;
    outbox.append({
      clientId: 'dev-1',
      topic: 'mqttsn/dev-1/data',
      payload: Buffer.from(String(n)),
      retain: false,
      qos: 1,
    });
    await waitUntil(() => sub.messages.some((m) => m.payload.toString() === String(n)), {
      timeoutMs: 10_000,
      description: `message ${n} at Mosquitto`,
    });
    const message = sub.messages.find((m) => m.payload.toString() === String(n));
    return message?.properties?.userProperties as Record<string, unknown> | undefined;
  };

  // Past MQTT5_RETRY_MS a broker still without MQTT 5 is asked again and falls back again, quietly:
  // the fallback was counted (and logged) once.
  clock.advance(MQTT5_RETRY_MS);
  proxy.cut();
  await waitUntil(() => uplink.stats.reconnects === 1 && uplink.stats.state === 'connected', {
    timeoutMs: 10_000,
    description: 'reconnected to aedes',
  });
  assert.equal(uplink.stats.protocolFallbacks, 1);

  // The broker is upgraded in place; within MQTT5_RETRY_MS of the fallback, 3.1.1 is asked directly.
  proxy.setTarget(upgraded.port);
  proxy.cut();
  await waitUntil(() => uplink.stats.reconnects === 2 && uplink.stats.state === 'connected', {
    timeoutMs: 10_000,
    description: 'reconnected within the retry time',
  });
  assert.equal((await deliver())?.['mqttsn-client'], undefined, 'MQTT 3.1.1: no user properties');

  // Past MQTT5_RETRY_MS, the next reconnect asks for MQTT 5 again, and the upgraded broker takes it.
  clock.advance(MQTT5_RETRY_MS);
  proxy.cut();
  await waitUntil(() => uplink.stats.reconnects === 3 && uplink.stats.state === 'connected', {
    timeoutMs: 10_000,
    description: 'reconnected after the retry time',
  });
  assert.equal((await deliver())?.['mqttsn-client'], 'dev-1', 'MQTT 5 again: the user properties are back');
  assert.equal(uplink.stats.protocolFallbacks, 1, 'no second fallback');
});
