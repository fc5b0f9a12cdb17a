/**
 * Back-off per source address after failed logins, so a device with a wrong password (or a password guesser)
 * cannot hammer scrypt or the relay: after `freeFailures` failures, each further failure doubles the time the
 * address is refused, up to `maxBlockMs`. A success clears the record. Memory is bounded: old records expire.
 */
export interface FailureThrottleOptions {
  freeFailures?: number;
  baseBlockMs?: number;
  maxBlockMs?: number;
  /** Records idle this long are forgotten. */
  forgetAfterMs?: number;
  maxTracked?: number;
  now?: () => number;
}

interface Record {
  failures: number;
  blockedUntil: number;
  lastFailure: number;
}

export class FailureThrottle {
  private readonly records = new Map<string, Record>();
  private readonly o: Required<FailureThrottleOptions>;

  constructor(opts: FailureThrottleOptions = {}) {
    this.o = { freeFailures: 5, baseBlockMs: 1000, maxBlockMs: 15 * 60_000, forgetAfterMs: 60 * 60_000, maxTracked: 10_000, now: Date.now, ...opts };
  }

  /** Milliseconds this address must still wait, 0 when it may try. */
  blockedFor(address: string): number {
    const r = this.records.get(address);
    if (!r) return 0;
    const now = this.o.now();
    if (now - r.lastFailure > this.o.forgetAfterMs) {
      this.records.delete(address);
      return 0;
    }
    return Math.max(0, r.blockedUntil - now);
  }

  failed(address: string): void {
    const now = this.o.now();
    const r = this.records.get(address) ?? { failures: 0, blockedUntil: 0, lastFailure: now };
    r.failures += 1;
    r.lastFailure = now;
    const over = r.failures - this.o.freeFailures;
    if (over > 0) r.blockedUntil = now + Math.min(this.o.maxBlockMs, this.o.baseBlockMs * 2 ** Math.min(over - 1, 20));
    this.records.delete(address); // re-insert: Map order doubles as least-recently-failed order
    this.records.set(address, r);
    if (this.records.size > this.o.maxTracked) this.records.delete(this.records.keys().next().value!);
  }

  succeeded(address: string): void {
    this.records.delete(address);
  }
}
