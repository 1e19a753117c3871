import type { Logger } from 'pino';
import type { Packet } from '../codec/types.js';
import type { Clock } from './clock.js';
import { describePeer, type Peer } from './peer.js';

/** Which way a datagram went, seen from the gateway. */
export type Direction = 'in' | 'out';

/**
 * What the gateway's transport calls for every datagram it decoded or encoded. `active` is read
 * first so an untraced gateway pays one property read per datagram and nothing else.
 */
export interface PacketTap {
  readonly active: boolean;
  /** `packet` is undefined for a datagram that did not decode (traced by its sender's session). */
  packet(
    direction: Direction,
    peer: Peer,
    bytes: Uint8Array,
    packet: Packet | undefined,
    clientId?: string,
  ): void;
}

/** One traced datagram, JSON-safe: what GET /admin/traces/:id returns. */
export interface TracedPacket {
  /** Wall-clock ms. */
  time: number;
  direction: Direction;
  address: string;
  /** The packet type, or UNDECODABLE for bytes the codec refused. */
  type: Packet['type'] | 'UNDECODABLE';
  /** Datagram length in bytes (the hex may be cut, see MAX_HEX_BYTES). */
  length: number;
  hex: string;
  /** The codec's packet object; byte fields as hex strings. */
  packet: Record<string, unknown>;
}

export interface TraceLimits {
  /** Devices traced at once; turning on one more is refused. */
  maxClients: number;
  /** Datagrams kept per traced device (a ring: the oldest go). */
  ringSize: number;
  /** Log lines per traced device per second; more are counted and summarised. */
  logLinesPerSecond: number;
}

/** Worst case held: 32 devices × 100 datagrams × ~2 KB of hex ≈ 7 MB, within the Pi's RSS budget. */
export const DEFAULT_TRACE_LIMITS: TraceLimits = { maxClients: 32, ringSize: 100, logLinesPerSecond: 20 };

/** Bytes shown as hex per datagram (and per byte field): a 64 KB downlink PUBLISH would drown a log line. */
export const MAX_HEX_BYTES = 512;

export type TraceOutcome = 'on' | 'already' | 'full';

/** What one traced device holds: a bounded ring of datagrams and its log budget for this second. */
interface Traced {
  /** Turned on by the configuration (--trace-client), not only by the admin API. */
  configured: boolean;
  ring: TracedPacket[];
  next: number;
  windowStart: number;
  logged: number;
  suppressed: number;
}

/**
 * The per-device packet trace (--trace-client, PUT /admin/traces/:id): every datagram to and from a
 * traced client is logged at info, decoded and in hex, and kept in a small ring for the admin API.
 * Bounded three ways: devices traced, datagrams kept per device, log lines per device per second.
 */
export class PacketTrace implements PacketTap {
  private readonly traced = new Map<string, Traced>();
  private readonly limits: TraceLimits;
  /** Trace log lines not written because a device went over its per-second budget. */
  suppressedLines = 0;

  constructor(
    private readonly log: Logger,
    private readonly clock: Clock,
    limits: Partial<TraceLimits> = {},
  ) {
    this.limits = { ...DEFAULT_TRACE_LIMITS, ...limits };
  }

  get active(): boolean {
    return this.traced.size > 0;
  }

  get maxClients(): number {
    return this.limits.maxClients;
  }

  /** Starts tracing `clientId` (also before it connects: a field engineer waits for its CONNECT). */
  on(clientId: string, configured = false): TraceOutcome {
    const existing = this.traced.get(clientId);
    if (existing) {
      existing.configured ||= configured;
      return 'already';
    }
    if (this.traced.size >= this.limits.maxClients) return 'full';
    this.traced.set(clientId, { configured, ring: [], next: 0, windowStart: 0, logged: 0, suppressed: 0 });
    return 'on';
  }

  /** Stops tracing `clientId` and drops its ring; false when it was not traced. */
  off(clientId: string): boolean {
    return this.traced.delete(clientId);
  }

  /**
   * The configured set (start-up and SIGHUP): ids no longer configured stop, unless they were also
   * turned on through the API since; new ones start. Returns the ids refused for lack of room.
   */
  configure(clientIds: readonly string[]): string[] {
    const wanted = new Set(clientIds);
    for (const [clientId, traced] of this.traced)
      if (traced.configured && !wanted.has(clientId)) this.traced.delete(clientId);
    return [...wanted].filter((clientId) => this.on(clientId, true) === 'full');
  }

  isTraced(clientId: string): boolean {
    return this.traced.has(clientId);
  }

  list(): Array<{ clientId: string; configured: boolean; packets: number }> {
    return [...this.traced].map(([clientId, { configured, ring }]) => ({
      clientId,
      configured,
      packets: ring.length,
    }));
  }

  /** The traced device's kept datagrams, oldest first; undefined when it is not traced. */
  recent(clientId: string): TracedPacket[] | undefined {
    const traced = this.traced.get(clientId);
    if (!traced) return undefined;
    const { ring, next } = traced;
    return ring.length < this.limits.ringSize ? [...ring] : [...ring.slice(next), ...ring.slice(0, next)];
  }

  packet(
    direction: Direction,
    peer: Peer,
    bytes: Uint8Array,
    packet: Packet | undefined,
    clientId?: string,
  ): void {
    // A CONNECT names its client before any session exists: trace the device from its first datagram.
    const id = clientId ?? (packet?.type === 'CONNECT' ? packet.clientId : undefined);
    if (id === undefined) return;
    const traced = this.traced.get(id);
    if (!traced) return;
    const entry: TracedPacket = {
      time: this.clock.wallNow(),
      direction,
      address: describePeer(peer),
      type: packet?.type ?? 'UNDECODABLE',
      length: bytes.length,
      hex: hex(bytes),
      packet: packet ? jsonSafe(packet) : {},
    };
    if (traced.ring.length < this.limits.ringSize) traced.ring.push(entry);
    else traced.ring[traced.next] = entry;
    traced.next = (traced.next + 1) % this.limits.ringSize;
    this.logEntry(id, traced, entry);
  }

  private logEntry(clientId: string, traced: Traced, entry: TracedPacket): void {
    const now = this.clock.now();
    if (now - traced.windowStart >= 1000) {
      if (traced.suppressed > 0)
        this.log.info(
          { clientId, address: entry.address, suppressed: traced.suppressed },
          `trace: ${traced.suppressed} packets not logged in the previous second (rate limit; GET /admin/traces has the latest)`,
        );
      traced.windowStart = now;
      traced.logged = 0;
      traced.suppressed = 0;
    }
    if (traced.logged >= this.limits.logLinesPerSecond) {
      traced.suppressed++;
      this.suppressedLines++;
      return;
    }
    traced.logged++;
    const { address, direction, type, length, hex: bytes, packet } = entry;
    this.log.info(
      { clientId, address, direction, type, length, hex: bytes, packet },
      `trace: ${direction === 'in' ? 'from' : 'to'} device ${type}`,
    );
  }
}

function hex(bytes: Uint8Array): string {
  const shown = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.length, MAX_HEX_BYTES));
  // ASCII only ('...', not '…'): V8 keeps one-byte strings at half the size of two-byte ones.
  return shown.toString('hex') + (bytes.length > MAX_HEX_BYTES ? '...' : '');
}

/** The codec's packet with byte fields (payloads, node ids) as hex, nested packets included. */
export function jsonSafe(packet: object): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(packet)) {
    if (value instanceof Uint8Array) out[key] = hex(value);
    else if (value !== null && typeof value === 'object') out[key] = jsonSafe(value as object);
    else out[key] = value;
  }
  return out;
}
