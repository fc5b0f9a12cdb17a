/**
 * A bound on upstream logins under way (TCP connect, TLS handshake and XOAUTH2 at the mail server) with a bounded
 * queue behind it. A burst of devices logging in at once (a site's printers after a power cut, a load test) would
 * otherwise start every handshake at the same moment: the event loop and the upstream then serve none of them in
 * time. With the bound they are served in turn; past the queue a login is told "try again" at once (IMAP
 * `NO [UNAVAILABLE]`, POP3 `-ERR [SYS/TEMP]`), never left hanging or closed. A queued login costs a closure.
 */
import { BoundedQueue } from '../bounded-queue.js';

export class LoginQueue extends BoundedQueue {
  /** `concurrent` upstream logins under way at once, `queued` waiting; past it LOGINS_BUSY. */
  constructor(concurrent: number, queued: number) {
    super(concurrent, queued, 'LOGINS_BUSY', 'upstream logins');
  }
}
