/**
 * IMAP unique identifiers (RFC 3501 §2.3.1.1) for the sandbox mailbox's INBOX. Files carry no number,
 * so UIDs are handed out in memory, ascending in the order this process first sees each file. They hold for
 * the life of the process; UIDVALIDITY is the process's start time, so after a restart clients know that
 * old UIDs mean nothing (exactly what the RFC asks when UIDs cannot be kept).
 */
import type { StoredMessage } from './maildir.js';

/** One message of a selected INBOX. */
export interface ImapMessage extends StoredMessage {
  /** Message sequence number, from 1. */
  sequence: number;
  uid: number;
}

/** A SELECTed INBOX as one session sees it: fixed at SELECT (no untagged EXISTS/EXPUNGE updates). */
export interface ImapMailboxView {
  uidValidity: number;
  uidNext: number;
  messages: ImapMessage[];
}

/** UIDs for every mailbox of one sandbox mailbox process. */
export class ImapUidRegistry {
  readonly uidValidity = Math.floor(Date.now() / 1000);
  private readonly mailboxes = new Map<string, { next: number; byFile: Map<string, number> }>();

  /** Numbers `stored` (a mailbox listing, oldest first) and forgets files that are gone. */
  view(mailbox: string, stored: readonly StoredMessage[]): ImapMailboxView {
    let state = this.mailboxes.get(mailbox);
    if (!state) {
      state = { next: 1, byFile: new Map() };
      this.mailboxes.set(mailbox, state);
    }
    const present = new Set(stored.map((m) => m.file));
    for (const file of state.byFile.keys()) if (!present.has(file)) state.byFile.delete(file);
    for (const message of stored) {
      if (!state.byFile.has(message.file)) state.byFile.set(message.file, state.next++);
    }
    const messages = stored
      .map((m) => ({ ...m, uid: state.byFile.get(m.file)!, sequence: 0 }))
      .sort((a, b) => a.uid - b.uid);
    messages.forEach((m, i) => {
      m.sequence = i + 1;
    });
    return { uidValidity: this.uidValidity, uidNext: state.next, messages };
  }
}
