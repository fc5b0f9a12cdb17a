/**
 * Sandbox mailbox with a 20 MB message: SMTP stores it and POP3 RETR sends it as streams, so the process
 * grows by far less than the message. Its own file, so the memory baseline is this process's alone.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import nodemailer from 'nodemailer';
import { buildXOAuth2 } from '../../src/sasl/xoauth2.js';
import { startMailboxFixture, Pop3TestClient, type MailboxFixture } from './mailbox-fixtures.js';

const MAILBOX = 'big@sandbox.test';
const MESSAGE_BYTES = 20 * 1024 * 1024;
const RSS_BUDGET = 64 * 1024 * 1024;

let fx: MailboxFixture;
let workDir: string;
before(async () => {
  fx = await startMailboxFixture();
  workDir = await mkdtemp(join(tmpdir(), 'sandbox-mailbox-large-'));
});
after(async () => {
  await fx.close();
  await rm(workDir, { recursive: true, force: true });
});

/** Writes a ~20 MB message (every 7th line starts with a dot) and returns its SHA-256 and size. */
async function writeLargeMessage(path: string): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  function* lines(): Generator<Buffer> {
    const header = Buffer.from(`From: ${MAILBOX}\r\nTo: ${MAILBOX}\r\nSubject: large\r\n\r\n`);
    yield header;
    size += header.length;
    for (let i = 0; size < MESSAGE_BYTES; i++) {
      const line = Buffer.from(`${i % 7 === 0 ? '.' : ''}${i.toString().padStart(8, '0')} ${'x'.repeat(66)}\r\n`);
      size += line.length;
      yield line;
    }
  }
  await pipeline(Readable.from(lines()), async function* (source: AsyncIterable<Buffer>) {
    for await (const chunk of source) {
      hash.update(chunk);
      yield chunk;
    }
  }, createWriteStream(path));
  return { sha256: hash.digest('hex'), size };
}

/** Samples RSS while `work` runs; returns the largest growth over the starting value. */
async function peakRssGrowth(work: () => Promise<void>): Promise<number> {
  const start = process.memoryUsage.rss();
  let peak = start;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, 10);
  try {
    await work();
  } finally {
    clearInterval(timer);
  }
  return Math.max(peak, process.memoryUsage.rss()) - start;
}

test('a 20 MB message is submitted and RETRieved as streams: byte-exact, RSS growth under 64 MB', async (t) => {
  const source = join(workDir, 'large.eml');
  const expected = await writeLargeMessage(source);

  const submitGrowth = await peakRssGrowth(async () => {
    const mailer = nodemailer.createTransport({
      host: '127.0.0.1', port: fx.mailbox.smtpPort, secure: false, requireTLS: true, tls: { ca: fx.caCertPem },
      auth: { type: 'OAuth2', user: MAILBOX, accessToken: await fx.userToken(MAILBOX) },
    });
    try {
      await mailer.sendMail({ envelope: { from: MAILBOX, to: [MAILBOX] }, raw: createReadStream(source) });
    } finally {
      mailer.close();
    }
  });
  const [stored] = await fx.mailbox.messages(MAILBOX);
  assert.equal(stored?.size, expected.size);
  const onDisk = createHash('sha256');
  await pipeline(createReadStream(join(fx.maildir, MAILBOX, 'new', stored.file)), onDisk);
  assert.equal(onDisk.digest('hex'), expected.sha256);

  const received = createHash('sha256');
  let receivedBytes = 0;
  const retrGrowth = await peakRssGrowth(async () => {
    const client = await Pop3TestClient.connect(fx.mailbox.pop3Port, fx.caCertPem);
    try {
      await client.line();
      assert.match(await client.command(`AUTH XOAUTH2 ${buildXOAuth2(MAILBOX, await fx.userToken(MAILBOX))}`), /^\+OK/);
      assert.equal(await client.command('RETR 1'), `+OK ${expected.size} octets`);
      await client.readBody((piece) => {
        received.update(piece);
        receivedBytes += piece.length;
      });
      assert.match(await client.command('QUIT'), /^\+OK/);
    } finally {
      client.close();
    }
  });
  assert.equal(receivedBytes, expected.size);
  assert.equal(received.digest('hex'), expected.sha256);
  t.diagnostic(`RSS growth: SMTP ${(submitGrowth / 2 ** 20).toFixed(1)} MB, RETR ${(retrGrowth / 2 ** 20).toFixed(1)} MB`);
  assert.ok(submitGrowth < RSS_BUDGET, `SMTP grew RSS by ${Math.round(submitGrowth / 2 ** 20)} MB`);
  assert.ok(retrGrowth < RSS_BUDGET, `RETR grew RSS by ${Math.round(retrGrowth / 2 ** 20)} MB`);
});

test('a message over 35 MB without a SIZE parameter is refused with 552 after DATA and leaves nothing on disk', async () => {
  const recipient = 'too-big@sandbox.test';
  // nodemailer cannot know a stream's size, so MAIL FROM carries no SIZE= and the limit is met mid-DATA.
  const line = Buffer.from(`${'y'.repeat(998)}\r\n`);
  const lines = Math.ceil((36 * 1024 * 1024) / line.length);
  function* oversized(): Generator<Buffer> {
    yield Buffer.from(`From: ${MAILBOX}\r\nSubject: too big\r\n\r\n`);
    for (let i = 0; i < lines; i++) yield line;
  }
  const mailer = nodemailer.createTransport({
    host: '127.0.0.1', port: fx.mailbox.smtpPort, secure: false, requireTLS: true, tls: { ca: fx.caCertPem },
    auth: { type: 'OAuth2', user: MAILBOX, accessToken: await fx.userToken(MAILBOX) },
  });
  try {
    await assert.rejects(
      mailer.sendMail({ envelope: { from: MAILBOX, to: [recipient] }, raw: Readable.from(oversized()) }),
      (err: Error & { responseCode?: number; command?: string }) => err.responseCode === 552 && err.command === 'DATA',
    );
  } finally {
    mailer.close();
  }
  assert.deepEqual(await fx.mailbox.messages(recipient), []);
  assert.deepEqual(await readdir(join(fx.maildir, '.incoming')), [], 'no staged file is left behind');
});
