/**
 * Sandbox mailbox, SMTP submission: nodemailer (the relay's own upstream client) and a raw socket against
 * the real listener. Outcomes are replies on the wire and files on disk.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connect as connectTcp, type Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';
import nodemailer from 'nodemailer';
import { buildXOAuth2 } from '../../src/sasl/xoauth2.js';
import { appClaims, createSigner, startMailboxFixture, userClaims, type MailboxFixture } from './mailbox-fixtures.js';

const SENDER = 'scanner@sandbox.test';
const OTHER = 'alice@sandbox.test';

let fx: MailboxFixture;
before(async () => {
  fx = await startMailboxFixture();
});
after(async () => {
  await fx.close();
});

function transport(user: string, accessToken: string) {
  return nodemailer.createTransport({
    host: '127.0.0.1',
    port: fx.mailbox.smtpPort,
    secure: false,
    requireTLS: true,
    tls: { ca: fx.caCertPem },
    auth: { type: 'OAuth2', user, accessToken },
  });
}

function rawMessage(subject: string): Buffer {
  return Buffer.from(
    [
      `From: ${SENDER}`,
      `To: ${OTHER}`,
      `Subject: ${subject}`,
      'Message-ID: <' + subject.replace(/\W/g, '') + '@sandbox.test>',
      '',
      'Line one.',
      '.a line that starts with a dot',
      '..two dots',
      '.',
      'trailing spaces   ',
      '',
    ].join('\r\n'),
  );
}

/** Sends and returns nodemailer's error (or null): tests assert on `responseCode` and `response`. */
async function trySend(user: string, token: string, from: string, raw: Buffer, to = [OTHER]): Promise<(Error & { responseCode?: number; response?: string }) | null> {
  const mailer = transport(user, token);
  try {
    await mailer.sendMail({ envelope: { from, to }, raw });
    return null;
  } catch (err) {
    return err as Error & { responseCode?: number; response?: string };
  } finally {
    mailer.close();
  }
}

test('a message submitted with XOAUTH2 over STARTTLS is stored byte for byte in every recipient\'s mailbox', async () => {
  const raw = rawMessage('stored byte for byte');
  const mailer = transport(SENDER, await fx.userToken(SENDER));
  const info = await mailer.sendMail({ envelope: { from: SENDER, to: [OTHER, 'Bob@Elsewhere.example'] }, raw });
  mailer.close();
  assert.match(info.response, /^250 2\.0\.0 OK/);

  for (const mailbox of [OTHER, 'bob@elsewhere.example']) {
    const stored = await fx.mailbox.messages(mailbox);
    const match = stored.filter((m) => m.size === raw.length);
    assert.equal(match.length, 1, `one message for ${mailbox}`);
    const bytes = await readFile(join(fx.maildir, mailbox, 'new', match[0]!.file));
    assert.deepEqual(bytes, raw);
    assert.ok(match[0]!.receivedAt instanceof Date);
  }
  assert.deepEqual(await fx.mailbox.messages('BOB@elsewhere.EXAMPLE'), await fx.mailbox.messages('bob@elsewhere.example'), 'mailbox names are case-insensitive');
});

test('bad tokens get Exchange\'s 535 5.7.3 and nothing is stored', async () => {
  const stranger = await createSigner();
  const cases: Array<[string, string]> = [
    ['expired', await fx.token({ claims: userClaims(SENDER), expiresInSec: -120 })],
    ['wrong audience', await fx.token({ claims: userClaims(SENDER, { aud: 'https://graph.microsoft.com' }) })],
    ['wrong issuer', await fx.token({ claims: userClaims(SENDER, { iss: 'https://sts.windows.net/00000000-0000-0000-0000-000000000000/' }) })],
    ['signed by another key', await fx.token({ claims: userClaims(SENDER), signer: stranger })],
    ['another user\'s token', await fx.userToken(OTHER)],
    ['no SMTP.Send scope', await fx.token({ claims: userClaims(SENDER, { scp: 'IMAP.AccessAsUser.All POP.AccessAsUser.All' }) })],
    ['not a JWT', 'EwBAAl3BAAUFFpUAo7J3Ve0bjLBWZWCclRC3EoAA'],
  ];
  const before = (await fx.mailbox.messages(OTHER)).length;
  for (const [name, token] of cases) {
    const err = await trySend(SENDER, token, SENDER, rawMessage(name));
    assert.ok(err, `${name}: refused`);
    assert.equal(err.responseCode, 535, name);
    assert.match(err.response ?? '', /^535 5\.7\.3 Authentication unsuccessful/, name);
  }
  assert.equal((await fx.mailbox.messages(OTHER)).length, before);
});

