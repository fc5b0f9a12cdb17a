/**
 * A bound on concurrent password checks with a short queue. Each scrypt check holds 32 MiB and one of libuv's
 * four pool threads for tens of milliseconds; the spool's fsyncs (the device's `250`) run on the same pool, so
 * a login flood with no bound starves every message (measured: no `250` within a minute during 200 parallel
 * wrong logins). Over the queue a check is refused at once (AUTH_BUSY, a temporary failure): a flood costs a
 * fixed amount of work and memory, never a growing backlog.
 */
import { availableParallelism } from 'node:os';
import { RelayError } from '../errors.js';

export interface VerificationGateOptions {
  /** Checks running at once; default one less than the CPU cores, at least 1, at most 2 (half the pool). */
  concurrent?: number | null;
  /** Checks waiting for a slot; default 20. */
  queued?: number;
}

/** The default concurrency: a core (and two pool threads) left for the event loop and the fsyncs. */
export function defaultConcurrentChecks(): number {
  return Math.max(1, Math.min(2, availableParallelism() - 1));
}

export class VerificationGate {
  private running = 0;
  private readonly waiting: Array<() => void> = [];
  readonly concurrent: number;
  readonly queued: number;

  constructor(o: VerificationGateOptions = {}) {
    this.concurrent = o.concurrent ?? defaultConcurrentChecks();
    this.queued = o.queued ?? 20;
  }

  /** Runs `check` when a slot is free; throws RelayError AUTH_BUSY at once when the queue is full. */
  async run<T>(check: () => Promise<T>): Promise<T> {
    if (this.running >= this.concurrent) {
      if (this.waiting.length >= this.queued) throw new RelayError('AUTH_BUSY', `${this.running} checks running, ${this.waiting.length} waiting`);
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else this.running += 1;
    try {
      return await check();
    } finally {
      // The slot passes straight to the next waiter (running stays the same) or is given back.
      const next = this.waiting.shift();
      if (next) next();
      else this.running -= 1;
    }
  }

  /** Checks running and waiting, for tests and metrics. */
  get load(): { running: number; waiting: number } {
    return { running: this.running, waiting: this.waiting.length };
  }
}
