/**
 * Sandbox mailbox, POP3 over implicit TLS: a raw node:tls client speaks RFC 1939/2449/5034 to the real
 * listener; messages arrive through SMTP (nodemailer) first. Outcomes are bytes on the wire and files on disk.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, access } from 'node:fs/promises';
import { join } from 'node:path';
import { connect as connectTcp } from 'node:net';
import nodemailer from 'nodemailer';
import { buildXOAuth2 } from '../../src/sasl/xoauth2.js';
import { appClaims, startMailboxFixture, userClaims, Pop3TestClient, type MailboxFixture } from './mailbox-fixtures.js';

const READER = 'reader@sandbox.test';
const SENDER = 'scanner@sandbox.test';
const AUTH_FAILED = '-ERR Authentication failure: unknown user name or bad password.';

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

function message(subject: string, bodyLines: string[]): Buffer {
  return Buffer.from([`From: ${SENDER}`, `Subject: ${subject}`, '', ...bodyLines, ''].join('\r\n'));
}

async function connect(): Promise<Pop3TestClient> {
  const client = await Pop3TestClient.connect(fx.mailbox.pop3Port, fx.caCertPem);
  assert.match(await client.line(), /^\+OK /);
  return client;
}

async function login(mailbox: string, token?: string): Promise<Pop3TestClient> {
  const client = await connect();
  assert.equal(await client.command(`AUTH XOAUTH2 ${buildXOAuth2(mailbox, token ?? (await fx.userToken(mailbox)))}`), '+OK User successfully authenticated.');
  return client;
}

test('CAPA advertises SASL XOAUTH2, TOP and UIDL, never USER; USER, PASS and AUTH PLAIN are refused', async () => {
  const client = await connect();
  try {
    assert.match(await client.command('CAPA'), /^\+OK/);
    const capabilities = (await client.body()).toString('latin1').split('\r\n').filter(Boolean);
    assert.ok(capabilities.includes('SASL XOAUTH2'));
    assert.ok(capabilities.includes('TOP') && capabilities.includes('UIDL'));
    assert.ok(!capabilities.some((c) => /^USER\b/.test(c)));
    assert.match(await client.command(`USER ${READER}`), /^-ERR /);
    assert.match(await client.command('PASS secret'), /^-ERR /);
    assert.match(await client.command('AUTH PLAIN ' + Buffer.from(`\0${READER}\0secret`).toString('base64')), /^-ERR /);
    assert.match(await client.command('STAT'), /^-ERR Command is not valid in this state/);
    assert.equal(await client.command('QUIT'), '+OK Goodbye.');
    await client.closedByServer();
  } finally {
    client.close();
  }
});

test('STAT, LIST, UIDL, RETR (byte-exact despite leading dots), TOP, DELE, RSET, and QUIT deleting on disk', async () => {
  const mailbox = 'dots@sandbox.test';
  const first = message('first', ['.', '..', '.starts with a dot', 'middle', '...three', 'end']);
  const second = message('second', ['body line 1', 'body line 2', 'body line 3']);
  await submit(first, mailbox);
  await submit(second, mailbox);
  const stored = await fx.mailbox.messages(mailbox);
  assert.equal(stored.length, 2);

  const client = await login(mailbox);
  try {
    assert.equal(await client.command('STAT'), `+OK 2 ${first.length + second.length}`);
    assert.match(await client.command('LIST'), /^\+OK 2 messages/);
    assert.equal((await client.body()).toString(), `1 ${first.length}\r\n2 ${second.length}\r\n`);
    assert.equal(await client.command('LIST 2'), `+OK 2 ${second.length}`);
    assert.equal(await client.command('UIDL'), '+OK');
    assert.equal((await client.body()).toString(), `1 ${stored[0]!.file}\r\n2 ${stored[1]!.file}\r\n`);
    assert.equal(await client.command('UIDL 1'), `+OK 1 ${stored[0]!.file}`);

    assert.equal(await client.command('RETR 1'), `+OK ${first.length} octets`);
    assert.deepEqual(await client.body(), first);
    assert.equal(await client.command('RETR 2'), `+OK ${second.length} octets`);
    assert.deepEqual(await client.body(), second);

    assert.match(await client.command('TOP 2 1'), /^\+OK/);
    assert.equal((await client.body()).toString(), `From: ${SENDER}\r\nSubject: second\r\n\r\nbody line 1\r\n`);
    assert.match(await client.command('TOP 1 0'), /^\+OK/);
    assert.equal((await client.body()).toString(), `From: ${SENDER}\r\nSubject: first\r\n\r\n`);

    assert.equal(await client.command('DELE 1'), '+OK Message 1 deleted.');
    assert.equal(await client.command('RETR 1'), '-ERR Message already deleted.');
    assert.equal(await client.command('STAT'), `+OK 1 ${second.length}`);
    assert.equal(await client.command('RSET'), `+OK 2 messages (${first.length + second.length} octets)`);
    assert.equal(await client.command('DELE 1'), '+OK Message 1 deleted.');
    assert.equal(await client.command('RETR 3'), '-ERR No such message.');
    assert.equal(await client.command('NOOP'), '+OK');
    assert.equal(await client.command('QUIT'), '+OK Goodbye (1 messages left).');
    await client.closedByServer();
  } finally {
    client.close();
  }
  await assert.rejects(access(join(fx.maildir, mailbox, 'new', stored[0]!.file)));
  assert.deepEqual(await readFile(join(fx.maildir, mailbox, 'new', stored[1]!.file)), second);
  assert.deepEqual((await fx.mailbox.messages(mailbox)).map((m) => m.file), [stored[1]!.file]);
});

test('AUTH XOAUTH2 in the continuation form; "*" cancels', async () => {
  const client = await connect();
  try {
    assert.equal(await client.command('AUTH XOAUTH2'), '+ ');
    assert.equal(await client.command('*'), '-ERR Authentication canceled.');
    assert.equal(await client.command('AUTH XOAUTH2'), '+ ');
    assert.equal(await client.command(buildXOAuth2(READER, await fx.userToken(READER))), '+OK User successfully authenticated.');
    assert.equal(await client.command('STAT'), '+OK 0 0');
    assert.equal(await client.command('QUIT'), '+OK Goodbye (0 messages left).');
  } finally {
    client.close();
  }
});

test('bad tokens get Exchange\'s POP3 failure; an app token opens a mailbox in its role scope, not one taken out of it', async () => {
  const cases: Array<[string, string, string]> = [
    ['expired', READER, await fx.token({ claims: userClaims(READER), expiresInSec: -60 })],
    ['wrong audience', READER, await fx.token({ claims: userClaims(READER, { aud: 'https://graph.microsoft.com' }) })],
    ['another user', SENDER, await fx.userToken(READER)],
    ['no POP scope', READER, await fx.token({ claims: userClaims(READER, { scp: 'SMTP.Send IMAP.AccessAsUser.All' }) })],
  ];
  const client = await connect();
  try {
    for (const [name, user, token] of cases) {
      assert.equal(await client.command(`AUTH XOAUTH2 ${buildXOAuth2(user, token)}`), AUTH_FAILED, name);
    }
    assert.equal(await client.command('AUTH XOAUTH2 bm90IHhvYXV0aDI='), AUTH_FAILED, 'not an XOAUTH2 string');
    assert.equal(await client.command('AUTH XOAUTH2 ='), AUTH_FAILED, 'empty initial response');
  } finally {
    client.close();
  }
  const app = await login('anyone@sandbox.test', await fx.token({ claims: appClaims(['POP.AccessAsApp']) }));
  assert.equal(await app.command('STAT'), '+OK 0 0');
  app.close();
  // RBAC for Applications: the role assignment over the mailbox decides, not the token's roles claim.
  await fx.setRules('outside@sandbox.test', { appRoles: ['smtp', 'imap'] });
  const outside = await connect();
  try {
    assert.equal(await outside.command(`AUTH XOAUTH2 ${buildXOAuth2('outside@sandbox.test', await fx.token({ claims: appClaims(['POP.AccessAsApp']) }))}`), AUTH_FAILED);
  } finally {
    outside.close();
  }
});

test('a maildrop is locked to one session (RFC 1939 §8); closing without QUIT deletes nothing', async () => {
  const mailbox = 'locked@sandbox.test';
  await submit(message('keep me', ['x']), mailbox);
  const first = await login(mailbox);
  const second = await connect();
  try {
    assert.equal(await second.command(`AUTH XOAUTH2 ${buildXOAuth2(mailbox, await fx.userToken(mailbox))}`), '-ERR [IN-USE] Unable to lock maildrop: another session holds it.');
    assert.equal(await first.command('DELE 1'), '+OK Message 1 deleted.');
    first.close(); // no QUIT: no UPDATE state (RFC 1939 §6)
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(await second.command(`AUTH XOAUTH2 ${buildXOAuth2(mailbox, await fx.userToken(mailbox))}`), '+OK User successfully authenticated.');
    assert.match(await second.command('STAT'), /^\+OK 1 /);
  } finally {
    first.close();
    second.close();
  }
});

test('garbage, overlong lines and bad arguments get -ERR and the session goes on; too many errors end it', async () => {
  const client = await connect();
  try {
    client.send(Buffer.alloc(100_000, 'A'));
    assert.equal(await client.line(), '-ERR Line too long.');
    assert.equal(await client.command('NOT A COMMAND'), '-ERR Unknown command.');
    assert.equal(await client.command('\u0000\u00ff\u0007'), '-ERR Unknown command.');
    assert.equal(await client.command('CAPA ' + 'x'.repeat(300)), '-ERR Line too long.');
    assert.match(await client.command('CAPA'), /^\+OK/);
    await client.body();
  } finally {
    client.close();
  }

  const reader = await login(READER);
  try {
    for (const bad of ['RETR', 'RETR x', 'RETR -1', 'RETR 1 2', 'TOP 1', 'LIST 0', 'DELE 99999999999']) {
      assert.match(await reader.command(bad), /^-ERR /, bad);
    }
    assert.equal(await reader.command('NOOP'), '+OK');
    for (let i = 0; i < 2; i++) await reader.command('BOGUS');
    assert.equal(await reader.command('BOGUS'), '-ERR Too many errors, closing connection.');
    await reader.closedByServer();
  } finally {
    reader.close();
  }
});

test('a plain-text client on the TLS port does not hurt the server', async () => {
  const socket = connectTcp({ host: '127.0.0.1', port: fx.mailbox.pop3Port });
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.write('USER x\r\nPASS y\r\n');
  await new Promise((resolve) => socket.once('close', resolve));
  const client = await connect();
  assert.match(await client.command('CAPA'), /^\+OK/);
  client.close();
});

test('an idle session is logged out', async () => {
  const quick = await startMailboxFixture({ idleTimeoutMs: 200 });
  try {
    const client = await Pop3TestClient.connect(quick.mailbox.pop3Port, quick.caCertPem);
    assert.match(await client.line(), /^\+OK/);
    assert.equal(await client.line(), '-ERR Autologout; idle for too long.');
    await client.closedByServer();
  } finally {
    await quick.close();
  }
});
