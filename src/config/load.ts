import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import type { z } from 'zod';
import { parsePredefinedEntry } from './text-formats.js';
import { configSchema, type Config } from './schema.js';
import { envName, settings, type Setting } from './settings.js';

/** A configuration problem: the message names the key, the value and what was expected. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

export interface CommandLine {
  command: 'run' | 'check-config' | 'help' | 'version';
  configFile?: string;
  /** Settings given as flags, by config path. */
  flags: Map<string, unknown>;
}

const COMMANDS = new Set(['run', 'check-config', 'help']);

/** Parses argv (without node and script). Throws ConfigError for unknown or malformed flags. */
export function parseCommandLine(argv: readonly string[]): CommandLine {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }> = {
    config: { type: 'string', short: 'c' },
    help: { type: 'boolean', short: 'h' },
    version: { type: 'boolean', short: 'v' },
  };
  for (const s of settings) {
    if (s.kind === 'boolean') {
      options[s.flag] = { type: 'boolean' };
      options[`no-${s.flag}`] = { type: 'boolean' };
    } else {
      options[s.flag] = { type: 'string', multiple: s.kind === 'list' || s.kind === 'predefined' };
    }
  }
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new ConfigError(explainArgError(err, Object.keys(options)));
  }
  const { values, positionals } = parsed;
  let command: CommandLine['command'] = 'run';
  let configFile = values.config as string | undefined;
  if (positionals.length > 0) {
    const [first, ...rest] = positionals;
    if (!COMMANDS.has(first!))
      throw new ConfigError(
        `unknown command ${JSON.stringify(first)}${suggest(first!, [...COMMANDS])}; see --help`,
      );
    command = first as CommandLine['command'];
    if (command === 'check-config' && rest.length === 1 && configFile === undefined) configFile = rest[0];
    else if (rest.length > 0)
      throw new ConfigError(`unexpected argument ${JSON.stringify(rest[0])}; see --help`);
  }
  if (values.help) command = 'help';
  else if (values.version) command = 'version';

  const flags = new Map<string, unknown>();
  for (const s of settings) {
    const raw = values[s.flag];
    if (s.kind === 'boolean') {
      if (values[`no-${s.flag}`]) flags.set(s.path, false);
      else if (raw) flags.set(s.path, true);
    } else if (raw !== undefined) {
      flags.set(s.path, fromText(s, raw as string | string[], `--${s.flag}`));
    }
  }
  return { command, configFile, flags };
}

/** Settings from MQTTSN_BRIDGE_* variables, by config path. */
export function readEnvironment(env: NodeJS.ProcessEnv): Map<string, unknown> {
  const found = new Map<string, unknown>();
  for (const s of settings) {
    const raw = env[envName(s)];
    if (raw === undefined || raw === '') continue;
    const value =
      s.kind === 'list' || s.kind === 'predefined'
        ? raw
            .split(',')
            .map((v) => v.trim())
            .filter(Boolean)
        : raw;
    found.set(s.path, fromText(s, value, envName(s)));
  }
  return found;
}

export interface LoadOptions {
  argv?: readonly string[];
  env?: NodeJS.ProcessEnv;
  commandLine?: CommandLine;
}

/**
 * The effective configuration: defaults < config file < environment < flags. Throws ConfigError
 * naming the key, its source, the value and what was expected.
 */
export async function loadConfig(options: LoadOptions = {}): Promise<Config> {
  const commandLine = options.commandLine ?? parseCommandLine(options.argv ?? []);
  const sources = new Map<string, string>();
  let merged: Record<string, unknown> = {};
  if (commandLine.configFile) {
    merged = await readConfigFile(commandLine.configFile);
    for (const path of leafPaths(merged)) sources.set(path, commandLine.configFile);
  }
  for (const [path, value] of readEnvironment(options.env ?? {})) {
    setPath(merged, path, value);
    sources.set(path, envName(settings.find((s) => s.path === path)!));
  }
  for (const [path, value] of commandLine.flags) {
    setPath(merged, path, value);
    sources.set(path, `--${settings.find((s) => s.path === path)!.flag}`);
  }
  return validateConfig(merged, sources);
}

export function validateConfig(input: unknown, sources = new Map<string, string>()): Config {
  const result = configSchema.safeParse(input);
  if (result.success) {
    const config = result.data;
    if (config.broker.reconnectMaxMs < config.broker.reconnectInitialMs) {
      throw new ConfigError('broker.reconnectMaxMs must not be below broker.reconnectInitialMs');
    }
    return config;
  }
  throw new ConfigError(result.error.issues.map((issue) => describeIssue(issue, input, sources)).join('\n'));
}

