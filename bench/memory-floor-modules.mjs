/* global process, console, URL, setInterval */
/**
 * The second row of bench/memory-floor.ts: node with only the packages the gateway loads, used the
 * way it uses them, and nothing of the gateway itself: the V8 flags of src/launch-flags.ts, then
 * mqtt, mqtt-packet, pino (writing to stdout), LevelDB opened with the gateway's options, and one
 * bound UDP socket; then idle. `node bench/memory-floor-modules.mjs <data-dir> [<build dir>]`: the flags
 * and the LevelDB options come from that build's dist/ (this tree's by default).
 */
import { pathToFileURL } from 'node:url';

const build = pathToFileURL(`${process.argv[3] ?? new URL('..', import.meta.url).pathname}/`);
const { applyMemoryFlags } = await import(new URL('dist/launch-flags.js', build).href);
applyMemoryFlags();
const dgram = await import('node:dgram');
const { default: mqtt } = await import('mqtt');
const { default: mqttPacket } = await import('mqtt-packet');
const { pino } = await import('pino');
const { openStore } = await import(new URL('dist/store/db.js', build).href);

const log = pino({ level: 'warn' });
const db = await openStore(process.argv[2]);
const socket = dgram.createSocket('udp4');
await new Promise((resolve) => socket.bind(0, '127.0.0.1', resolve));
log.warn({ mqtt: typeof mqtt.connect, packet: typeof mqttPacket.generate, db: db.status }, 'modules loaded');
console.log('ready');
setInterval(() => undefined, 1 << 30);
