/**
 * Per-mailbox pacing, the limits Exchange Online enforces per mailbox (docs/exchange-online.md §6): at most
 * `maxConnections` sends at once (Exchange answers a 4th with `432 4.3.2`) and at most `maxPerWindow` sends
 * started in any sliding window (`30` a minute). Mailboxes are paced apart: one busy scanner never delays
 * another mailbox's mail.
 *
 * A send is counted when it starts (so the worker never starts more than the window allows), and counted again, at
 * its real time, just before its MAIL FROM (`sendableAt` / `restamp`): with reused connections the time from start
 * to MAIL FROM varies (a new connection spends a TLS handshake and an AUTH first, a reused one nothing), and Exchange
 * counts what arrives. A message goes out only when the window, by those real times, has room: exact at the upstream.
 */

export interface PacingLimits {
  maxConnections: number;
  maxPerWindow: number;
  /** 60 000 in production (messages per minute); tests shorten it. */
  windowMs: number;
}

interface MailboxUse {
  active: number;
  /** Start times within the current window, oldest first. */
  starts: number[];
}

export class MailboxPacing {
  private readonly mailboxes = new Map<string, MailboxUse>();

  constructor(private readonly limits: PacingLimits) {}

  /** True when a send for `mailbox` may start at `nowMs`. */
  canStart(mailbox: string, nowMs: number): boolean {
    const use = this.use(mailbox, nowMs);
    return use.active < this.limits.maxConnections && use.starts.length < this.limits.maxPerWindow;
  }

  /** Records a send start; call only after `canStart` said yes. */
  start(mailbox: string, nowMs: number): void {
    const use = this.use(mailbox, nowMs);
    use.active += 1;
    use.starts.push(nowMs);
  }

  /**
   * When the send that started at `startedAt` may submit (its MAIL FROM): `nowMs` when the window, counting the
   * other sends at their latest stamps, has room; else when enough of them leave it.
   */
  sendableAt(mailbox: string, startedAt: number, nowMs: number): number {
    const others = [...this.use(mailbox, nowMs).starts];
    const own = others.indexOf(startedAt);
    if (own >= 0) others.splice(own, 1);
    if (others.length < this.limits.maxPerWindow) return nowMs;
    return others[others.length - this.limits.maxPerWindow]! + this.limits.windowMs;
  }

  /** The send that started at `startedAt` submits now: it counts from `nowMs` (call when `sendableAt` said so). */
  restamp(mailbox: string, startedAt: number, nowMs: number): void {
    const { starts } = this.use(mailbox, nowMs);
    const own = starts.indexOf(startedAt);
    if (own >= 0) starts.splice(own, 1);
    starts.push(nowMs); // every stamp is at most now: the list stays in order
  }

  /** Records a send end (its connection is closed). */
  finish(mailbox: string): void {
    const use = this.mailboxes.get(mailbox);
    if (use) use.active = Math.max(0, use.active - 1);
  }

  /**
   * When the window has room again for `mailbox` (its oldest start leaves the window), or null when
   * only the connection limit holds it back (a finishing send wakes the worker then).
   */
  windowOpensAt(mailbox: string, nowMs: number): number | null {
    const use = this.use(mailbox, nowMs);
    if (use.starts.length < this.limits.maxPerWindow) return null;
    return (use.starts[0] ?? nowMs) + this.limits.windowMs;
  }

  /** Sends running for `mailbox` now. */
  active(mailbox: string): number {
    return this.mailboxes.get(mailbox)?.active ?? 0;
  }

  private use(mailbox: string, nowMs: number): MailboxUse {
    let use = this.mailboxes.get(mailbox);
    if (!use) {
      use = { active: 0, starts: [] };
      this.mailboxes.set(mailbox, use);
    }
    while (use.starts.length > 0 && (use.starts[0] ?? 0) <= nowMs - this.limits.windowMs) use.starts.shift();
    return use;
  }
}
