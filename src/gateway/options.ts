/**
 * The gateway's settings and the ports it talks to the rest of the bridge through (the outbox as a
 * MessageSink, the uplink as BrokerSubscriptions): types and defaults only, no behaviour.
 */
import type { QoS } from '../codec/constants.js';
import type { Namespace } from '../topics/namespace.js';
import type { PredefinedTopics } from '../topics/predefined.js';
import type { Peer } from './peer.js';
import type { Session } from './session.js';
import type { DiscardReason } from './stats.js';

/** A device message on its way to the broker. */
export interface DeviceMessage {
  clientId: string;
  topic: string;
  payload: Uint8Array;
  retain: boolean;
  /** Device-side QoS; upstream is always QoS 1. */
  qos: QoS;
}

/**
 * Where device messages go: the outbox (wired in bridge.ts). `onCommitted` runs once the message is
 * synced to disk; only then may the device get its PUBACK / PUBREC.
 */
export interface MessageSink {
  /** 'too-large': over the broker's maximum packet size, refused for good (PUBACK "not supported"). */
  append(
    message: DeviceMessage,
    onCommitted?: (err?: Error) => void,
  ): 'queued' | 'rejected' | 'dropped' | 'too-large';
}

export interface GatewayLimits {
  maxClients: number;
  maxTopicsPerClient: number;
  /** Largest datagram accepted, in bytes (MQTT-SN's own maximum is 65535). */
  maxPacketSize: number;
  maxClientIdLength: number;
  /** Subscriptions one device may hold; more get SUBACK "congestion". */
  maxSubscriptions?: number;
  /** Distinct filters the gateway subscribes at the broker for all devices; more get SUBACK "congestion". */
  maxBrokerSubscriptions?: number;
  /** Sessions whose client last spoke from one IP address; a new one evicts or is refused past it. */
  maxSessionsPerAddress?: number;
  /** Takeover probes waiting at once (see TakeoverProbes). */
  maxTakeoverProbes?: number;
}

/** Defaults of the optional limits; the config table (src/config/table.ts) takes its defaults from here. */
export const DEFAULT_MAX_SUBSCRIPTIONS_PER_CLIENT = 64;
export const DEFAULT_MAX_BROKER_SUBSCRIPTIONS = 50_000;
export const DEFAULT_MAX_SESSIONS_PER_ADDRESS = 256;
export const DEFAULT_IDLE_SESSION_EXPIRY_MS = 300_000;
export const DEFAULT_TAKEOVER_PROBE_MS = 1500;
export const DEFAULT_MAX_TAKEOVER_PROBES = 64;

export interface DeliveryOptions {
  /** T_retry: how long to wait for the device's answer before resending (DUP set). */
  retryMs: number;
  /** N_retry: resends before the client is considered lost. */
  maxRetries: number;
  /** Most messages queued per device; beyond that `policy` applies. */
  maxQueuedPerClient: number;
  /** Most bytes queued per device (stored record sizes); beyond that `policy` applies. */
  maxBytesPerClient?: number;
  /** Most bytes queued for all devices together; beyond that new messages are dropped. */
  maxBytes?: number;
  policy: 'drop-oldest' | 'reject';
  /** Largest datagram sent to a device (MQTT-SN's own maximum, 65535, when unset). */
  maxPacketSize?: number;
}

export interface DownlinkOptions extends DeliveryOptions {
  /** Keep QoS 0 messages for sleeping devices too (QoS 1/2 are always kept). */
  bufferQos0ForSleepers: boolean;
}

export interface GatewayOptions {
  gatewayId: number;
  limits: GatewayLimits;
  /** Client id used to name QoS −1 messages from senders without a session. */
  anonymousClientId: string;
  downlink: DownlinkOptions;
  /** Client ids allowed to CONNECT: exact ids, or prefixes ending in '*'. Empty: everyone. */
  allowClients: readonly string[];
  /** CIDR ranges QoS −1 senders without a session may publish from when an allow-list is set. */
  allowQosMinusOne?: readonly string[];
  /** How long the old address of a session may take to answer the takeover probe (default 1500). */
  takeoverProbeMs?: number;
  /** A CleanSession=0 session disconnected or lost this long is forgotten (0: never). */
  sessionExpiryMs: number;
  /** The same for a session whose client never did anything but CONNECT (default 5 minutes). */
  idleSessionExpiryMs?: number;
}

/** The broker side of subscriptions (the uplink, wired in bridge.ts). */
export interface BrokerSubscriptions {
  /**
   * Subscribe (again: the broker then re-sends retained messages for the filter). May answer with
   * the broker's verdict: false when the broker refused the filter (SUBACK >= 0x80).
   */
  subscribe(filter: string): void | Promise<boolean>;
  unsubscribe(filter: string): void;
}

export interface SessionRegistry {
  byClientId(clientId: string): Session | undefined;
  byPeer(key: string): Session | undefined;
  /** byPeer(peerKey(address, port)), without building the key: a direct sender, per datagram. */
  atAddress(address: string, port: number): Session | undefined;
  readonly size: number;
  /** A new session bound to `peer`. */
  create(clientId: string, peer: Peer): Session;
  /** Points the session at a new address (NAT rebinding / reconnect); the old address is forgotten. */
  rebind(session: Session, peer: Peer): void;
  /** Forgets the session's address (it no longer reaches the session). */
  unbind(session: Session): void;
  /** Forgets the session and what hangs off it; `reason` labels the queued messages discarded. */
  remove(session: Session, reason?: DiscardReason): void;
  /** Sessions that last spoke from this IP address. */
  countAt(ip: string): number;
  /** Keeps the eviction order in step after a state or idleness change. */
  noteState(session: Session): void;
  /** The oldest disconnected or lost session that never did anything (at this IP, if given). */
  oldestIdleDetached(ip?: string): Session | undefined;
  all(): IterableIterator<Session>;
}

export interface ListenAddress {
  host: string;
  port: number;
}

export interface AdvertiseOptions {
  host: string;
  port: number;
  intervalSeconds: number;
}

export interface GatewayConfig extends GatewayOptions {
  listen: ListenAddress[];
  namespace: Namespace;
  predefined: PredefinedTopics;
  /** Periodic ADVERTISE (§6.1); off when undefined. */
  advertise?: AdvertiseOptions;
}

/** The settings a SIGHUP changes while running (see Gateway.reconfigure). */
export type LiveGatewaySettings = Pick<
  GatewayConfig,
  | 'predefined'
  | 'allowClients'
  | 'limits'
  | 'downlink'
  | 'sessionExpiryMs'
  | 'idleSessionExpiryMs'
  | 'allowQosMinusOne'
  | 'takeoverProbeMs'
>;

/**
 * The current settings, one object every part holds: a reload replaces `current`, so no part keeps a
 * stale copy (the downlink timings are changed in place: the delivery engine holds that object).
 */
export interface Settings {
  current: GatewayConfig;
}
