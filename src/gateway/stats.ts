/** Why a session's queued downlink messages were thrown away with it. */
/** forgotten: deleted through the admin API (DELETE /admin/sessions/:id). */
export type DiscardReason = 'clean_session' | 'expired' | 'evicted' | 'lost' | 'forgotten';

/**
 * Counters an operator can graph (observe/ exports them as Prometheus metrics). Plain number fields:
 * incrementing one on the hot path costs nothing.
 */
export class GatewayStats {
  datagramsIn = 0;
  datagramsOut = 0;
  sendErrors = 0;
  malformed = 0;
  /** Well-formed packets the gateway does not accept from that sender or in that state. */
  unexpected = 0;
  oversized = 0;
  /** Packets whose handler threw (a bug): logged and dropped, never a crash. */
  handlerErrors = 0;
  /** Device PUBLISH received, indexed by device QoS + 1 (−1, 0, 1, 2). */
  readonly publishIn = [0, 0, 0, 0];
  /** Retransmissions of messages already stored, acknowledged again without storing. */
  duplicates = 0;
  rejectedCongestion = 0;
  rejectedInvalidTopic = 0;
  rejectedNotSupported = 0;
  /** QoS 0/−1 messages dropped because the uplink was down and QoS 0 buffering is off. */
  droppedWhileDown = 0;
  /** QoS 0/−1 messages dropped because the outbox was full. */
  droppedFull = 0;
  willsPublished = 0;
  /** Broker messages delivered to devices and acknowledged (QoS 1/2) or sent (QoS 0). */
  downlinkDelivered = 0;
  /** Downlink messages dropped: queue full, refused by the device, or QoS 0 for an absent device. */
  downlinkDropped = 0;
  /** Broker messages that cannot be sent to a device (too large, topic too long): acknowledged, dropped. */
  downlinkUnrepresentable = 0;
  /** Exceptions caught at a data-path boundary (datagram, broker message, commit, timer), by boundary. */
  readonly errorsByBoundary = new Map<string, number>();
  /** Persisted sessions, subscriptions, wills and queued messages dropped at restore as invalid. */
  restoreDropped = 0;
  /** Broker messages whose storage for the devices failed: not acknowledged, the broker sends them again. */
  downlinkStoreFailures = 0;
  /** Queued downlink messages thrown away with their session, by why. */
  readonly downlinkDiscarded: Record<DiscardReason, number> = {
    clean_session: 0,
    expired: 0,
    evicted: 0,
    lost: 0,
    forgotten: 0,
  };
  /** SUBSCRIBEs refused with "congestion": the device's own bound, or the gateway's broker filters. */
  readonly subscriptionsRefused = { client: 0, gateway: 0 };
  /** CONNECTs refused with "congestion": the per-address bound or --max-clients, nothing to evict. */
  readonly connectsRefused = { address: 0, clients: 0 };
  /** Idle disconnected sessions removed to make room for a new client. */
  sessionsEvicted = 0;
  /** CONNECT / PINGREQ for a session alive at another address (it answered the probe): refused. */
  takeoversRefused = 0;
  /** Takeovers refused because --max-takeover-probes probes were already waiting. */
  takeoverProbesFull = 0;
  /** CONNECTs and wake-ups the allow-list refused (id, or id from that address). */
  notAllowed = 0;
  /** QoS −1 PUBLISHes dropped: an allow-list is set and the sender's address has no rule. */
  qosMinusOneNotAllowed = 0;
  /** Bytes queued for all devices now (against --downlink-max-bytes). */
  downlinkQueuedBytes = 0;
  /** Downlink messages dropped for room, by bound (also counted in downlinkDropped). */
  readonly downlinkDroppedFor = { queue_full: 0, client_bytes: 0, total_bytes: 0 };
  /** Gateway-initiated messages resent after T_retry. */
  downlinkRetransmissions = 0;
  connects = 0;
  sessionsLost = 0;
  /** Persistent sessions forgotten after --device-session-expiry without the device. */
  sessionsExpired = 0;
  /**
   * Told each PUBLISH-to-PUBACK latency (ms). The metrics' histogram sets it when /metrics is served;
   * without it a latency costs nothing.
   */
  pubackLatencyObserver: ((ms: number) => void) | undefined = undefined;

  recordPubackLatency(ms: number): void {
    this.pubackLatencyObserver?.(ms);
  }
}
