import { systemClock } from '../time.js';
/**
 * The last warnings and errors from the logs, kept in memory for the status page, so an operator with
 * a phone sees what went wrong without shell access to the journal.
 *
 * It is a pino destination: createLogger tees every warn+ line into write(). Only those lines are
 * parsed, so the cost is nil in normal operation.
 */

export type RecentLevel = 'warn' | 'error' | 'fatal';

export interface RecentEntry {
  /** Wall-clock ms. */
  time: number;
  level: RecentLevel;
  msg: string;
  /** The device concerned, when the line came from a session's logger (attacker-controlled text). */
  clientId?: string;
  address?: string;
  /** Which part of the bridge logged it (gateway, outbox, uplink). */
  component?: string;
  /** The message of the attached error, if any. */
  error?: string;
}

/** pino's numeric levels. */
const LEVEL_NAMES: Record<number, RecentLevel> = { 40: 'warn', 50: 'error', 60: 'fatal' };

/** Bounds what one entry can hold: client ids and messages can be long, and this lives in memory. */
const MAX_TEXT = 300;

export class RecentWarnings {
  private readonly ring: RecentEntry[] = [];
  private next = 0;

  constructor(readonly capacity = 50) {}

  add(entry: RecentEntry): void {
    if (this.ring.length < this.capacity) this.ring.push(entry);
    else this.ring[this.next] = entry;
    this.next = (this.next + 1) % this.capacity;
  }

  /** Newest first. */
  entries(): RecentEntry[] {
    const oldestFirst =
      this.ring.length < this.capacity
        ? this.ring
        : [...this.ring.slice(this.next), ...this.ring.slice(0, this.next)];
    return oldestFirst.slice().reverse();
  }

  /** pino destination interface: one serialised JSON log line. Lines below warn are ignored. */
  write(line: string): void {
    const entry = parseLogLine(line);
    if (entry !== undefined) this.add(entry);
  }
}

function parseLogLine(line: string): RecentEntry | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const fields = parsed as Record<string, unknown>;
  const level = typeof fields.level === 'number' ? LEVEL_NAMES[fields.level] : undefined;
  if (level === undefined) return undefined;
  const entry: RecentEntry = {
    time: typeof fields.time === 'number' ? fields.time : systemClock.wallNow(),
    level,
    msg: text(fields.msg) ?? '',
  };
  const clientId = text(fields.clientId);
  const address = text(fields.address);
  const component = text(fields.component);
  const error = errorMessage(fields.err);
  if (clientId !== undefined) entry.clientId = clientId;
  if (address !== undefined) entry.address = address;
  if (component !== undefined) entry.component = component;
  if (error !== undefined) entry.error = error;
  return entry;
}

function text(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  return value.length > MAX_TEXT ? `${value.slice(0, MAX_TEXT)}…` : value;
}

function errorMessage(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  return text((err as Record<string, unknown>).message);
}
