/**
 * Work bounded twice: at most `concurrent` jobs run at once, at most `queued` wait behind them, and past that a job
 * is refused at once with the catalogue error the owner names (a temporary failure the device is told to retry).
 * A flood then costs a fixed amount of work and memory, never a growing backlog. Shared by the password checks
 * (auth/verification-gate.ts) and the upstream logins (transport/login-queue.ts); a waiting job costs a closure.
 */
import { RelayError, type ErrorCode } from './errors.js';

export class BoundedQueue {
  private running = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(
    /** Jobs running at once. */
    readonly concurrent: number,
    /** Jobs waiting for a slot; past it `refusal`. */
    readonly queued: number,
    private readonly refusal: ErrorCode,
    /** What is running and waiting, in the refusal's words ("checks", "upstream logins"). */
    private readonly noun: string,
  ) {}

  /** Runs `job` when a slot is free; throws RelayError(refusal) at once when the queue is full. */
  async run<T>(job: () => Promise<T>): Promise<T> {
    if (this.running >= this.concurrent) {
      if (this.waiting.length >= this.queued) throw new RelayError(this.refusal, `${this.running} ${this.noun} under way, ${this.waiting.length} waiting`);
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else this.running += 1;
    try {
      return await job();
    } finally {
      // The slot passes straight to the next waiter (running stays the same) or is given back.
      const next = this.waiting.shift();
      if (next) next();
      else this.running -= 1;
    }
  }

  /** Jobs running and waiting, for tests and metrics. */
  get load(): { running: number; waiting: number } {
    return { running: this.running, waiting: this.waiting.length };
  }
}
