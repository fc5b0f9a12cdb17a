/**
 * Authenticated upstream connections kept between messages, per mailbox, so a backlog costs one TLS handshake and
 * one AUTH XOAUTH2 per connection instead of per message.
 *
 * - At most `maxPerMailbox` connections per mailbox exist at once, counting those in use, idle and closing (until
 *   the socket is gone): Exchange Online answers a 4th concurrent one with `432 4.3.2` (docs/exchange-online.md §6).
 *   The worker's pacing already limits sends in progress to that number, so a new connection only ever waits for
 *   one that is closing.
 * - A connection is used only while the token it authenticated with has more than `tokenMarginMs` of life left; then
 *   it is closed and the next message opens a new one with a token from the token service (which refreshes well
 *   before expiry). Exchange checks the token at AUTH; a connection never outlives its token.
 * - An idle connection is closed after `idleMs`: nothing stays open between bursts of scans.
 * - When an account's token leaves the state 'acquired' (revoked, deleted by the operator, invalid), its connections
 *   are not used again: a login made with a token the relay no longer holds must not keep sending.
 * - A connection taken from the idle set gets RSET first; one that fails it is dropped and the next one (or a new
 *   connection) is used, without counting an attempt against the message.
 */
import { errorFields, type Logger } from '../../log.js';
import { UpstreamConnection } from './upstream-connection.js';
import type { UpstreamTarget } from './upstream-sender.js';

export interface MailboxConnectionLimits {
  maxPerMailbox: number;
  /** Close a connection idle this long; default 10 s. */
  idleMs?: number;
  /** Stop using a connection when its token has less life than this; default 5 minutes. */
  tokenMarginMs?: number;
}

/** A connection authenticated for one account's mailbox. */
export interface AuthenticatedConnection {
  readonly connection: UpstreamConnection;
  /** The pacing key: the mailbox, lower-cased. */
  readonly key: string;
  readonly account: string;
  /** When the token it logged in with expires (ms since the epoch). */
  readonly tokenExpiresAt: number;
  /** The account's `generation` when its token was taken. */
  readonly generation: number;
}

interface IdleEntry {
  conn: AuthenticatedConnection;
  timer: NodeJS.Timeout;
}

export const DEFAULT_IDLE_MS = 10_000;
export const DEFAULT_TOKEN_MARGIN_MS = 5 * 60_000;

export class MailboxConnections {
  private readonly idle = new Map<string, IdleEntry[]>();
  /** Connections per key that exist now: in use, idle, or closing. */
  private readonly open = new Map<string, number>();
  private readonly waiting = new Map<string, Array<() => void>>();
  private readonly generations = new Map<string, number>();
  private readonly idleMs: number;
  private readonly tokenMarginMs: number;
  private closed = false;

  constructor(
    private readonly limits: MailboxConnectionLimits,
    private readonly log: Logger,
  ) {
    this.idleMs = limits.idleMs ?? DEFAULT_IDLE_MS;
    this.tokenMarginMs = limits.tokenMarginMs ?? DEFAULT_TOKEN_MARGIN_MS;
  }

  /** Changes whenever `forgetAccount` is called: connections authenticated before are not used again. */
  generation(account: string): number {
    return this.generations.get(account) ?? 0;
  }

  /** The account's token is no longer held: close its idle connections, and those in use when released. */
  forgetAccount(account: string): void {
    this.generations.set(account, this.generation(account) + 1);
    for (const list of this.idle.values()) {
      for (const entry of list.filter((e) => e.conn.account === account)) {
        list.splice(list.indexOf(entry), 1);
        this.retire(entry, 'the account no longer has a token');
      }
    }
  }

  /** Connections that exist for `key` now (in use, idle or closing). */
  count(key: string): number {
    return this.open.get(key) ?? 0;
  }

