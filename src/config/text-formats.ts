/**
 * The text formats of settings that name topics: checked here, in the config layer, so that
 * `check-config` and start-up name the key and what was expected. The topic layer (topics/) applies
 * its own full rules again when it compiles them; config/ does not import it (layer rule).
 */

/** Where device topics go on the broker, unless configured. */
export const DEFAULT_NAMESPACE = 'mqttsn/{clientId}/';

const PLACEHOLDER = /\{([a-zA-Z]+)\}/g;
const KNOWN_PLACEHOLDERS = new Set(['clientId', 'gatewayId', 'site']);
// C0 and C1 controls and DEL: MQTT brokers refuse them in topics (see topics/mqtt-string.ts).
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** Why a namespace template is unusable, or null. Empty means "no prefix" (transparent topics). */
export function namespaceTemplateProblem(template: string): string | null {
  // A lone surrogate does not survive the round trip through UTF-8.
  if (Buffer.from(template, 'utf8').toString('utf8') !== template || CONTROL.test(template))
    return 'not a valid MQTT string';
  if (template.includes('+') || template.includes('#')) return 'must not contain + or #';
  if (template.startsWith('$')) return 'must not start with $';
  if (template !== '' && !template.endsWith('/')) return "must end with '/' (or be empty)";
  for (const match of template.matchAll(PLACEHOLDER)) {
    if (!KNOWN_PLACEHOLDERS.has(match[1]!))
      return `unknown placeholder {${match[1]}} (known: {clientId}, {gatewayId}, {site})`;
  }
  return null;
}

/** Why a site name (--site, the namespace's {site}) is unusable, or null: it becomes one topic level. */
export function siteNameProblem(site: string): string | null {
  if (site === '') return 'must not be empty';
  if (Buffer.from(site, 'utf8').toString('utf8') !== site || CONTROL.test(site))
    return 'not a valid MQTT string';
  if (/[/+#]/.test(site)) return "must be one topic level: no '/', '+' or '#'";
  if (site.startsWith('$')) return 'must not start with $';
  return null;
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
