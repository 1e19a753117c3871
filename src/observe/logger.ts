import pino, { type DestinationStream, type Logger } from 'pino';
import type { RecentWarnings } from './recent.js';

export interface LoggerOptions {
  /** Also keep warn+ entries here, for the status page. */
  recent?: RecentWarnings;
}

const PRETTY_OPTIONS = { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' };

/**
 * JSON logs for machines (journald, Loki); human-readable lines when a person watches a terminal.
 * With `recent`, warn+ lines are teed into it; what reaches stdout does not change.
 */
export function createLogger(
  level: string,
  pretty = process.stdout.isTTY === true,
  { recent }: LoggerOptions = {},
): Logger {
  if (pretty) {
    if (recent === undefined)
      return pino({ level, transport: { target: 'pino-pretty', options: PRETTY_OPTIONS } });
    return pino(
      { level },
      teeWarnings(pino.transport({ target: 'pino-pretty', options: PRETTY_OPTIONS }), recent),
    );
  }
  const options = { level, base: { service: 'mqttsn-bridge' } };
  if (recent === undefined) return pino(options);
  return pino(options, teeWarnings(pino.destination(1), recent));
}

function teeWarnings(main: DestinationStream, recent: RecentWarnings): DestinationStream {
  // The main stream takes every level the logger lets through ('trace' is the lowest there is).
  return pino.multistream([
    { level: 'trace', stream: main },
    { level: 'warn', stream: recent },
  ]);
}
