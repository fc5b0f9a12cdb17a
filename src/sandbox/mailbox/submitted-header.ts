/**
 * Keeps the header block of a message streaming past (the body passes untouched), so the sandbox's SMTP
 * submission can check the From header after the data the way Exchange does (SendAsDenied).
 */
import { Transform, type TransformCallback } from 'node:stream';
import { splitHeaderFields } from '../../smtp/header-block.js';

/** Headers of real scans are a few KB; past this the message is treated as having no readable From. */
const MAX_HEADER_BYTES = 256 * 1024;

export class HeaderCapture extends Transform {
  private head = '';
  private complete = false;

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (!this.complete && this.head.length < MAX_HEADER_BYTES) {
      this.head += chunk.toString('latin1');
      const end = this.head.search(/\r?\n\r?\n/);
      if (end !== -1) {
        this.head = this.head.slice(0, end);
        this.complete = true;
      }
    }
    cb(null, chunk);
  }

  /** The address in the From header (`"Name" <a@b>` or `a@b`), lower-cased; null when there is none. */
  fromAddress(): string | null {
    const field = splitHeaderFields(this.head.replace(/\r?\n/g, '\r\n')).find((f) => f.name === 'from');
    if (!field) return null;
    const value = field.text.slice(field.text.indexOf(':') + 1).replace(/\r\n[ \t]+/g, ' ').trim();
    const angle = /<([^<>]*)>\s*$/.exec(value);
    return (angle ? angle[1]! : value).trim().toLowerCase() || null;
  }
}
