/**
 * A POP3 maildrop as one session sees it (RFC 1939 §5): the messages present when the session entered the
 * TRANSACTION state, numbered from 1, with deletion marks that take effect only in the UPDATE state.
 * Plus the per-mailbox lock RFC 1939 §8 asks for, so two sessions never number the same maildrop differently.
 */
import type { Readable } from 'node:stream';
import type { Maildir, StoredMessage } from './maildir.js';

/** A message as the session numbers it. */
export interface MaildropEntry {
  /** 1-based message number. */
  number: number;
  /** Unique-id listing token (RFC 1939 §7): the stored file name. */
  uid: string;
  size: number;
}

/** Why a message number cannot be used; the session turns it into the `-ERR` text. */
export type MessageLookupFailure = 'no-such-message' | 'deleted';

/** Exclusive access to maildrops, per mailbox, for this process. */
export class MaildropLocks {
  private readonly held = new Set<string>();

  /** Takes the lock; false when another session holds it. */
  acquire(mailbox: string): boolean {
    if (this.held.has(mailbox)) return false;
    this.held.add(mailbox);
    return true;
  }

  release(mailbox: string): void {
    this.held.delete(mailbox);
  }
}

/** One session's view of one mailbox. */
export class Maildrop {
  private readonly deleted = new Set<number>();

  private constructor(
    private readonly maildir: Maildir,
    readonly mailbox: string,
    private readonly messages: readonly StoredMessage[],
  ) {}

  /** Snapshots the mailbox: later arrivals are not seen until the next session (RFC 1939 §5 numbering is fixed). */
  static async open(maildir: Maildir, mailbox: string): Promise<Maildrop> {
    return new Maildrop(maildir, mailbox, await maildir.list(mailbox));
  }

  /** Messages not marked deleted, in order. */
  visible(): MaildropEntry[] {
    const entries: MaildropEntry[] = [];
    this.messages.forEach((m, i) => {
      if (!this.deleted.has(i + 1)) entries.push({ number: i + 1, uid: m.file, size: m.size });
    });
    return entries;
  }

  /** Count and total size of messages not marked deleted (STAT, RFC 1939 §5). */
  totals(): { count: number; octets: number } {
    const entries = this.visible();
    return { count: entries.length, octets: entries.reduce((sum, e) => sum + e.size, 0) };
  }

  /** The message with this number, or why there is none. */
  lookup(messageNumber: number): MaildropEntry | MessageLookupFailure {
    const message = this.messages[messageNumber - 1];
    if (!message || messageNumber < 1) return 'no-such-message';
    if (this.deleted.has(messageNumber)) return 'deleted';
    return { number: messageNumber, uid: message.file, size: message.size };
  }

  /** The message's bytes; null when the file vanished since the snapshot. */
  read(entry: MaildropEntry): Promise<Readable | null> {
    return this.maildir.read(this.mailbox, entry.uid);
  }

  markDeleted(entry: MaildropEntry): void {
    this.deleted.add(entry.number);
  }

  /** RSET (RFC 1939 §5): forget every deletion mark. */
  unmarkAll(): void {
    this.deleted.clear();
  }

  /** UPDATE state (RFC 1939 §6): removes the marked messages. Returns how many could not be removed. */
  async commit(): Promise<number> {
    let failures = 0;
    for (const number of this.deleted) {
      const message = this.messages[number - 1];
      if (!message) continue;
      await this.maildir.remove(this.mailbox, message.file).catch(() => {
        failures += 1;
      });
    }
    this.deleted.clear();
    return failures;
  }
}
