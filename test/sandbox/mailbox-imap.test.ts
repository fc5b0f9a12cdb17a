/**
 * Sandbox mailbox, IMAP over implicit TLS: imapflow (the relay's account checker) logs in with XOAUTH2,
 * selects INBOX and fetches; a raw node:tls client checks refusals and hostile input.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ImapFlow } from 'imapflow';
import nodemailer from 'nodemailer';
import { buildXOAuth2 } from '../../src/sasl/xoauth2.js';
import { appClaims, startMailboxFixture, userClaims, Pop3TestClient, type MailboxFixture } from './mailbox-fixtures.js';

const READER = 'imap-reader@sandbox.test';
const SENDER = 'scanner@sandbox.test';

let fx: MailboxFixture;
before(async () => {
  fx = await startMailboxFixture();
});
after(async () => {
  await fx.close();
});

async function submit(raw: Buffer, to: string): Promise<void> {
  const mailer = nodemailer.createTransport({
    host: '127.0.0.1', port: fx.mailbox.smtpPort, secure: false, requireTLS: true, tls: { ca: fx.caCertPem },
    auth: { type: 'OAuth2', user: SENDER, accessToken: await fx.userToken(SENDER) },
  });
  try {
    await mailer.sendMail({ envelope: { from: SENDER, to: [to] }, raw });
  } finally {
    mailer.close();
  }
}

function imapClient(user: string, accessToken: string): ImapFlow {
  return new ImapFlow({
    host: '127.0.0.1', port: fx.mailbox.imapPort!, secure: true, tls: { ca: [fx.caCertPem] },
    auth: { user, accessToken }, logger: false, disableAutoIdle: true,
  });
}

test('imapflow logs in with XOAUTH2, selects INBOX and fetches messages byte for byte', async () => {
  const first = Buffer.from(`From: ${SENDER}\r\nSubject: one\r\n\r\n.leading dot\r\nbody\r\n`);
  const second = Buffer.from(`From: ${SENDER}\r\nSubject: two\r\n\r\nsecond body\r\n`);
  await submit(first, READER);
  await submit(second, READER);

  const client = imapClient(READER, await fx.userToken(READER));
  await client.connect();
  try {
    const inbox = await client.mailboxOpen('INBOX');
    assert.equal(inbox.exists, 2);
    const fetched = [];
    for await (const message of client.fetch('1:*', { uid: true, source: true, size: true, internalDate: true })) fetched.push(message);
    assert.deepEqual(fetched.map((m) => m.source), [first, second]);
    assert.deepEqual(fetched.map((m) => m.size), [first.length, second.length]);
    assert.ok(fetched[0]!.uid < fetched[1]!.uid);
    assert.ok(fetched[0]!.internalDate instanceof Date);

    const byUid = await client.fetchOne(String(fetched[1]!.uid), { source: true }, { uid: true });
    assert.ok(byUid);
    assert.deepEqual(byUid.source, second);
    const partial = await client.fetchOne('1', { source: { start: 6, maxLength: 10 } });
    assert.ok(partial);
    assert.equal(partial.source?.toString(), first.subarray(6, 16).toString());
  } finally {
    await client.logout();
  }
});

test('imapflow with a bad token fails to connect; an app token with IMAP.AccessAsApp opens any mailbox', async () => {
  const expired = imapClient(READER, await fx.token({ claims: userClaims(READER), expiresInSec: -60 }));
  await assert.rejects(expired.connect(), (err: Error & { authenticationFailed?: boolean }) => err.authenticationFailed === true);
  expired.close();

  const app = imapClient('anyone@sandbox.test', await fx.token({ claims: appClaims(['IMAP.AccessAsApp']) }));
  await app.connect();
  const inbox = await app.mailboxOpen('INBOX');
  assert.equal(inbox.exists, 0);
  await app.logout();
});

async function connectRaw(): Promise<Pop3TestClient> {
  // The byte-exact line client works for IMAP's line-based replies too.
  const client = await Pop3TestClient.connect(fx.mailbox.imapPort!, fx.caCertPem);
  assert.match(await client.line(), /^\* OK \[CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2 LOGINDISABLED\] /);
  return client;
}

test('raw IMAP: Exchange\'s failure text, LOGIN refused, the continuation form, and a BAD for what is not supported', async () => {
  const client = await connectRaw();
  try {
    assert.equal(await client.command('a1 LOGIN reader secret'), 'a1 NO LOGIN failed.');
    assert.equal(await client.command(`a2 AUTHENTICATE XOAUTH2 ${buildXOAuth2(READER, await fx.userToken(SENDER))}`), 'a2 NO AUTHENTICATE failed.');
    assert.equal(await client.command('a3 AUTHENTICATE PLAIN AHJlYWRlcgBzZWNyZXQ='), 'a3 NO Unsupported authentication mechanism.');
    assert.equal(await client.command('a4 SELECT INBOX'), 'a4 BAD Command received in invalid state.');
    assert.equal(await client.command('a5 AUTHENTICATE XOAUTH2'), '+ ');
    assert.equal(await client.command('*'), 'a5 BAD AUTHENTICATE aborted.');
    assert.equal(await client.command('a6 AUTHENTICATE XOAUTH2'), '+ ');
    assert.match(await client.command(buildXOAuth2(READER, await fx.userToken(READER))), /^a6 OK \[CAPABILITY IMAP4rev1/);
    assert.equal(await client.command('a7 SELECT Sent'), 'a7 NO [NONEXISTENT] Mailbox does not exist.');
    await client.command('a8 EXAMINE inbox');
    let line;
    while (!(line = await client.line()).startsWith('a8 ')) assert.match(line, /^\* /);
    assert.equal(line, 'a8 OK [READ-ONLY] EXAMINE completed.');
    assert.equal(await client.command('a9 FETCH 1 ENVELOPE'), 'a9 BAD Syntax or unsupported item: FETCH set items.');
    assert.equal(await client.command('b1 FETCH 999 UID'), 'b1 BAD Invalid message sequence number.');
    assert.equal(await client.command('b2 STORE 1 +FLAGS (\\Deleted)'), 'b2 BAD Command unknown or not supported.');
    assert.equal(await client.command('b3 UID FETCH 999999 UID'), 'b3 OK UID FETCH completed.');
    assert.equal(await client.command('b4 LOGOUT'), '* BYE Logging out.');
    assert.equal(await client.line(), 'b4 OK LOGOUT completed.');
    await client.closedByServer();
  } finally {
    client.close();
  }
});

test('raw IMAP: garbage, literals and overlong lines get BAD, and too many errors end the session', async () => {
  const client = await connectRaw();
  try {
    client.send(Buffer.alloc(100_000, 'A'));
    assert.equal(await client.line(), '* BAD Line too long.');
    assert.equal(await client.command('a1 LOGIN {6}'), 'a1 BAD Literals are not supported.');
    assert.equal(await client.command('+bad NOOP'), '* BAD Invalid tag.');
    assert.equal(await client.command('a2 LIST "unterminated'), 'a2 BAD Invalid arguments.');
    assert.equal(await client.command('a3 \u0001\u0002'), '* BAD Invalid characters.');
    assert.equal(await client.command('a4 NOOP'), 'a4 OK NOOP completed.');
    for (let i = 0; i < 4; i++) await client.command(`x${i} BOGUS`);
    assert.equal(await client.command('x9 BOGUS'), '* BYE Too many errors.');
    await client.closedByServer();
  } finally {
    client.close();
  }
});
