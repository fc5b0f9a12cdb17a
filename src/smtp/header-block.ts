/**
 * Lets the relay edit a message's header (trace line, sender rewrite) while the body streams through
 * untouched. Only the header block is held in memory, and it is bounded: RFC 5322 headers of real scans
 * are a few KB; a device that sends more than `maxHeaderBytes` without a blank line gets its message
 * passed through unedited rather than buffered.
 */
import { Transform, type TransformCallback } from 'node:stream';

const END_OF_HEADER = Buffer.from('\r\n\r\n');

export class HeaderBlockEditor extends Transform {
  private head: Buffer[] = [];
  private headBytes = 0;
  /** The last (up to) 3 bytes of `head`: a CRLFCRLF split across chunks starts in them. */
  private tail = Buffer.alloc(0);
  private done = false;

  /**
   * @param edit receives the header block (without the blank line, lines joined by CRLF) and returns the new one.
   * @param prefix text to put before everything even when the header cannot be edited (a Received: line).
   */
  constructor(
    private readonly edit: (header: string) => string,
    private readonly prefix = '',
    private readonly maxHeaderBytes = 256 * 1024,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.done) return cb(null, chunk); // the body: passed on as it came, never copied or searched
    // Each byte is searched once: the new chunk, plus the seam with the 3 bytes before it. Nothing is joined
    // until the header's end is known (joining on every chunk was quadratic in a header cut into many pieces).
    let end = -1;
    if (this.tail.length > 0) {
      const at = Buffer.concat([this.tail, chunk.subarray(0, END_OF_HEADER.length - 1)]).indexOf(END_OF_HEADER);
      if (at !== -1) end = this.headBytes - this.tail.length + at;
    }
    if (end === -1) {
      const at = chunk.indexOf(END_OF_HEADER);
      if (at !== -1) end = this.headBytes + at;
    }
    this.head.push(chunk);
    this.headBytes += chunk.length;
    if (end !== -1 && end <= this.maxHeaderBytes) {
      const [header, rest] = this.split(end);
      this.finish(this.edit(header.toString('latin1')), rest);
      return cb();
    }
    // Over the limit whatever TCP's cuts: a header ending within it would have been found by now (found by a
    // fuzz property: a 300-byte header was edited in one chunk and passed through in two).
    if (end !== -1 || this.headBytes >= this.maxHeaderBytes + END_OF_HEADER.length) {
      this.finish(null, this.head);
      return cb();
    }
    this.tail = Buffer.concat([this.tail, chunk.subarray(-(END_OF_HEADER.length - 1))]).subarray(-(END_OF_HEADER.length - 1));
    cb();
  }

  override _flush(cb: TransformCallback): void {
    if (!this.done) {
      // No blank line at all: the whole message is header (legal, if odd); at most maxHeaderBytes here.
      const joined = Buffer.concat(this.head);
      this.finish(this.edit(joined.toString('latin1').replace(/\r\n$/, '')), [Buffer.from(joined.toString('latin1').endsWith('\r\n') ? '\r\n' : '')]);
    }
    cb();
  }

  /** The first `at` bytes of `head` as one buffer (the header, copied once), and the rest as views. */
  private split(at: number): [Buffer, Buffer[]] {
    const header: Buffer[] = [];
    const rest: Buffer[] = [];
    let offset = 0;
    for (const piece of this.head) {
      const cut = Math.min(Math.max(at - offset, 0), piece.length);
      if (cut > 0) header.push(piece.subarray(0, cut));
      if (cut < piece.length) rest.push(cut === 0 ? piece : piece.subarray(cut));
      offset += piece.length;
    }
    return [header.length === 1 ? header[0]! : Buffer.concat(header), rest];
  }

  private finish(header: string | null, rest: Buffer[]): void {
    this.done = true;
    this.head = [];
    this.tail = Buffer.alloc(0);
    if (this.prefix) this.push(Buffer.from(this.prefix, 'latin1'));
    if (header !== null) this.push(Buffer.from(header, 'latin1'));
    for (const piece of rest) this.push(piece);
  }
}

/** Header fields of a block as [name, full text incl. folded continuation lines]. */
export function splitHeaderFields(header: string): Array<{ name: string; text: string }> {
  const fields: Array<{ name: string; text: string }> = [];
  for (const line of header.split('\r\n')) {
    const last = fields[fields.length - 1];
    if ((line.startsWith(' ') || line.startsWith('\t')) && last) last.text += `\r\n${line}`;
    else fields.push({ name: line.slice(0, Math.max(0, line.indexOf(':'))).trim().toLowerCase(), text: line });
  }
  return fields;
}
