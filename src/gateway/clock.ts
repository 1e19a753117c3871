/** The clock lives in the leaf module src/time.ts; this path stays for the gateway's imports. */
export { ManualClock, systemClock, type Clock } from '../time.js';
