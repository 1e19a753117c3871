/** Test harness helpers: brokers, a TCP fault proxy, MQTT assertions, an MQTT-SN UDP client, temp dirs. */
export * from './broker.js';
export * from './mqtt.js';
export * from './ports.js';
export * from './proxy.js';
export * from './tmp.js';
export * from './udp-client.js';
export * from './wait.js';
