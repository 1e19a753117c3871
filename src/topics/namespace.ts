/**
 * The namespace template maps a device's topic names into the broker's hierarchy:
 * device `C` publishing `T` reaches the broker as template(C) + T, by default `mqttsn/C/T`.
 */

import { mqttStringProblem } from './mqtt-string.js';

export const DEFAULT_NAMESPACE = 'mqttsn/{clientId}/';

const PLACEHOLDER = /\{([a-zA-Z]+)\}/g;
const KNOWN = new Set(['clientId', 'gatewayId', 'site']);

export interface Namespace {
  /** The broker topic prefix for a client id (cached per client by the caller's session). */
  prefixFor(clientId: string): string;
  /** The fixed part before the first {clientId}: where gateway-wide topics (presence) live. */
  readonly root: string;
  readonly template: string;
}

/** Why a namespace template is unusable, or null. Empty means "no prefix" (transparent topics). */
export function namespaceProblem(template: string): string | null {
  const string = mqttStringProblem(template);
  if (string) return string;
  if (template.includes('+') || template.includes('#')) return 'must not contain + or #';
  if (template.startsWith('$')) return 'must not start with $';
  if (template !== '' && !template.endsWith('/')) return "must end with '/' (or be empty)";
  for (const match of template.matchAll(PLACEHOLDER)) {
    if (!KNOWN.has(match[1]!))
      return `unknown placeholder {${match[1]}} (known: {clientId}, {gatewayId}, {site})`;
  }
  return null;
}

/**
 * Why a site name (`--site`, the namespace's `{site}`) is unusable, or null. It becomes one level of
 * every broker topic the gateway publishes, so it must be a valid MQTT string and a single level that
 * neither names a wildcard nor hides the topics from `#` subscribers ($).
 */
export function siteProblem(site: string): string | null {
  if (site === '') return 'must not be empty';
  const string = mqttStringProblem(site);
  if (string) return string;
  if (/[/+#]/.test(site)) return "must be one topic level: no '/', '+' or '#'";
  if (site.startsWith('$')) return 'must not start with $';
  return null;
}

/** `site` is required when the template says {site}. */
export function compileNamespace(template: string, gatewayId: string, site?: string): Namespace {
  const problem = namespaceProblem(template);
  if (problem) throw new Error(`namespace template ${JSON.stringify(template)}: ${problem}`);
  if (template.includes('{site}')) {
    if (site === undefined)
      throw new Error(`namespace template ${JSON.stringify(template)} uses {site}: set --site NAME`);
    const siteIssue = siteProblem(site);
    if (siteIssue) throw new Error(`site ${JSON.stringify(site)}: ${siteIssue}`);
  }
  const withGateway = template.replaceAll('{gatewayId}', gatewayId).replaceAll('{site}', site ?? '');
  const parts = withGateway.split('{clientId}');
  const first = parts[0]!;
  return {
    template,
    root: first.slice(0, first.lastIndexOf('/') + 1),
    prefixFor: (clientId) => parts.join(clientId),
  };
}
