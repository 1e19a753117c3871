/**
 * The namespace template maps a device's topic names into the broker's hierarchy:
 * device `C` publishing `T` reaches the broker as template(C) + T, by default `mqttsn/C/T`.
 */

import { mqttStringProblem } from './mqtt-string.js';

export const DEFAULT_NAMESPACE = 'mqttsn/{clientId}/';

const PLACEHOLDER = /\{([a-zA-Z]+)\}/g;
const KNOWN = new Set(['clientId', 'gatewayId']);

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
    if (!KNOWN.has(match[1]!)) return `unknown placeholder {${match[1]}} (known: {clientId}, {gatewayId})`;
  }
  return null;
}

export function compileNamespace(template: string, gatewayId: string): Namespace {
  const problem = namespaceProblem(template);
  if (problem) throw new Error(`namespace template ${JSON.stringify(template)}: ${problem}`);
  const withGateway = template.replaceAll('{gatewayId}', gatewayId);
  const parts = withGateway.split('{clientId}');
  const first = parts[0]!;
  return {
    template,
    root: first.slice(0, first.lastIndexOf('/') + 1),
    prefixFor: (clientId) => parts.join(clientId),
  };
}
