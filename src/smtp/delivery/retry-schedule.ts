/**
 * When a temporarily failed message is tried again: retryInitialSeconds, doubling per attempt up to
 * retryMaxSeconds, with ±25 % jitter so messages deferred together (an Exchange outage) do not all come back
 * in the same second.
 */

export interface RetrySettings {
  retryInitialSeconds: number;
  retryMaxSeconds: number;
}

/** Delay in ms before attempt number `attempts + 1`, after `attempts` (≥ 1) failed ones. */
export function retryDelayMs(attempts: number, settings: RetrySettings, random: () => number = Math.random): number {
  const exponent = Math.max(0, Math.min(attempts - 1, 30));
  const base = Math.min(settings.retryMaxSeconds, settings.retryInitialSeconds * 2 ** exponent) * 1000;
  const jittered = base * (0.75 + random() * 0.5);
  return Math.round(Math.min(jittered, settings.retryMaxSeconds * 1000));
}
