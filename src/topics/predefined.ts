/**
 * Predefined topic ids (TopicIdType 01) agreed out of band. They map to absolute broker topics,
 * globally or for one client; a client's own table wins over the global one.
 */
export interface PredefinedTopics {
  readonly global: ReadonlyMap<number, string>;
  readonly perClient: ReadonlyMap<string, ReadonlyMap<number, string>>;
}

export function lookupPredefined(
  predefined: PredefinedTopics,
  clientId: string | undefined,
  topicId: number,
): string | undefined {
  if (clientId !== undefined) {
    const own = predefined.perClient.get(clientId)?.get(topicId);
    if (own !== undefined) return own;
  }
  return predefined.global.get(topicId);
}

export function buildPredefined(
  entries: ReadonlyArray<{ clientId?: string; topicId: number; topic: string }>,
): PredefinedTopics {
  const global = new Map<number, string>();
  const perClient = new Map<string, Map<number, string>>();
  for (const { clientId, topicId, topic } of entries) {
    if (clientId === undefined) {
      global.set(topicId, topic);
    } else {
      let own = perClient.get(clientId);
      if (!own) perClient.set(clientId, (own = new Map()));
      own.set(topicId, topic);
    }
  }
  return { global, perClient };
}
