/**
 * The SMTP listener's header editor under generated messages cut at random: the output never depends on where
 * the stream was cut, the body passes through byte for byte, the edit sees the header block only, and a header
 * with no end (or over the limit) is passed through unedited rather than buffered.
 */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import fc from 'fast-check';
import { HeaderBlockEditor } from '../../../src/smtp/header-block.js';
import type { FuzzTarget } from '../fuzz-target.js';
import { chunked } from './generators.js';

const LIMIT = 128;
const field = fc.tuple(fc.stringMatching(/^[A-Za-z-]{1,12}$/), fc.stringMatching(/^[ -~]{0,60}$/)).map(([n, v]) => `${n}: ${v}\r\n`);
const message = fc
  .tuple(fc.array(fc.oneof({ weight: 8, arbitrary: field }, { weight: 1, arbitrary: fc.constantFrom('\r\n', ' folded\r\n', '\n') }), { maxLength: 14 }), fc.boolean(), fc.uint8Array({ maxLength: 400 }))
  .map(([fields, blank, body]) => Buffer.concat([Buffer.from(fields.join('') + (blank ? '\r\n' : ''), 'latin1'), Buffer.from(body)]));

const PREFIX = 'Received: by fuzz\r\n';
const edit = (header: string) => `X-Edited: yes\r\n${header}`;

async function run(chunks: Buffer[]): Promise<Buffer> {
  return buffer(Readable.from(chunks).pipe(new HeaderBlockEditor(edit, PREFIX, LIMIT)));
}

/** What the editor must produce for `whole`, from its contract. */
function expected(whole: Buffer): Buffer {
  const end = whole.indexOf('\r\n\r\n');
  const latin1 = (b: Buffer) => b.toString('latin1');
  if (end >= 0 && end <= LIMIT) return Buffer.from(PREFIX + edit(latin1(whole.subarray(0, end))) + latin1(whole.subarray(end)), 'latin1');
  if (end >= 0 || whole.length >= LIMIT + 4) return Buffer.concat([Buffer.from(PREFIX), whole]);
  // No blank line: the whole message is header.
  const text = latin1(whole);
  return Buffer.from(PREFIX + edit(text.replace(/\r\n$/, '')) + (text.endsWith('\r\n') ? '\r\n' : ''), 'latin1');
}

async function checkOne(chunks: Buffer[]): Promise<void> {
  const out = await run(chunks);
  assert.ok(out.equals(expected(Buffer.concat(chunks))), `output for ${chunks.length} chunk(s) is not what the contract says`);
}

export const headerEditorTarget: FuzzTarget<Buffer[]> = {
  name: 'header-editor',
  async setup() {
    return { arbitrary: chunked(message), check: checkOne, stop: async () => undefined };
  },
};
