/**
 * The header editor holds only the header: body chunks go on as the same buffers (no copy), and a header that
 * arrives in many small pieces is found and edited with the same result as in one piece.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HeaderBlockEditor } from '../../src/smtp/header-block.js';

async function run(editor: HeaderBlockEditor, chunks: Buffer[]): Promise<Buffer[]> {
  const out: Buffer[] = [];
  editor.on('data', (d: Buffer) => out.push(d));
  for (const c of chunks) editor.write(c);
  editor.end();
  await new Promise((r) => editor.on('end', r));
  return out;
}

const edit = (h: string) => h.replace(/^Subject: .*$/m, 'Subject: edited');

test('after the header, body chunks are passed on as the very same buffers', async () => {
  const head = Buffer.from('From: a@b\r\nSubject: scan\r\n\r\nfirst body bytes\r\n');
  const body = [Buffer.alloc(64 * 1024, 0x41), Buffer.alloc(64 * 1024, 0x42)];
  const out = await run(new HeaderBlockEditor(edit, 'Received: by relay\r\n'), [head, ...body]);
  assert.equal(Buffer.concat(out).toString('latin1'), `Received: by relay\r\nFrom: a@b\r\nSubject: edited\r\n\r\nfirst body bytes\r\n${'A'.repeat(65536)}${'B'.repeat(65536)}`);
  assert.equal(out.at(-2), body[0]);
  assert.equal(out.at(-1), body[1]);
});

test('a header cut into 1-byte pieces (the blank line split anywhere) is edited as if it came whole', async () => {
  const message = Buffer.from(`From: a@b\r\n${'X-Long: '.padEnd(4000, 'y')}\r\nSubject: scan\r\n\r\nbody\r\n`);
  const whole = Buffer.concat(await run(new HeaderBlockEditor(edit), [message])).toString('latin1');
  assert.match(whole, /Subject: edited\r\n\r\nbody\r\n$/);
  const pieces = [...message].map((b) => Buffer.from([b]));
  assert.equal(Buffer.concat(await run(new HeaderBlockEditor(edit), pieces)).toString('latin1'), whole);
  for (let cut = message.length - 12; cut < message.length; cut += 1) {
    const two = [message.subarray(0, cut), message.subarray(cut)];
    assert.equal(Buffer.concat(await run(new HeaderBlockEditor(edit), two)).toString('latin1'), whole, `cut at ${cut}`);
  }
});
