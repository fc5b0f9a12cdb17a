/**
 * The open IMAP and POP3 device sessions, so that shutdown can drain them (and the admin page can count them).
 * Draining asks every session to end politely (a pre-login session says BYE / -ERR and closes at once; a spliced
 * session cannot be interrupted without corrupting its stream, so it is left to finish), then destroys what is
 * still open when the time is up.
 */

export type SessionProtocol = 'imap' | 'pop3';

/** Where a session is: the relay's own pre-login dialogue, the upstream login, or the byte pipe. */
export type SessionPhase = 'pre-auth' | 'logging-in' | 'spliced';

/** What a registered session exposes to the registry. */
export interface RegisteredSession {
  readonly id: string;
  readonly protocol: SessionProtocol;
  /** The listener it came in on (`host:port`), so a listener drains only its own sessions. */
  readonly listener: string;
  readonly remote: string;
  readonly phase: SessionPhase;
  readonly device: string | null;
  readonly account: string | null;
  readonly startedAt: Date;
  /** Ends the session politely if its phase allows (pre-login: a goodbye line); otherwise does nothing. */
  shutdown(): void;
  /** Ends the session now. */
  destroy(): void;
  /** Resolves once the session is over and its sockets are closed. */
  readonly closed: Promise<void>;
}

export interface SessionSummary {
  id: string;
  protocol: SessionProtocol;
  listener: string;
  remote: string;
  phase: SessionPhase;
  device: string | null;
  account: string | null;
  startedAt: string;
}

export interface DrainResult {
  /** Sessions that ended by themselves within the time. */
  ended: number;
  /** Sessions destroyed when the time was up. */
  forced: number;
}

export class SessionRegistry {
  private readonly sessions = new Set<RegisteredSession>();

  /** Adds a session; it leaves the registry by itself once `closed` resolves. */
  add(session: RegisteredSession): void {
    this.sessions.add(session);
    session.closed.finally(() => this.sessions.delete(session)).catch(() => undefined); // `closed` never rejects
  }

  /** Open sessions, optionally of one protocol. */
  count(protocol?: SessionProtocol): number {
    let n = 0;
    for (const s of this.sessions) if (!protocol || s.protocol === protocol) n += 1;
    return n;
  }

  /** A snapshot for status pages and logs (no secrets in it). */
  list(): SessionSummary[] {
    return [...this.sessions].map((s) => ({
      id: s.id,
      protocol: s.protocol,
      listener: s.listener,
      remote: s.remote,
      phase: s.phase,
      device: s.device,
      account: s.account,
      startedAt: s.startedAt.toISOString(),
    }));
  }

  /**
   * Ends the sessions `which` selects (default: all): politely first, destroyed after `timeoutMs`.
   * Resolves when none of them is open any more.
   */
  async drain(timeoutMs: number, which: (s: RegisteredSession) => boolean = () => true): Promise<DrainResult> {
    const targets = [...this.sessions].filter(which);
    for (const s of targets) s.shutdown();
    let timer: NodeJS.Timeout | undefined;
    const timeUp = new Promise<'time-up'>((resolve) => (timer = setTimeout(() => resolve('time-up'), timeoutMs)));
    const allClosed = Promise.all(targets.map((s) => s.closed)).then(() => 'closed' as const);
    const outcome = await Promise.race([allClosed, timeUp]);
    clearTimeout(timer);
    if (outcome === 'closed') return { ended: targets.length, forced: 0 };
    const open = targets.filter((s) => this.sessions.has(s));
    for (const s of open) s.destroy();
    await Promise.all(open.map((s) => s.closed));
    return { ended: targets.length - open.length, forced: open.length };
  }
}
