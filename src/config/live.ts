import type { Config } from './schema.js';
import { settings } from './settings.js';

/**
 * Top-level settings a SIGHUP applies without a restart: those whose every row in the settings
 * table is marked live (a section is replaced whole, so one restart-only key keeps it all back).
 */
export const LIVE_SETTINGS: ReadonlySet<keyof Config> = new Set(
  [...new Set(settings.map((s) => s.path.split('.')[0] as keyof Config))].filter((key) =>
    settings.filter((s) => s.path.split('.')[0] === key).every((s) => s.live),
  ),
);

/**
 * What a reload changes: the top-level settings that differ, split into those applied now and those
 * that wait for a restart, and the configuration to run with (the current one plus the live changes).
 */
export function liveSettingChanges(
  current: Config,
  next: Config,
): { applied: string[]; needsRestart: string[]; config: Config } {
  const applied: string[] = [];
  const needsRestart: string[] = [];
  for (const key of Object.keys(next) as Array<keyof Config>) {
    if (JSON.stringify(next[key]) === JSON.stringify(current[key])) continue;
    (LIVE_SETTINGS.has(key) ? applied : needsRestart).push(key);
  }
  const config = { ...current, ...Object.fromEntries([...LIVE_SETTINGS].map((key) => [key, next[key]])) };
  return { applied, needsRestart, config };
}
