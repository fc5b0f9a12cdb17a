/**
 * A cap on the upstream IMAP/POP3 sessions one mailbox holds at once. Exchange Online refuses a mailbox's
 * sessions past about 16–20 (field reports, counted over every client), and it refuses the *new* one: without a
 * cap, a fleet of MFPs polling one `scanner@` inbox through the relay would make every device fail together once
 * the fleet grows. Over the cap a login waits (bounded in time and in number) for a slot, first come first served,
 * then gets the protocol's "try later" reply (MAILBOX_BUSY) before any upstream connection or token is used.
 *
 * Slots are counted per account (the configuration's name for a mailbox), IMAP and POP3 together. A slot is given
 * back when the upstream socket closes, however the session ends (logout, idle timeout, device gone, upstream gone,
 * shutdown), or at once when the upstream login fails.
 */
import type { Socket } from 'node:net';
import { RelayError } from '../errors.js';
import type { Logger } from '../log.js';
import type { SessionProtocol } from './session-registry.js';

export interface MailboxSlotsOptions {
  /** Sessions one mailbox may hold at once. */
  maxPerMailbox: number;
  /** How long a login waits for a slot. */
  waitSeconds: number;
  /** Logins that may wait for one mailbox at once; past it a login is refused at once. */
  maxWaitingPerMailbox: number;
}

/** Why a login got the "try later" reply: the wait queue was full, or no slot came free in time. */
export type SlotRefusal = 'queue-full' | 'wait-timeout';

/** One mailbox's sessions now, for the admin page and /metrics. */
export interface MailboxSessionCount {
  account: string;
  held: Record<SessionProtocol, number>;
  waiting: number;
}

/** What the admin page and /metrics read. */
export type MailboxSessionsView = Pick<MailboxSlots, 'counts' | 'refusedCounts' | 'options'>;

interface Waiter {
  protocol: SessionProtocol;
  grant: () => void;
}

interface MailboxState {
  held: Record<SessionProtocol, number>;
  waiting: Waiter[];
}

export class MailboxSlots {
  private readonly mailboxes = new Map<string, MailboxState>();
  /** Refusals by `account \0 protocol \0 reason`: bounded by the configured accounts. */
  private readonly refusals = new Map<string, number>();

  constructor(readonly options: MailboxSlotsOptions) {}

  /**
   * Runs `open` (the upstream login) holding a slot of `account`'s mailbox; the slot is given back when the
   * returned socket closes, or when `open` throws. Throws RelayError MAILBOX_BUSY when no slot is had in time.
   */
  async hold<T extends { socket: Socket }>(account: string, protocol: SessionProtocol, log: Logger, open: () => Promise<T>): Promise<T> {
    const release = await this.acquire(account, protocol, log);
    let session: T;
    try {
      session = await open();
    } catch (err) {
      release();
      throw err;
    }
    if (session.socket.closed) release();
    else session.socket.once('close', release);
    return session;
  }

  /** A slot of `account`'s mailbox; resolves with its (idempotent) release. */
  acquire(account: string, protocol: SessionProtocol, log: Logger): Promise<() => void> {
    const state = this.stateOf(account);
    const { maxPerMailbox, maxWaitingPerMailbox, waitSeconds } = this.options;
    if (total(state) < maxPerMailbox) return Promise.resolve(this.take(account, state, protocol));
    if (state.waiting.length >= maxWaitingPerMailbox || waitSeconds <= 0) {
      this.forget(account, state);
      return Promise.reject(this.refuse(account, protocol, 'queue-full', `${total(state)} sessions open and ${state.waiting.length} logins waiting`));
    }
    log.info({ held: total(state), waiting: state.waiting.length + 1, limit: maxPerMailbox }, 'mailbox holds its maximum of upstream sessions: this login waits for one to end');
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        protocol,
        grant: () => {
          clearTimeout(timer);
          resolve(this.take(account, state, protocol));
        },
      };
      const timer = setTimeout(() => {
        state.waiting.splice(state.waiting.indexOf(waiter), 1);
        this.forget(account, state);
        reject(this.refuse(account, protocol, 'wait-timeout', `no session of the mailbox ended within ${waitSeconds} s`));
      }, waitSeconds * 1000);
      state.waiting.push(waiter);
    });
  }

  /** Sessions held and logins waiting, per mailbox that has any. */
  counts(): MailboxSessionCount[] {
    return [...this.mailboxes].map(([account, s]) => ({ account, held: { ...s.held }, waiting: s.waiting.length }));
  }

  /** Logins refused by the cap since the start, by account, protocol and reason. */
  refusedCounts(): Array<{ account: string; protocol: SessionProtocol; reason: SlotRefusal; count: number }> {
    return [...this.refusals].map(([key, count]) => {
      const [account, protocol, reason] = key.split('\0') as [string, SessionProtocol, SlotRefusal];
      return { account, protocol, reason, count };
    });
  }

  private stateOf(account: string): MailboxState {
    let state = this.mailboxes.get(account);
    if (!state) {
      state = { held: { imap: 0, pop3: 0 }, waiting: [] };
      this.mailboxes.set(account, state);
    }
    return state;
  }

  private take(account: string, state: MailboxState, protocol: SessionProtocol): () => void {
    state.held[protocol] += 1;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      state.held[protocol] -= 1;
      // The freed slot goes to the longest-waiting login, so waiting devices are served in turn.
      const next = state.waiting.shift();
      if (next) next.grant();
      else this.forget(account, state);
    };
  }

  /** Drops an idle mailbox's entry, so accounts a reload removed leave nothing behind. */
  private forget(account: string, state: MailboxState): void {
    if (total(state) === 0 && state.waiting.length === 0 && this.mailboxes.get(account) === state) this.mailboxes.delete(account);
  }

  private refuse(account: string, protocol: SessionProtocol, reason: SlotRefusal, detail: string): RelayError {
    const key = `${account}\0${protocol}\0${reason}`;
    this.refusals.set(key, (this.refusals.get(key) ?? 0) + 1);
    return new RelayError('MAILBOX_BUSY', `${account}: ${detail}`);
  }
}

function total(state: MailboxState): number {
  return state.held.imap + state.held.pop3;
}
