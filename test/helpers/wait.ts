/**
 * Small timing utilities for tests: sleeping, and polling a condition with a deadline.
 */

/** Resolve after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface WaitUntilOptions {
  /** Give up after this many milliseconds (default 5000). */
  timeoutMs?: number;
  /** Poll interval in milliseconds (default 20). */
  intervalMs?: number;
  /** Named in the timeout error, e.g. 'gateway to reconnect'. */
  description?: string;
}

/**
 * Poll `condition` until it returns (or resolves to) a truthy value, and return that value.
 * Rejects with an error naming `description` when `timeoutMs` passes first.
 */
export async function waitUntil<T>(
  condition: () => T | Promise<T>,
  { timeoutMs = 5000, intervalMs = 20, description = 'condition' }: WaitUntilOptions = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value) return value as NonNullable<T>;
    if (Date.now() >= deadline)
      throw new Error(`waitUntil: timed out after ${timeoutMs} ms waiting for ${description}`);
    await sleep(intervalMs);
  }
}
