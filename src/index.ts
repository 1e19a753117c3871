/**
 * The package's root API, for embedding the gateway in another program:
 *
 * ```ts
 * import { createBridge, loadConfig } from 'mqttsn-bridge';
 * const config = await loadConfig({ argv: ['--broker', 'mqtt://broker.lan:1883'], env: process.env });
 * const bridge = await createBridge(config);
 * // … bridge.gateway.stats, bridge.outbox.stats, bridge.uplink.state …
 * await bridge.stop();
 * ```
 *
 * The MQTT-SN codec alone is the subpath `mqttsn-bridge/codec`.
 */
export { Bridge, createBridge, type BridgeParts, type StoreWrappers } from './bridge.js';
export { ConfigError, loadConfig, parseCommandLine, validateConfig } from './config/load.js';
export type { CommandLine, LoadOptions } from './config/load.js';
export { configSchema, type Config, type ConfigInput } from './config/schema.js';
export { ManualClock, systemClock, type Clock } from './time.js';
export { createLogger, type LogFormat, type LoggerOptions } from './observe/logger.js';
export { RecentWarnings } from './observe/recent.js';
export type { GatewayStats } from './gateway/stats.js';
export type { SessionState } from './gateway/session.js';
export type { OutboxStats } from './store/outbox.js';
export type { UplinkState, UplinkStats } from './uplink/uplink.js';
