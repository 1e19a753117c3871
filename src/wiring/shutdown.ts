import type { Logger } from 'pino';

/** Runs one shutdown step for at most `ms`; a step that fails or overruns is logged, not waited for. */
export async function boundedStep(
  log: Logger,
  name: string,
  ms: number,
  work: () => Promise<unknown> | undefined,
): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ms);
  });
  try {
    const outcome = await Promise.race([Promise.resolve(work()).then(() => 'done' as const), timedOut]);
    if (outcome === 'timeout') log.warn({ step: name, timeoutMs: ms }, 'shutdown step timed out: going on');
  } catch (err) {
    log.warn({ err, step: name }, 'shutdown step failed: going on');
  } finally {
    clearTimeout(timer);
  }
}
