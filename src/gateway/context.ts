/** Kept for the imports of bridge.ts and test/support until they move to ./options.js. */
export type * from './options.js';
