/**
 * Encodes a stored message as a POP3 multi-line response body (RFC 1939 §3): every line that starts with
 * "." gets one more, and the response ends with ".CRLF". For TOP (RFC 1939 §7) it stops after the header,
 * the blank line and the first N body lines. A stream transform, so a message of any size passes through
 * in 64 KB pieces with the socket's back-pressure.
 */
import { Transform, type TransformCallback } from 'node:stream';

const LF = 0x0a;
const CR = 0x0d;
const DOT = 0x2e;
const STUFFED_DOT = Buffer.from('.');
const CRLF = Buffer.from('\r\n');
const TERMINATOR = Buffer.from('.\r\n');

export interface MultilineOptions {
  /** TOP: how many body lines to send after the header and the blank line; all of them when absent. */
  bodyLines?: number;
}

/** Dot-stuffs (and, for TOP, truncates) a message, then appends the terminating ".CRLF". */
export class Pop3MultilineEncoder extends Transform {
  private atLineStart = true;
  private lineBytes = 0;
  private lineStartsWithCr = false;
  private inHeader = true;
  private bodyLinesLeft: number | undefined;
  private finished = false;

  constructor(opts: MultilineOptions = {}) {
    super();
    this.bodyLinesLeft = opts.bodyLines;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const out: Buffer[] = [];
    let pos = 0;
    while (!this.finished && pos < chunk.length) {
      const lf = chunk.indexOf(LF, pos);
      const end = lf === -1 ? chunk.length : lf + 1;
      if (this.atLineStart) {
        if (chunk[pos] === DOT) out.push(STUFFED_DOT);
        this.lineStartsWithCr = chunk[pos] === CR;
      }
      out.push(chunk.subarray(pos, end));
      this.lineBytes += end - pos;
      this.atLineStart = lf !== -1;
      if (lf !== -1) this.lineEnded();
      pos = end;
    }
    callback(null, out.length ? Buffer.concat(out) : undefined);
  }

  override _flush(callback: TransformCallback): void {
    // The terminator must start a line; a stored message need not end with one.
    if (!this.atLineStart) this.push(CRLF);
    this.push(TERMINATOR);
    callback();
  }

  /** Bookkeeping for TOP: the header ends at the first empty line (RFC 5322 §2.1). */
  private lineEnded(): void {
    const blank = this.lineBytes === 1 || (this.lineBytes === 2 && this.lineStartsWithCr);
    this.lineBytes = 0;
    if (this.bodyLinesLeft === undefined) return;
    if (this.inHeader) {
      if (blank) {
        this.inHeader = false;
        this.finished = this.bodyLinesLeft === 0;
      }
      return;
    }
    this.bodyLinesLeft -= 1;
    this.finished = this.bodyLinesLeft <= 0;
  }
}
