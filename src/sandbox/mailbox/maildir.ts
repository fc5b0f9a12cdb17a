/**
 * The sandbox mailbox's message store: one directory per mailbox, one file per message,
 * `<root>/<mailbox>/new/<unique>.eml`, in the spirit of Maildir (write elsewhere, then link into `new/`,
 * so a reader never sees half a message). A message is streamed to disk once and hard-linked into every
 * recipient's mailbox, so its size never matters to memory.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { link, mkdir, open, readdir, rm, stat, unlink, copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** One stored message. */
export interface StoredMessage {
  /** File name inside `<mailbox>/new/`; also the POP3 UIDL (RFC 1939 §7 allows 0x21–0x7E, ≤ 70 octets). */
  file: string;
  size: number;
  receivedAt: Date;
}

const MESSAGE_SUFFIX = '.eml';
// Where a message is written before it is linked into mailboxes; a name no mailbox address can take.
const INCOMING_DIR = '.incoming';
// What an address may look like to become a directory name: no separators, no "..", no leading dot.
const SAFE_MAILBOX = /^[a-z0-9!#$%&'*+=?^_`{|}~-][a-z0-9.!#$%&'*+=?^_`{|}~-]*@[a-z0-9-]+(\.[a-z0-9-]+)*$/;
const MAX_MAILBOX_LENGTH = 254; // RFC 5321 §4.5.3.1.3 path limit, less the angle brackets

/**
 * The directory name for a mailbox address (lower-cased), or null when the address cannot safely be one.
 * Addresses are case-insensitive in practice (Exchange treats them so), so `Scanner@x` and `scanner@x` share a mailbox.
 */
export function mailboxDirectoryName(address: string): string | null {
  const name = address.toLowerCase();
  if (name.length > MAX_MAILBOX_LENGTH || !SAFE_MAILBOX.test(name) || name.includes('..')) return null;
  return name;
}

let sequence = 0;

/** A name that sorts in arrival order (time, then a per-process counter) and is unique across processes. */
function uniqueMessageName(): string {
  sequence = (sequence + 1) % 1_000_000;
  const time = Date.now().toString().padStart(14, '0');
  return `${time}.${sequence.toString().padStart(6, '0')}.${process.pid}.${randomBytes(4).toString('hex')}${MESSAGE_SUFFIX}`;
}

/** The store under one root directory. */
export class Maildir {
  constructor(readonly root: string) {}

  /**
   * Writes `message` to disk (fsynced) and links it into the `new/` directory of every mailbox in
   * `mailboxes` (directory names from `mailboxDirectoryName`). Returns the file name; the source stream is
   * consumed either way. If `keep()` says no once the stream has ended (e.g. it went over the size limit),
   * nothing is stored and null is returned.
   */
  async deliver(message: Readable, mailboxes: readonly string[], keep: () => boolean = () => true): Promise<string | null> {
    const incoming = join(this.root, INCOMING_DIR);
    await mkdir(incoming, { recursive: true });
    const file = uniqueMessageName();
    const staged = join(incoming, file);
    try {
      await pipeline(message, createWriteStream(staged, { flags: 'wx', mode: 0o600 }));
      // A 250 after DATA promises the message is safe (RFC 5321 §4.1.1.4); honour it as the relay does.
      // fsync through a second descriptor: it flushes the file, not the descriptor, and a FileHandle's
      // own write stream would keep the handle from closing.
      const handle = await open(staged, 'r');
      await handle.sync().finally(() => handle.close());
    } catch (err) {
      await unlink(staged).catch(() => undefined);
      throw err;
    }
    try {
      if (!keep()) return null;
      for (const mailbox of new Set(mailboxes)) await this.linkInto(staged, mailbox, file);
      return file;
    } finally {
      await unlink(staged).catch(() => undefined);
    }
  }

  /** Messages in a mailbox, oldest first. A mailbox nobody has written to is empty. */
  async list(mailbox: string): Promise<StoredMessage[]> {
    const dir = this.newDirectory(mailbox);
    let names: string[];
    try {
      names = (await readdir(dir)).filter((n) => n.endsWith(MESSAGE_SUFFIX)).sort();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const messages: StoredMessage[] = [];
    for (const file of names) {
      // A message deleted by another session between readdir and stat is simply gone.
      const info = await stat(join(dir, file)).catch(() => null);
      if (info?.isFile()) messages.push({ file, size: info.size, receivedAt: info.mtime });
    }
    return messages;
  }

  /**
   * A stream of one message's bytes, or null when the message is gone (deleted by another session).
   * The file is opened here, so the caller can answer "no such message" before it promises any bytes.
   * `range` limits it to bytes `start`..`end` (both inclusive).
   */
  async read(mailbox: string, file: string, range?: { start: number; end: number }): Promise<Readable | null> {
    try {
      const handle = await open(join(this.newDirectory(mailbox), file), 'r');
      // `end` is inclusive, as in fs.createReadStream.
      return handle.createReadStream({ highWaterMark: 64 * 1024, ...range });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  /** Deletes one message; a message already gone counts as deleted. */
  async remove(mailbox: string, file: string): Promise<void> {
    await rm(join(this.newDirectory(mailbox), file), { force: true });
  }

  private newDirectory(mailbox: string): string {
    const name = mailboxDirectoryName(mailbox);
    // Callers check names where they come in (RCPT TO, login); reaching here with a bad one is a bug.
    if (name === null) throw new RangeError(`not a usable sandbox mailbox name: ${JSON.stringify(mailbox)}`);
    return join(this.root, name, 'new');
  }

  private async linkInto(staged: string, mailbox: string, file: string): Promise<void> {
    const dir = this.newDirectory(mailbox);
    await mkdir(dir, { recursive: true });
    const target = join(dir, file);
    try {
      await link(staged, target);
    } catch (err) {
      // Some file systems (and some container mounts) refuse hard links; a copy is the same message.
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EPERM' && code !== 'EXDEV' && code !== 'ENOTSUP') throw err;
      await copyFile(staged, target);
    }
  }
}
