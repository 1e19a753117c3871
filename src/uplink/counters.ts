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
  };
}
