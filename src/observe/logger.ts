import pino, { type Logger } from 'pino';

/**
 * JSON logs for machines (journald, Loki); human-readable lines when a person watches a terminal.
 */
export function createLogger(level: string, pretty = process.stdout.isTTY === true): Logger {
  if (pretty) {
    return pino({
      level,
      transport: {
        target: 'pino-pretty',
        options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' },
      },
    });
  }
  return pino({ level, base: { service: 'mqttsn-bridge' } });
}
