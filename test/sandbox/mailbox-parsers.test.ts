/**
 * Sandbox mailbox, the pure parts under hostile input: the command-line splitter, the POP3 multi-line
 * encoder (dot-stuffing, TOP) and the address → directory mapping.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { commandLines, type CommandLine } from '../../src/sandbox/mailbox/command-lines.js';
import { Pop3MultilineEncoder, type MultilineOptions } from '../../src/sandbox/mailbox/pop3-multiline.js';
import { mailboxDirectoryName } from '../../src/sandbox/mailbox/maildir.js';

async function linesOf(chunks: Array<string | Buffer>, max = 16): Promise<CommandLine[]> {
  const out: CommandLine[] = [];
  for await (const line of commandLines(Readable.from(chunks.map((c) => Buffer.from(c))), max)) out.push(line);
  return out;
}

const line = (text: string): CommandLine => ({ kind: 'line', text });
const overlong: CommandLine = { kind: 'overlong' };

test('command lines: CRLF or bare LF, split anywhere across chunks', async () => {
  assert.deepEqual(await linesOf(['CAPA\r\nST', 'AT\r', '\nNOOP\n']), [line('CAPA'), line('STAT'), line('NOOP')]);
  assert.deepEqual(await linesOf('RETR 1\r\n'.split('')), [line('RETR 1')]);
  assert.deepEqual(await linesOf(['\r\n\r\n']), [line(''), line('')]);
  assert.deepEqual(await linesOf(['no line end']), [], 'an unterminated line is not a command');
});

test('command lines: an overlong line is reported once and skipped up to its end, wherever the chunks split', async () => {
  assert.deepEqual(await linesOf(['x'.repeat(40) + '\r\nNOOP\r\n']), [overlong, line('NOOP')]);
  assert.deepEqual(await linesOf(['x'.repeat(10), 'x'.repeat(10), 'x'.repeat(1000), 'x\r', '\nQUIT\r\n']), [overlong, line('QUIT')]);
  assert.deepEqual(await linesOf(['x'.repeat(15) + '\r\n']), [line('x'.repeat(15))], 'the limit counts the CR, not the LF');
  assert.deepEqual(await linesOf(['\u00ff\u0000\r\n']), [line(Buffer.from('\u00ff\u0000').toString('latin1'))], 'bytes map one to one');
});

async function encode(message: string | Buffer, opts: MultilineOptions = {}, chunkSize = 0): Promise<string> {
  const bytes = Buffer.from(message);
  const chunks = chunkSize ? Array.from({ length: Math.ceil(bytes.length / chunkSize) }, (_, i) => bytes.subarray(i * chunkSize, (i + 1) * chunkSize)) : [bytes];
  const out: Buffer[] = [];
  for await (const piece of Readable.from(chunks).pipe(new Pop3MultilineEncoder(opts))) out.push(piece as Buffer);
  return Buffer.concat(out).toString('latin1');
}

test('multi-line encoding: dot-stuffing (RFC 1939 §3) at every line start, whatever the chunking', async () => {
  const message = '.\r\n..\r\nok\r\n.x\r\nend.\r\n.';
  const expected = '..\r\n...\r\nok\r\n..x\r\nend.\r\n..\r\n.\r\n';
  for (const chunkSize of [0, 1, 2, 3, 5]) assert.equal(await encode(message, {}, chunkSize), expected, `chunks of ${chunkSize}`);
  assert.equal(await encode(''), '.\r\n', 'an empty message is just the terminator');
  assert.equal(await encode('a\r\n'), 'a\r\n.\r\n');
  assert.equal(await encode('no final line end'), 'no final line end\r\n.\r\n');
  assert.equal(await encode('bare\n.lf\n'), 'bare\n..lf\n.\r\n');
});

test('multi-line encoding for TOP (RFC 1939 §7): header, blank line, then N body lines', async () => {
  const message = 'A: 1\r\nB: 2\r\n\r\n.one\r\ntwo\r\nthree\r\n';
  for (const chunkSize of [0, 1, 4]) {
    assert.equal(await encode(message, { bodyLines: 0 }, chunkSize), 'A: 1\r\nB: 2\r\n\r\n.\r\n');
    assert.equal(await encode(message, { bodyLines: 2 }, chunkSize), 'A: 1\r\nB: 2\r\n\r\n..one\r\ntwo\r\n.\r\n');
    assert.equal(await encode(message, { bodyLines: 99 }, chunkSize), 'A: 1\r\nB: 2\r\n\r\n..one\r\ntwo\r\nthree\r\n.\r\n');
  }
  assert.equal(await encode('A: 1\r\nno body', { bodyLines: 1 }), 'A: 1\r\nno body\r\n.\r\n', 'a message with no blank line is all header');
});

test('mailbox directory names: lower-cased addresses, nothing that could leave the maildir', () => {
  assert.equal(mailboxDirectoryName('Scanner@Sandbox.TEST'), 'scanner@sandbox.test');
  assert.equal(mailboxDirectoryName("o'brien+tag@x.example"), "o'brien+tag@x.example");
  for (const bad of ['', 'no-at-sign', '../x@y', 'a/b@x', 'a\\b@x', '.hidden@x', 'a..b@x', 'a@x..y', 'a@', '@x', 'a@x/..', 'a b@x', 'a\u0000@x', `${'a'.repeat(251)}@x.y`, 'ü@x.y']) {
    assert.equal(mailboxDirectoryName(bad), null, JSON.stringify(bad));
  }
});
