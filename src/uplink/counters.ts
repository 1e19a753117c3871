/** Uplink counters, shared by the Uplink and the drain of the current connection. */
export interface UplinkCounters {
  /** Connections established after the first one. */
  reconnects: number;
  /** Failed connection attempts (one per broker tried). */
  connectFailures: number;
  /** PUBLISHes sent, including re-sends. */
  published: number;
  /** PUBACKs received (each deletes one outbox entry). */
  acked: number;
  /** PUBLISHes of messages already sent once by this process: possible duplicates at the broker. */
  resent: number;
  /** Messages the broker refused for good (PUBACK reason code >= 0x80); logged and removed. */
  brokerRejected: number;
  /** Outbox entries whose topic or properties the broker would refuse (stored by an older version). */
  invalidDropped: number;
  /** Links torn down because a PUBACK took longer than the keep-alive. */
  ackTimeouts: number;
  /** MQTT 5 PUBACK refusals (reason code >= 0x80) by reason code ("0x87"), transient ones included. */
  refusals: Record<string, number>;
  /** Entries moved to the dead letters (refused, too large, or killing the link every time). */
  deadLettered: number;
  /** Broker subscriptions refused (SUBACK >= 0x80): the filter is dropped. */
  subscribeRefused: number;
  /** Times the broker gave our session to another connection with the same client id. */
  sessionTakeovers: number;
  /** Device messages refused at the edge: larger than the broker's Maximum Packet Size. */
  tooLarge: number;
  /** Brokers that turned down MQTT 5 and were used with 3.1.1 instead (once per broker). */
  protocolFallbacks: number;
  /** Connections made with a clean session because the persistent one was dropped at SUBSCRIBE every time. */
  cleanSessionFallbacks: number;
}

export function newCounters(): UplinkCounters {
  return {
    reconnects: 0,
    connectFailures: 0,
    published: 0,
    acked: 0,
    resent: 0,
    brokerRejected: 0,
    invalidDropped: 0,
    ackTimeouts: 0,
    refusals: {},
    deadLettered: 0,
    subscribeRefused: 0,
    sessionTakeovers: 0,
    tooLarge: 0,
    protocolFallbacks: 0,
    cleanSessionFallbacks: 0,
  };
}
