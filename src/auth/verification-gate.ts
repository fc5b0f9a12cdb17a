/**
 * A bound on concurrent password checks with a short queue. Each scrypt check holds 32 MiB and one of libuv's
 * four pool threads for tens of milliseconds; the spool's fsyncs (the device's `250`) run on the same pool, so
 * a login flood with no bound starves every message (measured: no `250` within a minute during 200 parallel
 * wrong logins). Over the queue a check is refused at once (AUTH_BUSY, a temporary failure): a flood costs a
 * fixed amount of work and memory, never a growing backlog.
 */
import { availableParallelism } from 'node:os';
import { BoundedQueue } from '../bounded-queue.js';

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

export class VerificationGate extends BoundedQueue {
  constructor(o: VerificationGateOptions = {}) {
    super(o.concurrent ?? defaultConcurrentChecks(), o.queued ?? 20, 'AUTH_BUSY', 'checks');
  }
}
