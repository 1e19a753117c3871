import { ReturnCode, type ReturnCodeValue, type TopicIdTypeName } from '../codec/constants.js';
import { shortTopicName } from '../codec/index.js';
import {
  brokerFilterProblem,
  brokerTopicProblem,
  topicFilterProblem,
  topicNameProblem,
} from '../topics/names.js';
import { lookupPredefined, type PredefinedTopics } from '../topics/predefined.js';

/**
 * The one place a device's way of naming a topic becomes a broker topic or filter (§3, §6.5, §6.9):
 * a name (registered or given) under the device's namespace prefix, a predefined id mapped to its
 * absolute topic, or a two-character short name under the prefix. What comes out is always something
 * the broker accepts: a refused topic would drop the uplink on every replay, a refused filter on
 * every re-subscribe.
 */
export interface TopicRef {
  topicIdType: TopicIdTypeName;
  /** The name of a normal topic (SUBSCRIBE, the registered name of a PUBLISH's topic id). */
  name?: string;
  /** The name was checked when it was registered: not again per message. */
  registered?: boolean;
  topicId: number;
}

/**
 * A broker topic or filter, or why the device's reference cannot be one, with the return code that
 * refuses it: "invalid topic id" for a PUBLISH (§6.3: the client registers again), "not supported"
 * for a SUBSCRIBE, except an unknown predefined id.
 */
export type Resolved = { topic: string } | { problem: string; returnCode: ReturnCodeValue };

export function resolveTopic(
  use: 'topic' | 'filter',
  ref: TopicRef,
  client: { clientId: string; prefix: string },
  predefined: PredefinedTopics,
): Resolved {
  let topic: string;
  switch (ref.topicIdType) {
    case 'predefined': {
      const mapped = lookupPredefined(predefined, client.clientId, ref.topicId);
      if (mapped === undefined)
        return { problem: 'unknown predefined id', returnCode: ReturnCode.INVALID_TOPIC_ID };
      topic = mapped;
      break;
    }
    case 'normal':
    case 'short': {
      const name = ref.topicIdType === 'normal' ? ref.name : shortName(ref.topicId);
      if (name === undefined)
        return refused(
          use,
          ref.topicIdType === 'normal' ? 'unknown topic id' : 'short topic name is not UTF-8',
        );
      const problem = ref.registered
        ? null
        : use === 'topic'
          ? topicNameProblem(name)
          : topicFilterProblem(name);
      if (problem) return refused(use, problem);
      topic = client.prefix + name;
      break;
    }
  }
  const problem = use === 'topic' ? brokerTopicProblem(topic) : brokerFilterProblem(topic);
  return problem ? refused(use, problem) : { topic };
}

/** Why a name a device gives (REGISTER, a will topic) cannot be a topic under its prefix, or null. */
export function deviceTopicProblem(prefix: string, name: string): string | null {
  return topicNameProblem(name) ?? brokerTopicProblem(prefix + name);
}

function refused(use: 'topic' | 'filter', problem: string): Resolved {
  return { problem, returnCode: use === 'topic' ? ReturnCode.INVALID_TOPIC_ID : ReturnCode.NOT_SUPPORTED };
}

/** The two characters of a short topic id, or undefined when they are not UTF-8. */
function shortName(topicId: number): string | undefined {
  try {
    return shortTopicName(topicId);
  } catch {
    return undefined;
  }
}