test('an app token may send as a mailbox its role scope holds, and is refused (535 5.7.3) for one taken out of it', async () => {
  const token = await fx.token({ claims: appClaims(['SMTP.SendAsApp']) });
  const raw = Buffer.from(rawMessage('sent by an app').toString('latin1').replace(`From: ${SENDER}`, 'From: printer@sandbox.test'), 'latin1');
  await fx.setRules('unscoped@sandbox.test', { appRoles: ['imap', 'pop3'] });
  const refused = await trySend('unscoped@sandbox.test', token, 'unscoped@sandbox.test', raw);
  assert.match(refused?.response ?? '', /^535 5\.7\.3 Authentication unsuccessful/);
  assert.equal(await trySend('printer@sandbox.test', token, 'printer@sandbox.test', raw), null);
  const stored = await fx.mailbox.messages(OTHER);
  assert.ok(stored.some((m) => m.size === raw.length));
});

test('MAIL FROM another mailbox is refused with Exchange\'s 550 5.7.60, a From header of another with 554 SendAsDenied; nothing is stored', async () => {
  const before = (await fx.mailbox.messages(OTHER)).length;
  const err = await trySend(SENDER, await fx.userToken(SENDER), 'ceo@sandbox.test', rawMessage('spoofed'));
  assert.equal(err?.responseCode, 550);
  assert.equal(err?.response, '550 5.7.60 SMTP; Client does not have permissions to send as this sender');
  const forged = Buffer.from(rawMessage('forged From').toString('latin1').replace(`From: ${SENDER}`, 'From: "CEO" <ceo@sandbox.test>'), 'latin1');
  const late = await trySend(SENDER, await fx.userToken(SENDER), SENDER, forged);
  assert.equal(late?.responseCode, 554);
  assert.match(late?.response ?? '', /^554 5\.2\.0 STOREDRV\.Submission\.Exception:SendAsDeniedException\.MapiExceptionSendAsDenied/);
  assert.equal((await fx.mailbox.messages(OTHER)).length, before);
});

/** A raw SMTP client: plain TCP, upgraded in place by STARTTLS. */
class RawSmtp {
  private buffer = '';
  private constructor(private socket: Socket) {}

  static async connect(port: number): Promise<RawSmtp> {
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = connectTcp({ host: '127.0.0.1', port }, () => resolve(s));
      s.once('error', reject);
    });
    const client = new RawSmtp(socket);
    await client.reply();
    return client;
  }

  /** Reads one reply (RFC 5321 §4.2.1: "code-" lines, then "code "). */
  async reply(): Promise<string> {
    for (;;) {
      const lines = this.buffer.split('\r\n');
      const last = lines.findIndex((l) => /^\d{3} /.test(l) || /^\d{3}$/.test(l));
      if (last !== -1) {
        this.buffer = lines.slice(last + 1).join('\r\n');
        return lines.slice(0, last + 1).join('\n');
      }
      const chunk = await new Promise<Buffer>((resolve, reject) => {
        const onData = (d: Buffer) => { cleanup(); resolve(d); };
        const onEnd = () => { cleanup(); reject(new Error(`closed; had ${JSON.stringify(this.buffer)}`)); };
        const cleanup = () => { this.socket.off('data', onData); this.socket.off('close', onEnd); };
        this.socket.on('data', onData);
        this.socket.on('close', onEnd);
      });
      this.buffer += chunk.toString('latin1');
    }
  }

  async command(line: string): Promise<string> {
    this.socket.write(`${line}\r\n`);
    return this.reply();
  }

  async startTls(ca: string): Promise<void> {
    assert.match(await this.command('STARTTLS'), /^220/);
    this.socket = await new Promise((resolve, reject) => {
      const s = connectTls({ socket: this.socket, ca, servername: 'localhost' }, () => resolve(s));
      s.once('error', reject);
    });
  }

  close(): void {
    this.socket.destroy();
  }
}

