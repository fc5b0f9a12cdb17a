/**
 * The test peers themselves: real Dovecot and Postfix on 127.0.0.1 must accept Entra-shaped JWTs over XOAUTH2
 * (and OAUTHBEARER) and nothing else, deliver submitted mail into the maildirs Dovecot serves, and go away
 * completely on stop(). Everything is checked over raw sockets, byte by byte.
 * Skips (with the reason) where Dovecot/Postfix are not installed, but fails when CI=true.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildXOAuth2 } from '../../src/sasl/xoauth2.js';
import { createTestTokenIssuer, outlookAudience, type TestTokenIssuer } from '../support/peers/entra-tokens.js';
import { LineClient, connectionRefused, decodeBase64Json } from '../support/peers/line-client.js';
import { attachmentMessage, dataPayload, sampleMessage } from '../support/peers/messages.js';
import { mailPeersAvailable, startMailPeers, type MailPeers } from '../support/peers/mail-peers.js';

const run = promisify(execFile);
const availability = mailPeersAvailable();
const inCi = process.env.CI === 'true';
const skip = !availability.ok && !inCi ? availability.reason : false;

const scanner = 'scanner@contoso.com';
const printer = 'printer@fabrikam.com';
const office365Audience = 'https://outlook.office365.com';

/** Pids that `pgrep args` lists (exit status 1 means none). */
async function pgrep(args: string[]): Promise<number[]> {
  try {
    const { stdout } = await run('pgrep', args);
    return stdout.split('\n').filter(Boolean).map(Number);
  } catch (error) {
    if ((error as { code?: number }).code === 1) return [];
    throw error;
  }
}

/** The state letter in /proc/<pid>/stat ('Z' for a zombie), or undefined once the pid is gone. */
function processState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return undefined;
  }
}