  /**
   * An idle connection of `account` that answered RSET; or, when there is none, the room for a new one: the
   * returned `UpstreamConnection` is counted until it ends, and the caller connects and logs it in.
   */
  async acquire(key: string, account: string, target: UpstreamTarget): Promise<{ reused: AuthenticatedConnection } | { fresh: UpstreamConnection }> {
    for (;;) {
      const reused = await this.takeIdle(key, account);
      if (reused) return { reused };
      // Idle connections of another account of the same mailbox give way.
      for (const entry of this.idle.get(key)?.splice(0) ?? []) this.retire(entry, 'another account of the mailbox needs the slot');
      if (this.count(key) < this.limits.maxPerMailbox) return { fresh: this.counted(key, new UpstreamConnection(target)) };
      await new Promise<void>((resolve) => this.waiters(key).push(resolve));
    }
  }

  /** Keeps a connection for the next message, or closes it (`reusable` false, too old, or shutting down). */
  release(conn: AuthenticatedConnection, reusable: boolean): void {
    if (!reusable || !conn.connection.usable) return conn.connection.close();
    if (this.closed) return this.quit(conn, 'delivery stopping');
    if (!this.fresh(conn)) return this.quit(conn, 'its token is about to expire or is no longer held');
    const entry: IdleEntry = { conn, timer: setTimeout(() => this.expireIdle(entry), this.idleMs) };
    entry.timer.unref();
    let list = this.idle.get(conn.key);
    if (!list) this.idle.set(conn.key, (list = []));
    list.push(entry);
    this.wake(conn.key);
  }

  /** Keeps connections again after closeAll (the worker started again). */
  reopen(): void {
    this.closed = false;
  }

  /** Closes every idle connection; connections still in use close when they are released. */
  closeAll(): void {
    this.closed = true;
    for (const list of this.idle.values()) for (const entry of list.splice(0)) this.retire(entry, 'delivery stopping');
  }

  /** True while the connection's token has more than the margin left. */
  private fresh(conn: AuthenticatedConnection): boolean {
    return conn.generation === this.generation(conn.account) && conn.tokenExpiresAt - Date.now() > this.tokenMarginMs;
  }

  private async takeIdle(key: string, account: string): Promise<AuthenticatedConnection | null> {
    const list = this.idle.get(key);
    for (;;) {
      // The most recently used first: the others may then reach their idle limit and close.
      const index = list?.findLastIndex((e) => e.conn.account === account) ?? -1;
      if (!list || index < 0) return null;
      const [entry] = list.splice(index, 1);
      clearTimeout(entry!.timer);
      const { conn } = entry!;
      if (!this.fresh(conn)) {
        this.quit(conn, 'its token is about to expire or is no longer held');
        continue;
      }
      if (await conn.connection.reset()) return conn;
      this.log.debug({ account, messages: conn.connection.messages }, 'an idle upstream connection failed RSET: dropped');
      conn.connection.close();
    }
  }

  private expireIdle(entry: IdleEntry): void {
    const list = this.idle.get(entry.conn.key);
    const index = list?.indexOf(entry) ?? -1;
    if (index < 0) return;
    list!.splice(index, 1);
    this.quit(entry.conn, 'idle');
  }

  private retire(entry: IdleEntry, why: string): void {
    clearTimeout(entry.timer);
    this.quit(entry.conn, why);
  }

  private quit(conn: AuthenticatedConnection, why: string): void {
    this.log.debug({ account: conn.account, messages: conn.connection.messages, why }, 'closing an upstream connection');
    conn.connection.quit();
  }

  private counted(key: string, connection: UpstreamConnection): UpstreamConnection {
    this.open.set(key, this.count(key) + 1);
    connection.ended
      .then(() => {
        const left = this.count(key) - 1;
        if (left > 0) this.open.set(key, left);
        else this.open.delete(key);
        this.wake(key);
      })
      .catch((err: unknown) => this.log.error(errorFields(err), 'cannot free an upstream connection slot'));
    return connection;
  }

  private waiters(key: string): Array<() => void> {
    let list = this.waiting.get(key);
    if (!list) this.waiting.set(key, (list = []));
    return list;
  }

  private wake(key: string): void {
    const list = this.waiting.get(key);
    if (!list) return;
    this.waiting.delete(key);
    for (const resolve of list) resolve();
  }
}
