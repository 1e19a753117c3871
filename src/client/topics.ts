import { shortTopicId } from '../codec/index.js';

/**
 * How a topic travels on the wire (§6.3):
 * - `normal`: a name. PUBLISH first REGISTERs it for a topic id; SUBSCRIBE carries the name itself
 *   (which may be a filter with + and #).
 * - `predefined`: an id both sides agreed on out of band.
 * - `short`: a name of exactly two bytes, carried in the topic id field; never registered.
 */
export type TopicRef =
  { type: 'normal'; name: string } | { type: 'predefined'; id: number } | { type: 'short'; name: string };

/** A name as a TopicRef: `short` when it fits in two bytes and has no wildcard, else `normal`. */
export function topicRefForName(name: string): TopicRef {
  return isShortTopicName(name) && !hasWildcard(name) ? { type: 'short', name } : { type: 'normal', name };
}

export function isShortTopicName(name: string): boolean {
  try {
    shortTopicId(name);
    return true;
  } catch {
    return false;
  }
}

export function hasWildcard(filter: string): boolean {
  return filter.includes('+') || filter.includes('#');
}

/** For messages: `"a/b"`, `short topic "ab"`, `predefined topic id 5`. */
export function describeTopicRef(topic: TopicRef): string {
  switch (topic.type) {
    case 'normal':
      return JSON.stringify(topic.name);
    case 'short':
      return `short topic ${JSON.stringify(topic.name)}`;
    case 'predefined':
      return `predefined topic id ${topic.id}`;
  }
}

/**
 * The client's half of the topic id mapping: ids the gateway assigned (REGACK), announced (REGISTER)
 * or returned for a subscription (SUBACK), per session.
 */
export class TopicTable {
  private readonly idsByName = new Map<string, number>();
  private readonly namesById = new Map<number, string>();

  learn(topicId: number, name: string): void {
    this.namesById.set(topicId, name);
    this.idsByName.set(name, topicId);
  }

  idOf(name: string): number | undefined {
    return this.idsByName.get(name);
  }

  nameOf(topicId: number): string | undefined {
    return this.namesById.get(topicId);
  }

  /** Drops a name whose id the gateway no longer knows (PUBACK "invalid topic id"). */
  forget(name: string): void {
    const topicId = this.idsByName.get(name);
    this.idsByName.delete(name);
    if (topicId !== undefined) this.namesById.delete(topicId);
  }

  clear(): void {
    this.idsByName.clear();
    this.namesById.clear();
  }
}
