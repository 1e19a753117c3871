import type { Logger } from 'pino';
import type { DownlinkMessage, QueuedDownlink } from '../store/ports.js';
import { TopicTable } from '../topics/table.js';
import type { Peer } from './peer.js';
import { ResolvedTopics } from './resolved-topics.js';
import type { Subscription } from './subscription.js';
import type { WheelEntry } from './wheel.js';

/** A gateway-initiated exchange waiting for the device's answer. */
export interface InFlight {
  message: DownlinkMessage;
  phase: 'register' | 'publish' | 'pubrel';
  msgId: number;
  /** The id the device is addressed with (registered, predefined or short). */
  topicId: number;
  attempts: number;
}

/**
 * The gateway's view of a client (§6.14): connecting (will flow under way), active, asleep, awake,
 * disconnected (clean DISCONNECT, session kept for CleanSession=0), lost (keep-alive or sleep expired).
 */
export type SessionState = 'connecting' | 'active' | 'asleep' | 'awake' | 'disconnected' | 'lost';

export interface Will {
  /** Broker topic, already mapped through the namespace. */
  topic: string;
  payload: Uint8Array;
  qos: 0 | 1 | 2;
  retain: boolean;
}

export class Session {
  state: SessionState = 'connecting';
  peer: Peer;
  log: Logger;
  cleanSession = true;
  /** Keep-alive from CONNECT (0: no supervision while active). */
  keepAliveMs = 0;
  /** Sleep duration from DISCONNECT(duration), supervising the asleep state. */
  sleepMs = 0;
  will: Will | undefined;
  /** Will topic received during the CONNECT will flow, waiting for its WILLMSG. */
  pendingWillTopic: Omit<Will, 'payload'> | undefined;
  /** Wants a will but the flow has not finished: CONNACK is owed after WILLMSG. */
  willFlow: 'none' | 'topic' | 'message' = 'none';
  readonly topics: TopicTable;
  /** The broker topics its PUBLISHes resolved to, so each is built and checked once. */
  readonly resolvedTopics = new ResolvedTopics();
  /** Broker topic prefix for this client (namespace template rendered once). */
  readonly prefix: string;
  /**
   * QoS 2 message ids stored (true) or being stored (false) and awaiting PUBREL: a repeated PUBLISH
   * is acknowledged again, never stored twice.
   */
  readonly qos2Received = new Map<number, boolean>();
  /** The last QoS 1 PUBLISH stored (or being stored): a DUP retransmission of it is acked again. */
  lastQos1: { msgId: number; topicId: number; committed: boolean } | undefined;
  /** Liveness supervision: keep-alive while active, sleep duration while asleep. */
  readonly supervision: WheelEntry;
  /**
   * The client has done nothing but CONNECT (no PUBLISH, SUBSCRIBE or REGISTER): such a session, once
   * disconnected, expires after the short idle expiry and is the first to make room for a new one.
   */
  idle = true;
  /** A snapshot of this session is in the session store. */
  persisted = false;
  lastSeenWall = 0;
  messagesIn = 0;
  messagesOut = 0;

  /** Subscriptions by broker filter. */
  readonly subscriptions = new Map<string, Subscription>();
  /**
   * Downlink messages waiting for delivery, oldest first; the head may be in flight. While the device
   * cannot receive, entries are references whose payload stays on disk until delivery.
   */
  outgoing: QueuedDownlink[] = [];
  /** Bytes of `outgoing` (stored record sizes), against the per-device byte cap. */
  queuedBytes = 0;
  /** The head's payload is being read from disk. */
  loadingHead = false;
  /** Messages dropped since this device's queue last had room (one warning per episode). */
  dropEpisode = 0;
  /** The gateway-initiated exchange under way (one at a time, §6.6): REGISTER, PUBLISH or PUBREL. */
  inflight: InFlight | undefined;
  /** Topic ids the device has confirmed in this connection; others are REGISTERed before use. */
  readonly knownTopicIds = new Set<number>();
  /** Retransmission of the exchange in flight (T_retry). */
  readonly retry: WheelEntry;
  private lastMsgId = 0;

  constructor(
    readonly clientId: string,
    peer: Peer,
    prefix: string,
    maxTopics: number,
    log: Logger,
    onSupervisionExpired: (session: Session, now: number) => void,
    onRetryDue: (session: Session, now: number) => void,
  ) {
    this.peer = peer;
    this.prefix = prefix;
    this.log = log;
    this.topics = new TopicTable(maxTopics);
    this.supervision = {
      deadline: Infinity,
      slot: -1,
      expire: (now) => onSupervisionExpired(this, now),
    };
    this.retry = { deadline: Infinity, slot: -1, expire: (now) => onRetryDue(this, now) };
  }

  /** Message ids for gateway-initiated messages: 1..65535, never 0. */
  nextMsgId(): number {
    this.lastMsgId = this.lastMsgId >= 0xffff ? 1 : this.lastMsgId + 1;
    return this.lastMsgId;
  }

  /** Deadline after a keep-alive or sleep duration, with the 1.5× grace MQTT and MQTT-SN 2.0 use. */
  static graceMs(durationMs: number): number {
    return durationMs * 1.5;
  }

  get isConnected(): boolean {
    return this.state === 'active' || this.state === 'awake';
  }

  /** Resets what CleanSession=1 clears: topic ids, will, in-progress QoS 2 exchanges. */
  clear(): void {
    this.topics.clear();
    this.will = undefined;
    this.pendingWillTopic = undefined;
    this.qos2Received.clear();
    this.lastQos1 = undefined;
  }
}
