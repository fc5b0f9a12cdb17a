/**
 * The bounded line reader: lines split anywhere across chunks, CRLF and bare LF, counted byte runs for literals,
 * overlong lines refused without buffering more, back-pressure on a flood, EOF, and the hand-back of unread bytes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { isRelayError } from '../../src/errors.js';
import { LineReader } from '../../src/transport/line-reader.js';

test('lines split across chunks, CRLF or bare LF, UTF-8 decoded', async () => {
  const source = new PassThrough();
  const reader = new LineReader(source, { maxLineBytes: 100 });
  source.write('a1 LOG');
  source.write('IN x y\r');
  source.write('\nsecond\nthird wörd\r\n');
  assert.equal(await reader.readLine(), 'a1 LOGIN x y');
  assert.equal(await reader.readLine(), 'second');
  assert.equal(await reader.readLine(), 'third wörd');
});

test('readBytes returns exactly n bytes, then lines go on', async () => {
  const source = new PassThrough();
  const reader = new LineReader(source, { maxLineBytes: 100 });
  source.write('{5}\r\nab');
  assert.equal(await reader.readLine(), '{5}');
  const bytes = reader.readBytes(5);
  source.write('c\r\ndrest\r\n');
  assert.deepEqual(await bytes, Buffer.from('abc\r\nd'.slice(0, 5)));
  assert.equal(await reader.readLine(), 'drest');
});

test('an overlong line is refused with LINE_TOO_LONG as soon as it passes the limit, even without a line ending', async () => {
  const source = new PassThrough();
  const reader = new LineReader(source, { maxLineBytes: 10 });
  const line = reader.readLine();
  source.write('x'.repeat(12));
  await assert.rejects(line, (err) => isRelayError(err, 'LINE_TOO_LONG'));
  const exact = new LineReader(new PassThrough().end('y'.repeat(10) + '\r\n'), { maxLineBytes: 10 });
  assert.equal(await exact.readLine(), 'y'.repeat(10));
  const over = new LineReader(new PassThrough().end('y'.repeat(11) + '\r\n'), { maxLineBytes: 10 });
  await assert.rejects(over.readLine(), (err) => isRelayError(err, 'LINE_TOO_LONG'));
});

test('EOF: null for a line or bytes that never complete', async () => {
  const source = new PassThrough();
  const reader = new LineReader(source, { maxLineBytes: 100 });
  source.end('partial');
  assert.equal(await reader.readLine(), null);
  const second = new LineReader(new PassThrough().end('abc'), { maxLineBytes: 100 });
  assert.equal(await second.readBytes(10), null);
});

test('a flood of pipelined lines pauses the source instead of filling memory', async () => {
  const source = new PassThrough({ highWaterMark: 1024 });
  const reader = new LineReader(source, { maxLineBytes: 100, maxBufferedBytes: 400 });
  let accepted = 0;
  for (let i = 0; i < 1000; i++) {
    if (!source.write('NOOP NOOP NOOP NOOP\r\n')) break;
    accepted += 1;
  }
  await new Promise((r) => setImmediate(r));
  assert.ok(source.isPaused(), 'the source is paused');
  assert.ok(reader.buffered <= 400 + 1024, `buffered ${reader.buffered}`);
  assert.ok(accepted < 1000, 'the writer saw back-pressure');
  assert.equal(await reader.readLine(), 'NOOP NOOP NOOP NOOP');
});

test('release() hands back what was not consumed and stops reading', async () => {
  const source = new PassThrough();
  const reader = new LineReader(source, { maxLineBytes: 100 });
  source.write('a1 LOGIN u p\r\nb1 NOOP\r\n');
  assert.equal(await reader.readLine(), 'a1 LOGIN u p');
  assert.equal(reader.release().toString(), 'b1 NOOP\r\n');
  assert.equal(source.listenerCount('data'), 0);
  assert.equal(await reader.readLine(), null);
});
