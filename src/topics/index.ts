export * from './names.js';
export * from './namespace.js';
export * from './predefined.js';
export * from './table.js';
export * from './filter-trie.js';
export * from './mqtt-string.js';
