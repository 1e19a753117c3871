import { fstatSync } from 'node:fs';
import { createRequire } from 'node:module';
import pino, { type DestinationStream, type Logger } from 'pino';
import type { RecentWarnings } from './recent.js';

/** auto: journal under systemd, pretty on a terminal (when pino-pretty is installed), else json. */
export type LogFormat = 'auto' | 'json' | 'pretty' | 'journal';

export interface LoggerOptions {
  /** Also keep warn+ entries here, for the status page. */
  recent?: RecentWarnings;
  /** Overrides the `pretty` argument. */
  format?: LogFormat;
  /** For tests: the environment that decides `auto` (JOURNAL_STREAM). */
  env?: NodeJS.ProcessEnv;
}

const PRETTY_OPTIONS = { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' };

/**
 * JSON logs for machines (journald, Loki); human-readable lines when a person watches a terminal.
 * With `recent`, warn+ lines are teed into it; what reaches stdout does not change.
 */
export function createLogger(
  level: string,
  pretty = process.stdout.isTTY === true,
  { recent, format, env = process.env }: LoggerOptions = {},
): Logger {
  const chosen = chooseFormat(format ?? (pretty ? 'pretty' : 'json'), format === undefined, env);
  if (chosen.format === 'pretty') {
    if (recent === undefined)
      return pino({ level, transport: { target: 'pino-pretty', options: PRETTY_OPTIONS } });
    return pino(
      { level },
      teeWarnings(pino.transport({ target: 'pino-pretty', options: PRETTY_OPTIONS }), recent),
    );
  }
  const options = { level, base: { service: 'mqttsn-bridge' } };
  const stdout = chosen.format === 'journal' ? journalStream(pino.destination(1)) : undefined;
  let log: Logger;
  if (recent === undefined) log = stdout ? pino(options, stdout) : pino(options);
  else log = pino(options, teeWarnings(stdout ?? pino.destination(1), recent));
  if (chosen.note) log.warn(chosen.note);
  return log;
}

function chooseFormat(
  wanted: LogFormat,
  legacyPretty: boolean,
  env: NodeJS.ProcessEnv,
): { format: Exclude<LogFormat, 'auto'>; note?: string } {
  if (wanted === 'auto') {
    if (underJournald(env)) return { format: 'journal' };
    return chooseFormat(process.stdout.isTTY === true ? 'pretty' : 'json', true, env);
  }
  if (wanted === 'pretty' && !prettyInstalled()) {
    // On a terminal by default: JSON is still readable, so say it once and carry on. Asked for
    // explicitly: the same, but the reason matters more.
    return {
      format: 'json',
      note: `pino-pretty (optional) is not installed: logging JSON${legacyPretty ? '' : ' instead of --log-format pretty'}; install it next to mqttsn-bridge (npm install pino-pretty) for human-readable lines`,
    };
  }
  return { format: wanted };
}

function prettyInstalled(): boolean {
  try {
    createRequire(import.meta.url).resolve('pino-pretty');
    return true;
  } catch {
    return false;
  }
}

/**
 * systemd sets JOURNAL_STREAM=<device>:<inode> when stdout or stderr is connected to journald;
 * stdout is ours only when the identity matches (a redirect or a pipe changes it).
 */
export function underJournald(env: NodeJS.ProcessEnv): boolean {
  const value = env.JOURNAL_STREAM;
  if (value === undefined || !/^\d+:\d+$/.test(value)) return false;
  try {
    const stat = fstatSync(1);
    return `${stat.dev}:${stat.ino}` === value;
  } catch {
    return false;
  }
}

/** pino level → sd-daemon(3) priority: trace/debug 7, info 6, warn 4, error 3, fatal 2. */
export function journalPriority(level: number): number {
  if (level >= 60) return 2;
  if (level >= 50) return 3;
  if (level >= 40) return 4;
  if (level >= 30) return 6;
  return 7;
}

/**
 * Prefixes each JSON line with "<N>" so that journald (SyslogLevelPrefix=, on by default) files it
 * at that priority instead of info: `journalctl -p warning` then shows warnings and worse only.
 */
function journalStream(out: DestinationStream): DestinationStream {
  return {
    write(line: string): void {
      const level = /^\{"level":(\d+)/.exec(line);
      out.write(`<${journalPriority(level ? Number(level[1]) : 30)}>${line}`);
    },
  };
}

function teeWarnings(main: DestinationStream, recent: RecentWarnings): DestinationStream {
  // The main stream takes every level the logger lets through ('trace' is the lowest there is).
  return pino.multistream([
    { level: 'trace', stream: main },
    { level: 'warn', stream: recent },
  ]);
}
