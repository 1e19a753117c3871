import { isGroup, settingsTable, type SettingEntry, type SettingRow } from './table.js';

export type { SettingKind, SettingSection } from './table.js';

/**
 * The settings table (table.ts) as a flat list, one entry per setting in the table's order, for the
 * flags, the environment variables, --help and the README. `path` is the key in the config file
 * (dots for nesting).
 */
export interface Setting extends Omit<SettingRow, 'schema'> {
  path: string;
}

export const ENV_PREFIX = 'MQTTSN_BRIDGE_';

function flatten(entries: Record<string, SettingEntry>, prefix: string): Setting[] {
  return Object.entries(entries).flatMap(([key, entry]) => {
    const path = prefix + key;
    if (isGroup(entry)) return flatten(entry.rows, `${path}.`);
    const { schema: _schema, ...rest } = entry;
    return [{ ...rest, path }];
  });
}

export const settings: readonly Setting[] = flatten(settingsTable, '');

/** MQTTSN_BRIDGE_ + the flag name in upper snake case, e.g. MQTTSN_BRIDGE_OUTBOX_MAX_MESSAGES. */
export function envName(setting: Pick<Setting, 'flag'>): string {
  return ENV_PREFIX + setting.flag.toUpperCase().replaceAll('-', '_');
}
