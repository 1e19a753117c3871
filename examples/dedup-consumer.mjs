/* global process, console */
// A consumer that sees each device message once. The gateway delivers at least once: after a lost
// link or a restart it sends again what the broker may already have had, with the same `mqttsn-id`
// user property ("<gateway client id>:<sequence>", unique across a fleet). MQTT 5 only: 3.1.1 has no
// user properties. Usage: node examples/dedup-consumer.mjs mqtt://broker:1883 'mqttsn/#'
import mqtt from 'mqtt';

const [url = 'mqtt://127.0.0.1:1883', filter = 'mqttsn/#'] = process.argv.slice(2);
const RECENT_IDS = 100_000; // a replay repeats the messages in flight when the link went: recent ones
const seen = new Set(); // insertion order: the oldest id is the first
const client = mqtt.connect(url, { protocolVersion: 5 });
client.on('connect', () => client.subscribe(filter, { qos: 1 }, () => console.error('subscribed')));
client.on('message', (topic, payload, packet) => {
  const id = packet.properties?.userProperties?.['mqttsn-id'];
  if (id !== undefined && seen.has(String(id))) return; // a replay duplicate: already handled
  if (id !== undefined) seen.add(String(id));
  if (seen.size > RECENT_IDS) seen.delete(seen.values().next().value);
  console.log(`${topic} ${payload}`);
});
