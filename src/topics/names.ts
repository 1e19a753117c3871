import { mqttStringProblem } from './mqtt-string.js';

/**
 * Rules for topic names and filters a device may use. A device can never reach outside its namespace,
 * so anything that MQTT treats specially is refused before mapping; and nothing the broker would
 * refuse (see mqtt-string.ts) gets past the edge.
 */

/** Why a device topic name (PUBLISH, REGISTER, will) is refused, or null when it is fine. */
export function topicNameProblem(name: string): string | null {
  if (name.length === 0) return 'empty topic name';
  if (name.charCodeAt(0) === 0x24 /* $ */) return 'topic name starts with $';
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c === 0x2b /* + */ || c === 0x23 /* # */) return 'wildcard in topic name';
    if (c === 0) return 'NUL in topic name';
  }
  return stringProblem('topic name', name) ?? emptyLevelProblem(name);
}

/** Why a device subscription filter is refused, or null. Wildcards must occupy whole levels. */
export function topicFilterProblem(filter: string): string | null {
  if (filter.length === 0) return 'empty topic filter';
  if (filter.charCodeAt(0) === 0x24 /* $ */) return 'topic filter starts with $';
  const levels = filter.split('/');
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i]!;
    if (level.includes('\u0000')) return 'NUL in topic filter';
    if (level === '#') {
      if (i !== levels.length - 1) return '# not last in topic filter';
    } else if (level !== '+' && (level.includes('+') || level.includes('#'))) {
      return 'wildcard inside a topic level';
    }
  }
  return stringProblem('topic filter', filter) ?? emptyLevelProblem(filter);
}

/**
 * Why a complete broker topic (namespace prefix + device name, a predefined topic, a will topic) is
 * refused, or null: checked where the broker topic is composed, so no path can hand the uplink a
 * topic the broker would drop the connection over.
 */
export function brokerTopicProblem(topic: string): string | null {
  if (topic.length === 0) return 'empty topic name';
  if (topic.includes('+') || topic.includes('#')) return 'wildcard in topic name';
  return stringProblem('topic name', topic);
}

/** Why a complete broker filter (prefix + device filter, a predefined topic) is refused, or null. */
export function brokerFilterProblem(filter: string): string | null {
  if (filter.length === 0) return 'empty topic filter';
  const levels = filter.split('/');
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i]!;
    if (level === '#' ? i !== levels.length - 1 : level !== '+' && /[+#]/.test(level)) {
      return 'misplaced wildcard in topic filter';
    }
  }
  return stringProblem('topic filter', filter);
}

function stringProblem(what: string, s: string): string | null {
  const problem = mqttStringProblem(s);
  return problem === null ? null : `${what} ${problem}`;
}

/** Empty levels ("/a", "a/", "a//b") are legal MQTT but confusing under a namespace: refuse them. */
function emptyLevelProblem(topic: string): string | null {
  if (topic.startsWith('/') || topic.endsWith('/') || topic.includes('//')) return 'empty topic level';
  return null;
}

/** Client ids become a topic level: refuse ids that could escape or confuse the namespace. */
export function clientIdProblem(clientId: string, maxLength: number): string | null {
  if (clientId.length === 0) return 'empty client id';
  if (Buffer.byteLength(clientId) > maxLength) return `client id longer than ${maxLength} bytes`;
  if (clientId.charCodeAt(0) === 0x24 /* $ */) return 'client id starts with $';
  for (let i = 0; i < clientId.length; i++) {
    const c = clientId.charCodeAt(i);
    if (c === 0x2f /* / */ || c === 0x2b /* + */ || c === 0x23 /* # */) return 'client id contains / + or #';
    if (c < 0x20) return 'control character in client id';
  }
  // It becomes a topic level and the mqttsn-client user property: the broker's string rules apply.
  return stringProblem('client id', clientId);
}

/** MQTT topic matching of a filter against a concrete topic name. */
export function topicMatches(filter: string, topic: string): boolean {
  if (filter === topic) return true;
  // Filters starting with a wildcard do not match $-topics (MQTT 3.1.1 §4.7.2).
  if (topic.charCodeAt(0) === 0x24 && (filter[0] === '+' || filter[0] === '#')) return false;
  let f = 0;
  let t = 0;
  while (f < filter.length) {
    const fEnd = indexOrEnd(filter, f);
    const level = filter.slice(f, fEnd);
    if (level === '#') return true;
    if (t > topic.length) return false;
    const tEnd = indexOrEnd(topic, t);
    if (level !== '+' && level !== topic.slice(t, tEnd)) return false;
    f = fEnd + 1;
    t = tEnd + 1;
  }
  return t > topic.length;
}

function indexOrEnd(s: string, from: number): number {
  const i = s.indexOf('/', from);
  return i === -1 ? s.length : i;
}
