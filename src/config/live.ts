import type { Config } from './schema.js';

/** Top-level settings a SIGHUP applies without a restart. */
export const LIVE_SETTINGS: ReadonlySet<keyof Config> = new Set<keyof Config>([
  'predefined',
  'allowClients',
  'limits',
  'downlink',
  'logLevel',
  'deviceSessionExpirySeconds',
  'idleSessionExpirySeconds',
  'allowQosMinusOne',
  'takeoverProbeMs',
]);

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
