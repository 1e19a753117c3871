import type { TopicIdTypeName } from '../codec/constants.js';

/** A device's subscription, kept in its session (and persisted with CleanSession=0). */
export interface Subscription {
  /** The broker topic filter it maps to (namespace applied, or a predefined topic). */
  filter: string;
  qos: 0 | 1 | 2;
  /** How the device named it: a name/filter ('normal'), a predefined id or a short name. */
  topicIdType: TopicIdTypeName;
  /** The predefined id or short-name id the device used; deliveries reuse it. */
  topicId?: number;
  /**
   * Retained topics this subscription has already received. The broker re-sends retained messages
   * whenever the filter is subscribed again (for another device); each subscription takes each
   * retained topic once. null: none at all (a subscription restored after a restart had them).
   */
  retainedSeen: Set<string> | null;
}
