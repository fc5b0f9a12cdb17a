/**
 * A bound on upstream logins under way (TCP connect, TLS handshake and XOAUTH2 at the mail server) with a bounded
 * queue behind it. A burst of devices logging in at once (a site's printers after a power cut, a load test) would
 * otherwise start every handshake at the same moment: the event loop and the upstream then serve none of them in
 * time. With the bound they are served in turn; past the queue a login is told "try again" at once (IMAP
 * `NO [UNAVAILABLE]`, POP3 `-ERR [SYS/TEMP]`), never left hanging or closed. A queued login costs a closure.
 */
import { RelayError } from '../errors.js';

export class LoginQueue {
  private running = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(
    /** Upstream logins under way at once. */
    readonly concurrent: number,
    /** Logins waiting for a slot; past it LOGINS_BUSY. */
    readonly queued: number,
  ) {}

  /** Runs `login` when a slot is free; throws RelayError LOGINS_BUSY at once when the queue is full. */
  async run<T>(login: () => Promise<T>): Promise<T> {
    if (this.running >= this.concurrent) {
      if (this.waiting.length >= this.queued) throw new RelayError('LOGINS_BUSY', `${this.running} upstream logins under way, ${this.waiting.length} waiting`);
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else this.running += 1;
    try {
      return await login();
    } finally {
      // The slot passes straight to the next waiter (running stays the same) or is given back.
      const next = this.waiting.shift();
      if (next) next();
      else this.running -= 1;
    }
  }

  /** Logins under way and waiting, for tests and metrics. */
  get load(): { running: number; waiting: number } {
    return { running: this.running, waiting: this.waiting.length };
  }
}
