import { z } from 'zod';
import { isGroup, settingsTable, type SettingEntry, type SettingGroup, type SettingRow } from './table.js';

export { parseHostPort } from './table.js';

/**
 * The config schema, derived from the settings table (table.ts): each row's schema at its key, each
 * group as a strict object — always present (its keys take their defaults) or optional.
 */

type Strict<R extends Record<string, SettingEntry>> = z.ZodObject<ShapeOf<R>, z.core.$strict>;
type ShapeOf<R extends Record<string, SettingEntry>> = { [K in keyof R]: SchemaOf<R[K]> };
type SchemaOf<E> =
  E extends SettingRow<infer S>
    ? S
    : E extends SettingGroup<infer R, infer P>
      ? P extends 'optional'
        ? z.ZodOptional<Strict<R>>
        : z.ZodPrefault<Strict<R>>
      : never;

function objectOf<R extends Record<string, SettingEntry>>(entries: R): Strict<R> {
  const shape: Record<string, z.ZodType> = {};
  for (const [key, entry] of Object.entries(entries)) {
    if (!isGroup(entry)) shape[key] = entry.schema;
    else if (entry.presence === 'optional') shape[key] = objectOf(entry.rows).optional();
    else shape[key] = objectOf(entry.rows).prefault({});
  }
  return z.strictObject(shape) as unknown as Strict<R>;
}

/** Rules across settings: each row checks only its own value. */
export const configSchema = objectOf(settingsTable).superRefine((config, ctx) => {
  if (config.namespace.includes('{site}') && config.site === undefined)
    ctx.addIssue({
      code: 'custom',
      path: ['site'],
      message: 'the namespace uses {site}: set --site NAME (e.g. --site plant-a)',
    });
});

export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;

/**
 * Every setting's default, as the configuration has it: components constructed directly (tests)
 * take their defaults from here instead of keeping constants of their own.
 */
export const configDefaults: Config = configSchema.parse({});