test('EHLO advertises STARTTLS before TLS, refuses AUTH until then, and offers only AUTH XOAUTH2 and SIZE 35 MB after; no credentials in clear', async () => {
  const smtp = await RawSmtp.connect(fx.mailbox.smtpPort);
  try {
    const plain = await smtp.command('EHLO printer.local');
    assert.match(plain, /STARTTLS/);
    // smtp-server lists AUTH before TLS too (Exchange does not); what matters is that it refuses it.
    assert.match(await smtp.command(`AUTH XOAUTH2 ${buildXOAuth2(SENDER, await fx.userToken(SENDER))}`), /^538/);
    assert.match(await smtp.command(`MAIL FROM:<${SENDER}>`), /^530 5\.7\.57 Client not authenticated/);
    await smtp.startTls(fx.caCertPem);
    const secured = await smtp.command('EHLO printer.local');
    assert.match(secured, /^250[- ]AUTH XOAUTH2$/m);
    assert.doesNotMatch(secured, /PLAIN|LOGIN|CRAM/);
    assert.match(secured, new RegExp(`^250[- ]SIZE ${35 * 1024 * 1024}$`, 'm'));
    assert.match(await smtp.command('AUTH PLAIN ' + Buffer.from(`\0${SENDER}\0password`).toString('base64')), /^504/);
    assert.match(await smtp.command('AUTH LOGIN'), /^504/);
  } finally {
    smtp.close();
  }
});

test('raw XOAUTH2: the continuation form works, and a message over SIZE is refused up front', async () => {
  const smtp = await RawSmtp.connect(fx.mailbox.smtpPort);
  try {
    await smtp.command('EHLO printer.local');
    await smtp.startTls(fx.caCertPem);
    await smtp.command('EHLO printer.local');
    assert.match(await smtp.command('AUTH XOAUTH2'), /^334/);
    assert.match(await smtp.command(buildXOAuth2(SENDER, await fx.userToken(SENDER))), /^235/);
    assert.match(await smtp.command(`MAIL FROM:<${SENDER}> SIZE=${36 * 1024 * 1024}`), /^552/);
    assert.match(await smtp.command(`MAIL FROM:<${SENDER}>`), /^250/);
    // An address becomes a directory name: nothing may climb out of the maildir or hide in it.
    assert.match(await smtp.command('RCPT TO:<../../etc/passwd@x>'), /^501/);
    assert.match(await smtp.command('RCPT TO:<a/b@sandbox.test>'), /^501 5\.1\.3/);
    assert.match(await smtp.command('RCPT TO:<"a b"@sandbox.test>'), /^501/);
  } finally {
    smtp.close();
  }
});

test('a failed raw AUTH is a final 535 5.7.3, and the session can try again', async () => {
  const smtp = await RawSmtp.connect(fx.mailbox.smtpPort);
  try {
    await smtp.command('EHLO printer.local');
    await smtp.startTls(fx.caCertPem);
    await smtp.command('EHLO printer.local');
    const expired = await fx.token({ claims: userClaims(SENDER), expiresInSec: -60 });
    assert.equal(await smtp.command(`AUTH XOAUTH2 ${buildXOAuth2(SENDER, expired)}`), '535 5.7.3 Authentication unsuccessful');
    assert.match(await smtp.command(`AUTH XOAUTH2 ${buildXOAuth2(SENDER, await fx.userToken(SENDER))}`), /^235/);
  } finally {
    smtp.close();
  }
});
