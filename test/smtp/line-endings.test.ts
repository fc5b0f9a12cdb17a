import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { CrlfNormalizer } from '../../src/smtp/line-endings.js';

async function normalise(chunks: string[]): Promise<string> {
  return text(Readable.from(chunks.map((c) => Buffer.from(c, 'latin1'))).pipe(new CrlfNormalizer()));
}

test('bare LF and bare CR become CRLF; CRLF stays', async () => {
  assert.equal(await normalise(['a\nb\r\nc\rd\n']), 'a\r\nb\r\nc\r\nd\r\n');
  assert.equal(await normalise(['\n\n\r\r\r\n']), '\r\n\r\n\r\n\r\n\r\n');
});

test('a CR at a chunk boundary is resolved with the next chunk', async () => {
  assert.equal(await normalise(['a\r', '\nb']), 'a\r\nb');
  assert.equal(await normalise(['a\r', 'b']), 'a\r\nb');
  assert.equal(await normalise(['a\r']), 'a\r\n');
  assert.equal(await normalise(['a\r', '\r', '\n']), 'a\r\n\r\n');
});

test('every split of a mixed input gives the same output', async () => {
  const input = 'x\n.\ny\r.\rz\n.\r\nw\r\n\r\n..\n';
  const expected = await normalise([input]);
  assert.equal(expected, 'x\r\n.\r\ny\r\n.\r\nz\r\n.\r\nw\r\n\r\n..\r\n');
  for (let cut = 0; cut <= input.length; cut++) {
    assert.equal(await normalise([input.slice(0, cut), input.slice(cut)]), expected, `cut at ${cut}`);
  }
});

test('a large LF-only chunk comes out whole, one CR per line added', async () => {
  const big = 'line of a scan\n'.repeat(400_000); // 6 MB in one chunk (speed: bench/, not here)
  const out = await normalise([big]);
  assert.equal(out.length, big.length + 400_000);
  assert.ok(out.endsWith('scan\r\n'));
});

test('a chunk that is already CRLF goes on as the same buffer, not a copy', async () => {
  const chunk = Buffer.from('Subject: a\r\n\r\nline one\r\nline two\r\n');
  const normalizer = new CrlfNormalizer();
  const out: Buffer[] = [];
  normalizer.on('data', (d: Buffer) => out.push(d));
  normalizer.end(chunk);
  await new Promise((r) => normalizer.on('end', r));
  assert.equal(out.length, 1);
  assert.equal(out[0], chunk, 'the very same Buffer object');
});
