export {
  Uplink,
  type UplinkEvents,
  type UplinkState,
  type UplinkStateDetail,
  type UplinkStats,
} from './uplink.js';
export {
  UPLINK_DEFAULTS,
  type PresenceOptions,
  type ReconnectOptions,
  type TlsFiles,
  type UplinkOptions,
} from './options.js';
export type { UplinkCounters } from './counters.js';
