import type { Logger } from 'pino';

/**
 * Logs a condition once when it starts and once, with a count, when it ends — instead of once per
 * message — so a full outbox is never silent and never floods the log.
 */
export class EpisodeLog {
  private startedAt: number | undefined;
  private count = 0;

  constructor(
    private readonly logger: Logger,
    private readonly startMessage: string,
    private readonly endMessage: string,
    private readonly now: () => number,
    private readonly level: 'warn' | 'error' = 'warn',
  ) {}

  get active(): boolean {
    return this.startedAt !== undefined;
  }

  /** Count `n` occurrences, logging the start of an episode the first time. */
  note(n: number, details: Record<string, unknown>): void {
    if (this.startedAt === undefined) {
      this.startedAt = this.now();
      this.count = 0;
      this.logger[this.level](details, this.startMessage);
    }
    this.count += n;
  }

  /** Close the episode, if one is running, with a summary line. */
  end(details: Record<string, unknown> = {}): void {
    if (this.startedAt === undefined) return;
    this.logger.warn(
      { ...details, count: this.count, durationMs: this.now() - this.startedAt },
      this.endMessage,
    );
    this.startedAt = undefined;
    this.count = 0;
  }
}
