/** Returned by Stop.race when the command was stopped before the work finished. */
export const STOPPED = Symbol('stopped');

/**
 * How a long-running command ends early: `stop()` when it is done (count reached, Ctrl-C), `fail()`
 * when the session is lost. Each step of the command races against it.
 */
export class Stop {
  private readonly settled: Promise<typeof STOPPED>;
  private resolve!: (value: typeof STOPPED) => void;
  private reject!: (err: Error) => void;

  constructor() {
    this.settled = new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    // Nobody may be racing at the moment of a failure; the next race() reports it.
    this.settled.catch(() => undefined);
  }

  stop(): void {
    this.resolve(STOPPED);
  }

  fail(err: Error): void {
    this.reject(err);
  }

  /** `work`'s result, or STOPPED if the command stops first (then a later failure of `work` is ignored). */
  race<T>(work: Promise<T>): Promise<T | typeof STOPPED> {
    work.catch(() => undefined);
    return Promise.race([work, this.settled]);
  }
}
