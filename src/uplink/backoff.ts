/**
 * Exponential backoff with full jitter: after the n-th failed round (n >= 1) wait a uniformly random
 * time in [0, min(maxMs, initialMs * 2^(n-1))). Jitter keeps a fleet of gateways from reconnecting in
 * lockstep after a broker outage.
 */
export function backoffDelay(
  failedRounds: number,
  initialMs: number,
  maxMs: number,
  random: () => number,
): number {
  const exponent = Math.max(0, failedRounds - 1);
  const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(exponent, 30));
  return Math.floor(random() * ceiling);
}
