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
    if (this.done) return cb(null, chunk);
    this.head.push(chunk);
    this.headBytes += chunk.length;
    const joined = this.head.length === 1 ? chunk : Buffer.concat(this.head);
    // Search from a little before the new chunk, so a boundary split inside CRLFCRLF is found.
    const from = Math.max(0, this.headBytes - chunk.length - 3);
    const end = joined.indexOf(END_OF_HEADER, from);
    if (end !== -1 && end <= this.maxHeaderBytes) {
      this.finish(this.edit(joined.subarray(0, end).toString('latin1')), joined.subarray(end));
      return cb();
    }
    // Over the limit whatever TCP's cuts: a header ending within it would have been found by now (found by a
    // fuzz property: a 300-byte header was edited in one chunk and passed through in two).
    if (end !== -1 || joined.length >= this.maxHeaderBytes + END_OF_HEADER.length) {
      this.finish(null, joined);
      return cb();
    }
    this.head = [joined];
    cb();
  }

  override _flush(cb: TransformCallback): void {
    if (!this.done) {
      // No blank line at all: the whole message is header (legal, if odd).
      const joined = Buffer.concat(this.head);
      this.finish(this.edit(joined.toString('latin1').replace(/\r\n$/, '')), Buffer.from(joined.toString('latin1').endsWith('\r\n') ? '\r\n' : ''));
    }
    cb();
  }

  private finish(header: string | null, rest: Buffer): void {
    this.done = true;
    this.head = [];
    if (this.prefix) this.push(Buffer.from(this.prefix, 'latin1'));
    if (header !== null) this.push(Buffer.from(header, 'latin1'));
    this.push(rest);
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
