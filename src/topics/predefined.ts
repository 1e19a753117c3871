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

/** Parses `ID=TOPIC` or `CLIENT:ID=TOPIC` (the --predefined flag). Throws with what was expected. */
export function parsePredefinedEntry(entry: string): { clientId?: string; topicId: number; topic: string } {
  const eq = entry.indexOf('=');
  if (eq <= 0 || eq === entry.length - 1) {
    throw new Error(`expected ID=TOPIC or CLIENT:ID=TOPIC, got ${JSON.stringify(entry)}`);
  }
  const left = entry.slice(0, eq);
  const topic = entry.slice(eq + 1);
  const colon = left.lastIndexOf(':');
  const clientId = colon === -1 ? undefined : left.slice(0, colon);
  const idText = colon === -1 ? left : left.slice(colon + 1);
  const topicId = Number(idText);
  if (!/^\d+$/.test(idText) || topicId < 1 || topicId > 0xfffe) {
    throw new Error(`topic id must be an integer 1..65534, got ${JSON.stringify(idText)}`);
  }
  if (clientId === '') throw new Error(`empty client id in ${JSON.stringify(entry)}`);
  return clientId === undefined ? { topicId, topic } : { clientId, topicId, topic };
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
