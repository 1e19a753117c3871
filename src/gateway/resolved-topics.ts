import type { TopicIdTypeName } from '../codec/constants.js';
import type { PredefinedTopics } from '../topics/predefined.js';

/** What a topic id resolved to, and what that answer depended on. */
interface Resolution {
  topic: string;
  /** The registered name it was built from (normal ids): a re-registration or a clear changes it. */
  name: string | undefined;
  /** The predefined table it was looked up in (predefined ids): a reload replaces the table. */
  table: PredefinedTopics | undefined;
}

/** More distinct topic ids than this in one session: start over (a device cycling through ids). */
const MAX_ENTRIES = 32;

const TYPE_CODE: Record<TopicIdTypeName, number> = { normal: 0, predefined: 1, short: 2 };

/**
 * The broker topics one session's PUBLISHes resolved to, by topic id type and id. Building the topic
 * (prefix + name) and checking it for the broker once per message was ~1 % of the gateway's CPU at
 * 200 devices; a device publishes on a handful of topics, so each is resolved once. An entry is used
 * only while what it was built from is unchanged: the registered name for a normal id, the
 * predefined table for a predefined one, nothing for a short name (the session's prefix is fixed).
 * Refusals are not kept: they take the full path, with its reasons, every time.
 */
export class ResolvedTopics {
  /** Made on the first PUBLISH: sessions that only connect (or sleep) carry no map. */
  private entries: Map<number, Resolution> | undefined;

  get(
    type: TopicIdTypeName,
    topicId: number,
    name: string | undefined,
    table: PredefinedTopics,
  ): string | undefined {
    const entry = this.entries?.get(TYPE_CODE[type] * 0x10000 + topicId);
    if (entry === undefined) return undefined;
    if (type === 'normal' ? entry.name !== name : type === 'predefined' && entry.table !== table)
      return undefined;
    return entry.topic;
  }

  set(
    type: TopicIdTypeName,
    topicId: number,
    name: string | undefined,
    table: PredefinedTopics,
    topic: string,
  ): void {
    this.entries ??= new Map();
    if (this.entries.size >= MAX_ENTRIES) this.entries.clear();
    this.entries.set(TYPE_CODE[type] * 0x10000 + topicId, {
      topic,
      name: type === 'normal' ? name : undefined,
      table: type === 'predefined' ? table : undefined,
    });
  }
}
