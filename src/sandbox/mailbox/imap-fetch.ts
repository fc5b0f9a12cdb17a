/**
 * Writes untagged FETCH responses (RFC 3501 §7.4.2) for the sandbox mailbox. Message bodies go out as
 * literals streamed from their files with the socket's back-pressure, so a message's size never matters.
 */
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Maildir } from './maildir.js';
import type { ImapMessage } from './imap-uids.js';
import { imapDateTime, type FetchItem } from './imap-syntax.js';

/** What happened to a FETCH: how many messages were answered and how many had vanished from disk. */
export interface FetchOutcome {
  answered: number;
  vanished: number;
}

type BodyItem = Extract<FetchItem, { kind: 'body' }>;

/** Bytes a body item covers: the whole message, or the `<start.length>` slice of it (RFC 3501 §6.4.5). */
function sliceOf(item: BodyItem, size: number): { start: number; length: number } {
  if (!item.partial) return { start: 0, length: size };
  const start = Math.min(item.partial.start, size);
  const length = Math.min(item.partial.length ?? size - start, size - start);
  return { start, length };
}

/** Writes, honouring back-pressure. */
function write(socket: Socket, data: string): Promise<void> {
  if (socket.write(data)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onDrain = () => { socket.off('close', onClose); resolve(); };
    const onClose = () => { socket.off('drain', onDrain); reject(new Error('connection closed while writing')); };
    socket.once('drain', onDrain);
    socket.once('close', onClose);
  });
}

/**
 * Answers FETCH for `messages` with `items`. `withUid` adds UID to every response, as UID FETCH must
 * (RFC 3501 §6.4.8). A message whose file vanished (a POP3 session deleted it) is left out and counted.
 */
export async function writeFetchResponses(
  socket: Socket,
  maildir: Maildir,
  mailbox: string,
  messages: readonly ImapMessage[],
  items: readonly FetchItem[],
  withUid: boolean,
): Promise<FetchOutcome> {
  const outcome: FetchOutcome = { answered: 0, vanished: 0 };
  const wanted = withUid && !items.some((i) => i.kind === 'UID') ? [{ kind: 'UID' } as const, ...items] : items;
  for (const message of messages) {
    // Open every body first: once "* n FETCH (" is written, the response must be completed.
    const bodies = new Map<BodyItem, Readable | null>();
    let gone = false;
    for (const item of wanted) {
      if (item.kind !== 'body') continue;
      const { start, length } = sliceOf(item, message.size);
      const stream = length === 0 ? null : await maildir.read(mailbox, message.file, { start, end: start + length - 1 });
      if (length > 0 && stream === null) gone = true;
      bodies.set(item, stream);
    }
    if (gone) {
      for (const stream of bodies.values()) stream?.destroy();
      outcome.vanished += 1;
      continue;
    }
    await write(socket, `* ${message.sequence} FETCH (`);
    let separator = '';
    for (const item of wanted) {
      if (item.kind === 'body') {
        const { start, length } = sliceOf(item, message.size);
        const label = item.partial ? `${item.label}<${start}>` : item.label;
        await write(socket, `${separator}${label} {${length}}\r\n`);
        const stream = bodies.get(item);
        if (stream) await pipeline(stream, socket, { end: false });
      } else {
        await write(socket, `${separator}${item.kind} ${simpleValue(item.kind, message)}`);
      }
      separator = ' ';
    }
    await write(socket, ')\r\n');
    outcome.answered += 1;
  }
  return outcome;
}

function simpleValue(kind: 'UID' | 'FLAGS' | 'INTERNALDATE' | 'RFC822.SIZE', message: ImapMessage): string {
  switch (kind) {
    case 'UID':
      return String(message.uid);
    case 'FLAGS':
      // The sandbox keeps no flags (the mailbox is selected read-only).
      return '()';
    case 'INTERNALDATE':
      return imapDateTime(message.receivedAt);
    case 'RFC822.SIZE':
      return String(message.size);
  }
}