async function readConfigFile(file: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError(
      `cannot read config file ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
    );
  }
  let data: unknown;
  try {
    // Loaded only with --config: a gateway configured by flags does not pay for a YAML parser.
    const { parse: parseYaml } = await import('yaml');
    data = parseYaml(text);
  } catch (err) {
    throw new ConfigError(`config file ${file} is not valid YAML: ${(err as Error).message}`);
  }
  if (data === null || data === undefined) return {};
  if (typeof data !== 'object' || Array.isArray(data))
    throw new ConfigError(`config file ${file}: expected a mapping of settings at the top level`);
  return data as Record<string, unknown>;
}

function fromText(setting: Setting, raw: string | string[], source: string): unknown {
  switch (setting.kind) {
    case 'number': {
      const text = String(raw);
      const n = Number(text);
      if (text.trim() === '' || !Number.isFinite(n))
        throw new ConfigError(`${source}: expected a number, got ${JSON.stringify(text)}`);
      return n;
    }
    case 'boolean': {
      const text = String(raw).toLowerCase();
      if (['1', 'true', 'yes', 'on'].includes(text)) return true;
      if (['0', 'false', 'no', 'off'].includes(text)) return false;
      throw new ConfigError(`${source}: expected true or false, got ${JSON.stringify(raw)}`);
    }
    case 'list':
      return Array.isArray(raw) ? raw : [raw];
    case 'predefined':
      return (Array.isArray(raw) ? raw : [raw]).map((entry) => {
        try {
          const { clientId, topicId, topic } = parsePredefinedEntry(entry);
          return clientId === undefined ? { id: topicId, topic } : { id: topicId, topic, clientId };
        } catch (err) {
          throw new ConfigError(`${source}: ${(err as Error).message}`);
        }
      });
    case 'string':
      return String(raw);
  }
}

function describeIssue(issue: z.core.$ZodIssue, input: unknown, sources: Map<string, string>): string {
  const path = issue.path.map(String).join('.');
  if (issue.code === 'unrecognized_keys') {
    const parentKeys = knownKeysAt(issue.path.map(String));
    return issue.keys
      .map((key) => {
        const full = path ? `${path}.${key}` : key;
        return `unknown setting ${full}${suggest(key, parentKeys)}`;
      })
      .join('\n');
  }
  const value = getPath(input, issue.path.map(String));
  const source = sources.get(path) ?? [...sources].find(([p]) => p.startsWith(`${path}.`))?.[1];
  const from = source ? ` (from ${source})` : '';
  const shown = value === undefined ? '' : ` = ${JSON.stringify(value)}`;
  return `${path || 'configuration'}${shown}${from}: ${issue.message}`;
}

function knownKeysAt(path: string[]): string[] {
  let schema: unknown = configSchema;
  for (const key of path) {
    schema = unwrap(schema);
    const shape = (schema as { shape?: Record<string, unknown> }).shape;
    schema = shape?.[key];
  }
  const shape = (unwrap(schema) as { shape?: Record<string, unknown> }).shape;
  return shape ? Object.keys(shape) : [];
}

/** Looks through .default() / .optional() wrappers to the object schema inside. */
function unwrap(schema: unknown): unknown {
  let current = schema as { def?: { innerType?: unknown } } | undefined;
  while (current?.def?.innerType) current = current.def.innerType as typeof current;
  return current;
}

function explainArgError(err: unknown, known: string[]): string {
  const message = err instanceof Error ? err.message : String(err);
  const unknown = /Unknown option '(-{1,2}[^']+)'/.exec(message);
  if (unknown) {
    const name = unknown[1]!.replace(/^-+/, '');
    return `unknown option ${unknown[1]}${suggest(name, known, '--')}; see --help`;
  }
  return message.split('. ')[0]!;
}

/** ", did you mean X?" for the nearest candidate within a small edit distance. */
export function suggest(word: string, candidates: readonly string[], prefix = ''): string {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const d = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      bestDistance = d;
      best = candidate;
    }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(word.length / 3))
    ? `; did you mean ${prefix}${best}?`
    : '';
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length]!;
}

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  let node = target;
  for (const key of keys.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[keys[keys.length - 1]!] = value;
}

function getPath(source: unknown, path: string[]): unknown {
  let node = source;
  for (const key of path) {
    if (typeof node !== 'object' || node === null) return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return node;
}

function leafPaths(value: unknown, prefix = ''): string[] {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return prefix ? [prefix] : [];
  return Object.entries(value).flatMap(([key, child]) => leafPaths(child, prefix ? `${prefix}.${key}` : key));
}
