/**
 * Splits a client's byte stream into command lines for the hand-written POP3 and IMAP servers, with a
 * length limit so a client that never sends a line end cannot make us buffer without bound.
 * Pulling lines one at a time gives back-pressure for free: while a command is being answered nothing is
 * read from the socket, and pipelined commands (RFC 2449 §6.6) wait in the socket's buffer.
 */
import type { Readable } from 'node:stream';

/** One line from the client, without its line end; or a marker for a line that was too long and was dropped. */
export type CommandLine = { kind: 'line'; text: string } | { kind: 'overlong' };

/**
 * Lines from `input`, ended by CRLF (a bare LF is accepted too: some clients send one, and it cannot be
 * mistaken for anything else). Text is decoded as Latin-1 so every byte maps to one character and the
 * protocol parsers see exactly what was sent. A line longer than `maxLineBytes` yields `overlong` once and
 * the rest of it, up to the next line end, is discarded.
 */
export async function* commandLines(input: Readable, maxLineBytes: number): AsyncGenerator<CommandLine> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let discarding = false;
  // When the session stops reading (QUIT, LOGOUT) the socket must stay open to flush the last reply;
  // a plain `for await` would destroy it.
  for await (const chunk of input.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
    let start = 0;
    while (start < chunk.length) {
      const lf = chunk.indexOf(0x0a, start);
      const end = lf === -1 ? chunk.length : lf;
      if (!discarding) {
        pending.push(chunk.subarray(start, end));
        pendingBytes += end - start;
        if (pendingBytes > maxLineBytes) {
          discarding = true;
          pending = [];
          pendingBytes = 0;
          yield { kind: 'overlong' };
        }
      }
      if (lf === -1) break;
      if (discarding) {
        discarding = false;
      } else {
        const line = Buffer.concat(pending);
        pending = [];
        pendingBytes = 0;
        const withoutCr = line.length > 0 && line[line.length - 1] === 0x0d ? line.subarray(0, -1) : line;
        yield { kind: 'line', text: withoutCr.toString('latin1') };
      }
      start = lf + 1;
    }
  }
}