describe('test peers: real Dovecot and Postfix accept only XOAUTH2', { skip }, () => {
  let peers: MailPeers;
  let issuer: TestTokenIssuer;
  let startupMs = 0;
  const delivered = { [scanner]: 0, [printer]: 0 };

  before(async () => {
    if (!availability.ok) assert.fail(`CI=true but the mail peers cannot run: ${availability.reason}`);
    issuer = await createTestTokenIssuer();
    const started = performance.now();
    peers = await startMailPeers({
      validation: issuer.validation([outlookAudience, office365Audience]),
      mailboxes: [scanner, printer],
    });
    startupMs = Math.round(performance.now() - started);
  });

  after(async () => {
    await peers?.stop();
  });

  const xoauth2 = async (mailbox: string, input: Parameters<TestTokenIssuer['sign']>[0] = { mailbox }) =>
    buildXOAuth2(mailbox, await issuer.sign(input));

  async function imaps(): Promise<LineClient> {
    const client = await LineClient.connect({ port: peers.imapsPort, tls: true, ca: peers.caCertPem });
    assert.match(await client.readLine(), /^\* OK /);
    return client;
  }

  async function pop3s(): Promise<LineClient> {
    const client = await LineClient.connect({ port: peers.pop3sPort, tls: true, ca: peers.caCertPem });
    assert.match(await client.readLine(), /^\+OK /);
    return client;
  }

  /** Connects to submission, says EHLO, upgrades with STARTTLS and says EHLO again; returns the second EHLO reply. */
  async function submission(): Promise<{ client: LineClient; ehlo: string[] }> {
    const client = await LineClient.connect({ port: peers.submissionPort, ca: peers.caCertPem });
    assert.equal((await client.smtpReply()).code, 220);
    assert.equal((await client.smtp('EHLO printer.test')).code, 250);
    assert.equal((await client.smtp('STARTTLS')).code, 220);
    await client.startTls();
    const ehlo = await client.smtp('EHLO printer.test');
    assert.equal(ehlo.code, 250);
    return { client, ehlo: ehlo.lines };
  }

  async function waitForLog(read: () => Promise<string>, pattern: RegExp): Promise<string> {
    for (let i = 0; i < 40; i++) {
      const log = await read();
      if (pattern.test(log)) return log;
      await sleep(50);
    }
    return read();
  }

  /** Submits `message` as `mailbox`; asserts every reply on the way. */
  async function submit(mailbox: string, recipients: string[], message: string): Promise<void> {
    const { client } = await submission();
    try {
      assert.equal((await client.smtp(`AUTH XOAUTH2 ${await xoauth2(mailbox)}`)).code, 235);
      assert.equal((await client.smtp(`MAIL FROM:<${mailbox}> SIZE=${Buffer.byteLength(message)}`)).code, 250);
      for (const rcpt of recipients) assert.equal((await client.smtp(`RCPT TO:<${rcpt}>`)).code, 250);
      assert.equal((await client.smtp('DATA')).code, 354);
      await client.write(dataPayload(message));
      const reply = await client.smtpReply();
      assert.equal(reply.code, 250, reply.text);
      assert.equal((await client.smtp('QUIT')).code, 221);
    } finally {
      client.close();
    }
  }

  test('start-up: ports on 127.0.0.1, quick', (t) => {
    t.diagnostic(`mail peers started in ${startupMs} ms (imaps ${peers.imapsPort}, pop3s ${peers.pop3sPort}, submission ${peers.submissionPort})`);
    assert.ok(startupMs < 15_000, `start-up took ${startupMs} ms`);
    assert.ok(peers.processIds().length >= 4);
  });

  test('IMAP: only XOAUTH2/OAUTHBEARER offered; AUTHENTICATE XOAUTH2 succeeds and SELECT INBOX works', async () => {
    const client = await imaps();
    try {
      const capability = (await client.imap('c', 'CAPABILITY')).join('\n');
      assert.match(capability, /AUTH=XOAUTH2/);
      assert.match(capability, /AUTH=OAUTHBEARER/);
      assert.match(capability, /SASL-IR/);
      assert.doesNotMatch(capability, /AUTH=PLAIN|AUTH=LOGIN/);
      const auth = await client.imap('a', `AUTHENTICATE XOAUTH2 ${await xoauth2(scanner)}`);
      assert.match(auth.at(-1)!, /^a OK /, auth.join('\n'));
      const select = await client.imap('s', 'SELECT INBOX');
      assert.match(select.at(-1)!, /^s OK \[READ-WRITE\]/, select.join('\n'));
      assert.match((await client.imap('l', 'LOGOUT')).at(-1)!, /^l OK/);
    } finally {
      client.close();
    }
  });

  test('IMAP: OAUTHBEARER (RFC 7628) with the same token succeeds', async () => {
    const client = await imaps();
    try {
      const token = await issuer.sign({ mailbox: scanner });
      const gs2 = Buffer.from(`n,a=${scanner},\x01host=127.0.0.1\x01port=${peers.imapsPort}\x01auth=Bearer ${token}\x01\x01`);
      const auth = await client.imap('a', `AUTHENTICATE OAUTHBEARER ${gs2.toString('base64')}`);
      assert.match(auth.at(-1)!, /^a OK /, auth.join('\n'));
    } finally {
      client.close();
    }
  });

  test('IMAP: LOGIN and AUTHENTICATE PLAIN with a password are refused', async () => {
    const client = await imaps();
    try {
      const login = await client.imap('a', `LOGIN ${scanner} secret`);
      assert.match(login.at(-1)!, /^a NO /, login.join('\n'));
      const plain = Buffer.from(`\0${scanner}\0secret`).toString('base64');
      const auth = await client.imap('b', `AUTHENTICATE PLAIN ${plain}`);
      assert.match(auth.at(-1)!, /^b NO /, auth.join('\n'));
    } finally {
      client.close();
    }
  });

  test('IMAP: an expired token is refused after a JSON error challenge, and the log says why', async () => {
    const client = await imaps();
    const challenges: string[] = [];
    try {
      const auth = await client.imap('a', `AUTHENTICATE XOAUTH2 ${await xoauth2(scanner, { mailbox: scanner, expiresIn: -600 })}`, (line) => {
        challenges.push(line);
        return ''; // XOAUTH2 clients acknowledge the error challenge with an empty response
      });
      assert.equal(auth.at(-1), 'a NO [AUTHENTICATIONFAILED] Authentication failed.');
      assert.equal(challenges.length, 1);
      assert.deepEqual(decodeBase64Json(challenges[0]!, '+ '), { status: '401', schemes: 'bearer', scope: 'mail' });
    } finally {
      client.close();
    }
    assert.match(await waitForLog(() => peers.dovecotLog(), /Token has expired/), /Token has expired/);
  });

  test('IMAP: a token for another audience is refused; the second configured audience is accepted', async () => {
    const client = await imaps();
    try {
      const graph = await xoauth2(scanner, { mailbox: scanner, audience: 'https://graph.microsoft.com' });
      assert.match((await client.imap('a', `AUTHENTICATE XOAUTH2 ${graph}`)).at(-1)!, /^a NO \[AUTHENTICATIONFAILED\]/);
      const o365 = await xoauth2(scanner, { mailbox: scanner, audience: office365Audience });
      const ok = await client.imap('b', `AUTHENTICATE XOAUTH2 ${o365}`);
      assert.match(ok.at(-1)!, /^b OK /, ok.join('\n'));
    } finally {
      client.close();
    }
    assert.match(await waitForLog(() => peers.dovecotLog(), /client_id not found in aud field/), /client_id not found in aud field/);
  });

  test('IMAP: a valid token for another mailbox than the SASL user is refused', async () => {
    const client = await imaps();
    try {
      const mismatched = buildXOAuth2(printer, await issuer.sign({ mailbox: scanner }));
      assert.match((await client.imap('a', `AUTHENTICATE XOAUTH2 ${mismatched}`)).at(-1)!, /^a NO \[AUTHENTICATIONFAILED\]/);
    } finally {
      client.close();
    }
  });

  test('IMAP: a token signed by another key is refused', async () => {
    const stranger = await createTestTokenIssuer();
    const forged = buildXOAuth2(scanner, await stranger.sign({ mailbox: scanner, claims: { iss: issuer.issuer } }));
    const client = await imaps();
    try {
      assert.match((await client.imap('a', `AUTHENTICATE XOAUTH2 ${forged}`)).at(-1)!, /^a NO \[AUTHENTICATIONFAILED\]/);
    } finally {
      client.close();
    }
  });

  test('a large (~4.5 KB) token works over IMAP and SMTP (line_length_limit)', async () => {
    const token = await issuer.sign({ mailbox: scanner, claims: { wids: Array.from({ length: 60 }, () => randomUUID()) } });
    assert.ok(token.length > 4000 && token.length < 5000, `token is ${token.length} bytes`);
    const imap = await imaps();
    try {
      const auth = await imap.imap('a', `AUTHENTICATE XOAUTH2 ${buildXOAuth2(scanner, token)}`);
      assert.match(auth.at(-1)!, /^a OK /, auth.join('\n'));
    } finally {
      imap.close();
    }
    const { client } = await submission();
    try {
      assert.equal((await client.smtp(`AUTH XOAUTH2 ${buildXOAuth2(scanner, token)}`)).code, 235);
    } finally {
      client.close();
    }
  });

  test('POP3: AUTH XOAUTH2 with an initial response, and with the "+" continuation', async () => {
    const first = await pop3s();
    try {
      const capa = (first.send('CAPA'), [await first.readLine(), ...(await first.pop3MultiLine())]).join('\n');
      assert.match(capa, /^SASL .*XOAUTH2/m);
      first.send(`AUTH XOAUTH2 ${await xoauth2(scanner)}`);
      assert.match(await first.readLine(), /^\+OK /);
      first.send('STAT');
      assert.match(await first.readLine(), /^\+OK \d+ \d+$/);
      first.send('QUIT');
      assert.match(await first.readLine(), /^\+OK/);
    } finally {
      first.close();
    }
    const second = await pop3s();
    try {
      second.send('AUTH XOAUTH2');
      assert.equal(await second.readLine(), '+ ', 'Dovecot sends an empty challenge ("+ ") without an initial response');
      second.send(await xoauth2(scanner));
      assert.match(await second.readLine(), /^\+OK /);
    } finally {
      second.close();
    }
  });

  test('POP3: USER/PASS and a bad token are refused', async () => {
    const client = await pop3s();
    try {
      client.send(`USER ${scanner}`);
      const user = await client.readLine();
      if (user.startsWith('+OK')) {
        client.send('PASS secret');
        assert.match(await client.readLine(), /^-ERR /);
      } else {
        assert.match(user, /^-ERR /);
      }
      client.send(`AUTH XOAUTH2 ${await xoauth2(scanner, { mailbox: scanner, expiresIn: -600 })}`);
      const challenge = await client.readLine();
      assert.match(challenge, /^\+ /);
      assert.deepEqual(decodeBase64Json(challenge, '+ '), { status: '401', schemes: 'bearer', scope: 'mail' });
      client.send('');
      assert.equal(await client.readLine(), '-ERR [AUTH] Authentication failed.');
    } finally {
      client.close();
    }
  });

  test('SMTP: AUTH needs STARTTLS; after it only XOAUTH2/OAUTHBEARER are offered and AUTH PLAIN is refused', async () => {
    const plain = await LineClient.connect({ port: peers.submissionPort, ca: peers.caCertPem });
    try {
      assert.equal((await plain.smtpReply()).code, 220);
      const ehlo = await plain.smtp('EHLO printer.test');
      assert.doesNotMatch(ehlo.text, /AUTH/);
      assert.match(ehlo.text, /STARTTLS/);
      const early = await plain.smtp(`AUTH XOAUTH2 ${await xoauth2(scanner)}`);
      assert.match(early.text, /^530 5\.7\.0 /);
    } finally {
      plain.close();
    }
    const { client, ehlo } = await submission();
    try {
      const auth = ehlo.find((line) => /^250[- ]AUTH /.test(line));
      assert.ok(auth, ehlo.join('\n'));
      assert.deepEqual(auth.slice(9).split(' ').sort(), ['OAUTHBEARER', 'XOAUTH2']);
      assert.ok(ehlo.some((line) => /^250[- ]SIZE 104857600$/.test(line)), ehlo.join('\n'));
      const refused = await client.smtp(`AUTH PLAIN ${Buffer.from(`\0${scanner}\0secret`).toString('base64')}`);
      assert.match(refused.text, /^5\d\d /);
    } finally {
      client.close();
    }
  });

  test('SMTP: a bad token gets the 334 JSON challenge, then 535 5.7.8', async () => {
    const { client } = await submission();
    try {
      const challenge = await client.smtp(`AUTH XOAUTH2 ${await xoauth2(scanner, { mailbox: scanner, expiresIn: -600 })}`);
      assert.equal(challenge.code, 334);
      assert.deepEqual(decodeBase64Json(challenge.lines[0]!, '334 '), { status: '401', schemes: 'bearer', scope: 'mail' });
      assert.match((await client.smtp('')).text, /^535 5\.7\.8 /);
    } finally {
      client.close();
    }
  });

  test('SMTP: XOAUTH2 submission lands byte for byte in the maildirs, and POP3 reads it back', async () => {
    const message = sampleMessage(scanner, [scanner, printer], 'loop test');
    await submit(scanner, [scanner, printer], message);
    delivered[scanner]++;
    delivered[printer]++;
    const [file] = await peers.waitForMessages(printer, delivered[printer]);
    assert.ok(file !== undefined && file.startsWith(`${peers.maildir(printer)}/`));
    // virtual(8) stores LF line endings and prepends Return-Path, Delivered-To and Received.
    const stored = await readFile(file, 'latin1');
    assert.ok(stored.endsWith(message.replaceAll('\r\n', '\n')), stored);
    assert.match(stored, new RegExp(`^Return-Path: <${scanner}>\nX-Original-To: ${printer}\nDelivered-To: ${printer}\n`));
    assert.equal((await peers.waitForMessages(scanner, delivered[scanner])).length, delivered[scanner]);

    const pop = await pop3s();
    try {
      pop.send(`AUTH XOAUTH2 ${await xoauth2(printer)}`);
      assert.match(await pop.readLine(), /^\+OK /);
      pop.send('RETR 1');
      assert.match(await pop.readLine(), /^\+OK /);
      const retrieved = `${(await pop.pop3MultiLine()).join('\r\n')}\r\n`;
      assert.ok(retrieved.endsWith(message), retrieved);
    } finally {
      pop.close();
    }
  });

  test('SMTP: MAIL FROM another address than the authenticated mailbox is refused (SendAsDenied)', async () => {
    const { client } = await submission();
    try {
      assert.equal((await client.smtp(`AUTH XOAUTH2 ${await xoauth2(scanner)}`)).code, 235);
      const reply = await client.smtp(`MAIL FROM:<${printer}>`);
      assert.match(reply.text, /^553 5\.7\.1 /, reply.text);
      assert.match(reply.text, /not owned by user scanner@contoso\.com/);
      assert.equal((await client.smtp(`MAIL FROM:<${scanner}>`)).code, 250, 'the session goes on');
    } finally {
      client.close();
    }
  });

  test('SMTP: a From header that is none of the peers\' mailboxes is refused after the data (SendAsDenied, as Exchange)', async () => {
    const { client } = await submission();
    try {
      assert.equal((await client.smtp(`AUTH XOAUTH2 ${await xoauth2(scanner)}`)).code, 235);
      assert.equal((await client.smtp(`MAIL FROM:<${scanner}>`)).code, 250);
      assert.equal((await client.smtp(`RCPT TO:<${printer}>`)).code, 250);
      assert.equal((await client.smtp('DATA')).code, 354);
      await client.write(dataPayload(sampleMessage('"Floor 2" <noreply@printer.local>', [printer], 'foreign From')));
      const reply = await client.smtpReply();
      assert.match(reply.text, /^5\d\d 5\.2\.0 STOREDRV\.Submission\.Exception:SendAsDeniedException\.MapiExceptionSendAsDenied/, reply.text);
    } finally {
      client.close();
    }
  });

  test('SMTP: recipients other than the peers\' mailboxes are refused at RCPT (nothing leaves the machine)', async () => {
    const { client } = await submission();
    try {
      assert.equal((await client.smtp(`AUTH XOAUTH2 ${await xoauth2(scanner)}`)).code, 235);
      assert.equal((await client.smtp(`MAIL FROM:<${scanner}>`)).code, 250);
      assert.match((await client.smtp('RCPT TO:<someone@example.org>')).text, /^550 5\.7\.1 /);
      assert.match((await client.smtp('RCPT TO:<nobody@contoso.com>')).text, /^550 5\.1\.1 .*User unknown/);
    } finally {
      client.close();
    }
  });

  test('SMTP: a 30 MB attachment (~41 MB on the wire) is accepted and delivered', async (t) => {
    const message = attachmentMessage(scanner, [scanner], 'big attachment', 30 * 1024 * 1024);
    const started = performance.now();
    await submit(scanner, [scanner], message);
    delivered[scanner]++;
    const files = await peers.waitForMessages(scanner, delivered[scanner], 60_000);
    t.diagnostic(`${(message.length / 1e6).toFixed(1)} MB submitted and delivered in ${Math.round(performance.now() - started)} ms`);
    const sizes = await Promise.all(files.map(async (f) => (await stat(f)).size));
    assert.ok(Math.max(...sizes) > message.length * 0.95);
  });

  test('outage: after stopPostfix() the port refuses connections; startPostfix() brings submission back', async () => {
    await peers.stopPostfix();
    assert.equal(await connectionRefused(peers.submissionPort), true);
    const imap = await imaps(); // Dovecot is unaffected
    imap.close();
    await peers.startPostfix();
    await submit(scanner, [scanner], sampleMessage(scanner, [scanner], 'after outage'));
    delivered[scanner]++;
    assert.equal((await peers.waitForMessages(scanner, delivered[scanner])).length, delivered[scanner]);
  });

  test('stop(): no Dovecot or Postfix process is left and the directory is gone', async () => {
    const pids = peers.processIds();
    assert.ok(pids.length >= 4, String(pids));
    const { stdout } = await run('ps', ['-o', 'sid=', '-p', pids.join(',')]);
    const sessions = [...new Set(stdout.split('\n').map((s) => s.trim()).filter(Boolean))];
    assert.equal(sessions.length, 2, 'one session per daemon (each master calls setsid)');
    const dir = peers.dir;
    await peers.stop();
    const bySession = await pgrep(['-s', sessions.join(',')]);
    // A <defunct> entry is no process: Dovecot's log process exits after its master, and pid 1 reaps it in its own time.
    assert.deepEqual(bySession.filter((pid) => processState(pid) !== 'Z'), [], 'processes left in the daemons\' sessions');
    assert.deepEqual(await pgrep(['-f', dir]), [], 'processes still naming the test directory');
    assert.equal(existsSync(dir), false);
    await peers.stop(); // idempotent
  });
});
