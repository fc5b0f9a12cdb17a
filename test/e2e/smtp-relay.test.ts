/**
 * SMTP end to end: devices (nodemailer and raw sockets) → the relay daemon (`xoauth2-relay run`, a child
 * process) → real Postfix submission (STARTTLS, SASL XOAUTH2 through Dovecot, which validates the sandbox
 * simulator's JWTs) → a real Dovecot maildir. Tokens come from the sandbox identity simulator over HTTPS.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { hashPassword } from '../../src/auth/password-hash.js';
import { TokenServices } from '../../src/auth/token-services.js';
import { SANDBOX_MAILBOX, SANDBOX_TENANT_ID } from '../../src/sandbox/sandbox-config.js';
import { mailPeersAvailable, startMailPeers, type MailPeers } from '../support/peers/mail-peers.js';
import { attachmentMessage, partialMessages } from '../support/peers/messages.js';
import { startRelay, type RelayProcess } from '../support/relay-process.js';
import { eventually, startSandboxEnv, type SandboxEnv } from '../support/sandbox-env.js';
import { SmtpDevice } from '../support/smtp-device.js';

const DESK = 'desk@sandbox.test';
const PASSWORD = 'Sc@n "pass" ü:1';
const keyEnv = { XOAUTH2_RELAY_KEY: 'ef'.repeat(32) };
const availability = mailPeersAvailable();
const skip = !availability.ok && !process.env.CI ? `Postfix/Dovecot not usable here: ${availability.reason}` : false;

let env: SandboxEnv;
let peers: MailPeers;
let relay: RelayProcess;
/** Logs of relay processes already stopped (the daemon restarts in some tests). */
const earlierLogs: string[] = [];

async function signIn(): Promise<void> {
  const services = await TokenServices.create(env.config, env.logger, { ...process.env, ...keyEnv });
  await services.start();
  const prompt = await services.get('scanner').startDeviceCode();
  env.sim.approve(prompt.userCode, SANDBOX_MAILBOX);
  await prompt.done;
  assert.equal(services.get('scanner').state.state, 'acquired');
  await services.stop();
}

before(async () => {
  if (skip) return;
  if (!availability.ok) throw new Error(`CI needs Postfix and Dovecot: ${availability.reason}`);
  const mfpHash = await hashPassword(PASSWORD);
  env = await startSandboxEnv({
    sim: { pollIntervalSec: 0.2, accessTokenLifetimeSec: 3600 },
    config: async (sim) => {
      peers = await startMailPeers({
        validation: { issuers: [sim.issuer(SANDBOX_TENANT_ID)], audiences: ['https://outlook.office.com'], kid: sim.signingKey.kid, publicKeyPem: sim.signingKey.publicKeyPem },
        mailboxes: [SANDBOX_MAILBOX, DESK],
      });
      const peersCa = join(peers.dir, 'relay-test-ca.pem');
      await writeFile(peersCa, peers.caCertPem);
      return {
        devices: [
          { name: 'mfp', username: 'mfp2', passwordHash: mfpHash, account: 'scanner' },
          { name: 'fax', account: 'scanner', allowFrom: ['127.0.0.1/32'] },
          { name: 'lobby', username: 'lobby', passwordHash: mfpHash, account: 'scanner', allowedRecipientDomains: ['sandbox.test'], allowedSenders: ['@printer.local'] },
        ],
        smtp: {
          listen: [{ host: '127.0.0.1', port: 0, tls: 'none' }],
          upstream: { host: '127.0.0.1', port: peers.submissionPort },
          maxMessageBytes: 50 * 1024 * 1024,
          delivery: { retryInitialSeconds: 0.3, retryMaxSeconds: 1 },
        },
        upstreamTls: { extraCaFile: peersCa },
        admin: { listen: '127.0.0.1:0' },
      };
    },
  });
  await signIn();
  relay = await startRelay(env.configFile, keyEnv);
});

after(async () => {
  await relay?.stop().catch(() => undefined);
  await peers?.stop();
  await env?.close();
});

const port = () => relay.ports.smtp[0]!;

/** The body of a delivered maildir file (after the first blank line), line endings folded to LF. */
async function deliveredBody(file: string): Promise<string> {
  const text = await readFile(file, 'latin1');
  const split = text.indexOf('\n\n');
  return text.slice(split + 2);
}

async function messagesFor(mailbox: string, count: number, timeoutMs = 30_000): Promise<string[]> {
  return peers.waitForMessages(mailbox, count, timeoutMs);
}

function sha256(text: string | Buffer): string {
  return createHash('sha256').update(text).digest('hex');
}

test('nodemailer devices with AUTH PLAIN and AUTH LOGIN: relayed to the mailbox through Postfix', { skip }, async () => {
  for (const method of ['PLAIN', 'LOGIN'] as const) {
    const transport = nodemailer.createTransport({ host: '127.0.0.1', port: port(), secure: false, ignoreTLS: true, authMethod: method, auth: { user: 'mfp2', pass: PASSWORD } });
    const info = await transport.sendMail({ from: 'scan@printer.local', to: DESK, subject: `scan via ${method}`, text: `page 1 (${method})` });
    assert.match(info.response, /^250 2\.0\.0 Ok: queued as /);
    transport.close();
  }
  const files = await messagesFor(DESK, 2);
  const texts = await Promise.all(files.map((f) => readFile(f, 'utf8')));
  for (const method of ['PLAIN', 'LOGIN']) {
    const text = texts.find((t) => t.includes(`scan via ${method}`));
    assert.ok(text, `message sent with ${method} arrived`);
    assert.match(text, /^Received: from .*\n\tby xoauth2-relay \(xoauth2-relay\)/m, 'the relay added its trace line');
    assert.match(text, /^Return-Path: <scanner@sandbox\.test>/m, 'envelope sender rewritten to the mailbox (rewrite-envelope)');
  }
});

test('raw device: HELO, no AUTH (admitted by address), bare LF, pipelining', { skip }, async () => {
  const device = await SmtpDevice.connect(port());
  assert.equal((await device.reply()).code, 220);
  assert.equal((await device.command('HELO old-fax')).code, 250);
  // PIPELINING: the whole transaction in one write (RFC 2920), bare LF line endings in the message.
  device.write(`MAIL FROM:<fax@printer.local>\r\nRCPT TO:<${DESK}>\r\nDATA\r\n`);
  assert.deepEqual([(await device.reply()).code, (await device.reply()).code, (await device.reply()).code], [250, 250, 354]);
  device.write('Subject: fax from the old machine\nFrom: fax@printer.local\n\nline one\nline two\r\n.\r\n');
  const done = await device.reply();
  assert.equal(done.code, 250, done.text);
  assert.equal((await device.command('QUIT')).code, 221);
  device.close();
  const files = await messagesFor(DESK, 3);
  const text = (await Promise.all(files.map((f) => readFile(f, 'latin1')))).find((t) => t.includes('fax from the old machine'));
  assert.ok(text);
  assert.match(text, /\nline one\nline two\n$/, 'bare LF normalised (Dovecot stores LF; no stray CR)');
  assert.ok(!text.includes('\r'), 'no bare CR reached the mailbox');
});

test('a 30 MB attachment arrives byte-identical while the relay grows by less than 64 MB', { skip }, async () => {
  const message = attachmentMessage('scan@printer.local', [DESK], 'big scan', 30 * 1024 * 1024);
  await writeFile(`/proc/${relay.pid}/clear_refs`, '5'); // reset the peak-RSS counter (VmHWM)
  const before = relay.memory();
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: port(), secure: false, ignoreTLS: true, auth: { user: 'mfp2', pass: PASSWORD } });
  const started = Date.now();
  await transport.sendMail({ envelope: { from: 'scan@printer.local', to: [DESK] }, raw: message });
  transport.close();
  const accepted = Date.now() - started;
  const files = await messagesFor(DESK, 4, 120_000);
  let big = '';
  for (const f of files) {
    const text = await readFile(f, 'latin1');
    if (text.includes('Subject: big scan')) big = f;
  }
  assert.ok(big, 'the big message arrived');
  const sentBody = message.slice(message.indexOf('\r\n\r\n') + 4).replaceAll('\r\n', '\n');
  assert.equal(sha256(await deliveredBody(big)), sha256(sentBody), 'attachment byte-identical');
  const after = relay.memory();
  const growth = after.peak - before.rss;
  process.stdout.write(`# 30 MB attachment (${(message.length / 1e6).toFixed(1)} MB message): accepted in ${accepted} ms, relay RSS ${(before.rss / 1e6).toFixed(0)} MB → peak ${(after.peak / 1e6).toFixed(0)} MB (growth ${(growth / 1e6).toFixed(1)} MB)\n`);
  assert.ok(growth < 64 * 1024 * 1024, `relay peak RSS grew by ${growth} bytes`);
});

test('open relay attempts, wrong passwords, oversize messages and smuggling get the right replies and relay nothing', { skip }, async () => {
  // Unknown address, no AUTH: 530 at MAIL FROM. (127.0.0.2 is loopback but not admitted.)
  const stranger = await SmtpDevice.connect(port(), '127.0.0.2');
  await stranger.reply();
  await stranger.command('EHLO stranger');
  const mail = await stranger.command('MAIL FROM:<spam@example.net>');
  assert.equal(mail.code, 530);
  assert.match(mail.text, /5\.7\.0 Authentication required/);
  assert.equal((await stranger.command('RCPT TO:<victim@example.net>')).code, 503);
  stranger.close();

  // Wrong password: 535; the device's address gets back-off after repeated failures.
  const guesser = await SmtpDevice.connect(port(), '127.0.0.3');
  await guesser.reply();
  await guesser.command('EHLO guesser');
  const auth = await guesser.command(`AUTH PLAIN ${Buffer.from('\0mfp2\0wrong').toString('base64')}`);
  assert.equal(auth.code, 535);
  assert.match(auth.text, /5\.7\.8/);
  guesser.close();

  // Device rules: sender and recipient domain lists.
  const lobby = nodemailer.createTransport({ host: '127.0.0.1', port: port(), secure: false, ignoreTLS: true, auth: { user: 'lobby', pass: PASSWORD } });
  await assert.rejects(lobby.sendMail({ from: 'someone@elsewhere.example', to: DESK, text: 'x' }), /550 5\.7\.1 Sender address not allowed/);
  await assert.rejects(lobby.sendMail({ from: 'scan@printer.local', to: 'victim@example.net', text: 'x' }), /550 5\.7\.1 Recipient domain not allowed/);
  lobby.close();

  // Oversize: SIZE announced and enforced (552), nothing spooled.
  const big = await SmtpDevice.connect(port());
  await big.reply();
  const ehlo = await big.command('EHLO big');
  assert.match(ehlo.text, /SIZE 52428800/);
  assert.equal((await big.command(`AUTH PLAIN ${Buffer.from(`\0mfp2\0${PASSWORD}`).toString('base64')}`)).code, 235);
  assert.equal((await big.command('MAIL FROM:<scan@printer.local> SIZE=60000000')).code, 552);
  assert.equal((await big.command('MAIL FROM:<scan@printer.local>')).code, 250);
  assert.equal((await big.command(`RCPT TO:<${DESK}>`)).code, 250);
  assert.equal((await big.command('DATA')).code, 354);
  const chunk = Buffer.alloc(1024 * 1024, 'A');
  for (let i = 0; i < 51; i++) big.write(Buffer.concat([chunk, Buffer.from('\r\n')]));
  big.write('.\r\n');
  const tooBig = await big.reply(60_000);
  assert.equal(tooBig.code, 552);

  // Smuggling: none of these end the message early; the "smuggled" transaction is body text.
  for (const trick of ['\n.\n', '\r.\r', '\n.\r\n', '\r\n.\n', '\r.\r\n']) {
    assert.equal((await big.command('RSET')).code, 250);
    assert.equal((await big.command('MAIL FROM:<scan@printer.local>')).code, 250);
    assert.equal((await big.command(`RCPT TO:<${DESK}>`)).code, 250);
    assert.equal((await big.command('DATA')).code, 354);
    big.write(`Subject: smuggle ${JSON.stringify(trick)}\r\n\r\nbefore${trick}MAIL FROM:<evil@example.net>\r\nRCPT TO:<${SANDBOX_MAILBOX}>\r\nDATA\r\nSubject: smuggled\r\n\r\nevil\r\n.\r\n`);
    const r = await big.reply();
    assert.equal(r.code, 250, `one message for ${JSON.stringify(trick)}`);
  }
  big.close();

  const headerOf = (t: string) => t.slice(0, t.indexOf('\n\n'));
  const deskTexts = async () => Promise.all((await peers.waitForMessages(DESK, 0, 100)).map((f) => readFile(f, 'latin1')));
  // Wait for the five by subject, not by a count: at-least-once delivery may legitimately repeat an earlier message.
  await eventually(async () => (await deskTexts()).filter((t) => /^Subject: smuggle "/m.test(headerOf(t))).length >= 5, 60_000, 'five smuggle messages');
  const texts = await deskTexts();
  const smuggles = texts.filter((t) => /^Subject: smuggle "/m.test(headerOf(t)));
  assert.equal(new Set(smuggles.map((t) => /^Subject: (.*)$/m.exec(headerOf(t))?.[1])).size, 5);
  assert.ok(smuggles.every((t) => t.slice(t.indexOf('\n\n')).includes('MAIL FROM:<evil@example.net>')), 'the smuggled commands stayed body text');
  assert.ok(texts.every((t) => !/^Subject: smuggled/m.test(headerOf(t))), 'no smuggled message was delivered as its own');
  assert.ok(!texts.some((t) => t.includes('AAAAAAAAAA')), 'nothing of the oversize message was relayed');
  const scanner = await peers.waitForMessages(SANDBOX_MAILBOX, 0, 100);
  for (const f of scanner) assert.ok(!(await readFile(f, 'latin1')).includes('evil'), 'no smuggled message reached the other mailbox');
});

test('kill -9 after 250 and before delivery: delivered after restart; Postfix down while 20 messages are sent: all arrive', { skip }, async () => {
  const already = (await peers.waitForMessages(SANDBOX_MAILBOX, 0, 100)).length;
  await peers.stopPostfix();
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: port(), secure: false, ignoreTLS: true, auth: { user: 'mfp2', pass: PASSWORD } });
  const sends = Array.from({ length: 20 }, (_, i) => transport.sendMail({ from: 'scan@printer.local', to: SANDBOX_MAILBOX, subject: `outage ${i}`, text: `page ${i}` }));
  const infos = await Promise.all(sends);
  assert.ok(infos.every((i) => i.response.startsWith('250 ')), 'every device got 250 while Postfix was down');
  transport.close();
  await relay.waitForLog(/"msg":"[^"]*deferred/, 30_000).catch(() => undefined);

  earlierLogs.push(relay.logText());
  await relay.kill9();
  await peers.startPostfix();
  relay = await startRelay(env.configFile, keyEnv);
  const files = await messagesFor(SANDBOX_MAILBOX, already + 20, 90_000);
  const subjects = (await Promise.all(files.map((f) => readFile(f, 'latin1')))).map((t) => /^Subject: (outage \d+)$/m.exec(t)?.[1]).filter(Boolean);
  assert.equal(new Set(subjects).size, 20, 'all 20 arrived, each once or more (at-least-once)');
  assert.equal(subjects.length, 20, 'no duplicates in the clean case');
});

test('token revoked: delivery holds the mail, the account turns invalid, a new sign-in releases it', { skip }, async () => {
  earlierLogs.push(relay.logText());
  await relay.stop();
  // The access token expired while the relay was down (its entry is taken out of the stored cache), so the relay must
  // refresh, and meets the revocation. (A still-valid access token would be served without asking the platform.)
  env.sim.revokeRefreshTokens(SANDBOX_MAILBOX);
  const { createEncryptedFileStore } = await import('../../src/auth/store/index.js');
  const store = createEncryptedFileStore({ stateDir: env.config.stateDir, key: Buffer.from(keyEnv.XOAUTH2_RELAY_KEY, 'hex') });
  const cache = JSON.parse((await store.load('scanner'))!) as { AccessToken?: Record<string, unknown> };
  cache.AccessToken = {};
  await store.save('scanner', JSON.stringify(cache));
  const stateFile = join(env.config.stateDir, 'state', 'scanner.json');
  relay = await startRelay(env.configFile, keyEnv);
  const before = (await peers.waitForMessages(SANDBOX_MAILBOX, 0, 100)).length;
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: port(), secure: false, ignoreTLS: true, auth: { user: 'mfp2', pass: PASSWORD } });
  const info = await transport.sendMail({ from: 'scan@printer.local', to: SANDBOX_MAILBOX, subject: 'held scan', text: 'waits for a sign-in' });
  transport.close();
  assert.match(info.response, /^250 /);
  await eventually(async () => JSON.parse(await readFile(stateFile, 'utf8')).token.state === 'invalid', 20_000, 'account invalid');
  await relay.waitForLog(/needs a new sign-in: refresh token revoked/, 10_000);
  await eventually(async () => {
    const list = await import('../support/run-cli.js').then((m) => m.runCli(['queue', 'list', '--json'], { ...keyEnv, XOAUTH2_RELAY_CONFIG: env.configFile }));
    return (JSON.parse(list.stdout) as Array<{ status: string }>).some((r) => r.status === 'held');
  }, 20_000, 'message held');
  assert.equal((await peers.waitForMessages(SANDBOX_MAILBOX, 0, 100)).length, before, 'nothing delivered while invalid');

  await signIn(); // another process (as `xoauth2-relay login` would); the daemon notices the new state
  const files = await messagesFor(SANDBOX_MAILBOX, before + 1, 30_000);
  assert.ok((await Promise.all(files.map((f) => readFile(f, 'latin1')))).some((t) => t.includes('Subject: held scan')));
});


test('SIGHUP: a reload with a restart-only change is refused as a whole; a device added alone can send at once; a broken config is refused', { skip }, async () => {
  const { parse, stringify } = await import('yaml');
  const original = await readFile(env.configFile, 'utf8');
  const send = (user: string) => {
    const t = nodemailer.createTransport({ host: '127.0.0.1', port: port(), secure: false, ignoreTLS: true, auth: { user, pass: PASSWORD } });
    return t.sendMail({ from: 'scan@printer.local', to: DESK, subject: `from ${user}`, text: 'x' }).finally(() => t.close());
  };
  await assert.rejects(send('late'), /535/);
  try {
    const config = parse(original) as { devices: Array<Record<string, unknown>>; smtp: { maxMessageBytes: number } };
    config.devices.push({ name: 'late', username: 'late', passwordHash: config.devices[0]!.passwordHash, account: 'scanner' });
    config.smtp.maxMessageBytes += 1;
    await writeFile(env.configFile, stringify(config));
    relay.child.kill('SIGHUP');
    const refused = await relay.waitForLog(/"msg":"reload refused as a whole: smtp\.maxMessageBytes can change only with a restart/);
    assert.deepEqual(refused.refused, ['smtp.maxMessageBytes']);
    await assert.rejects(send('late'), /535/, 'nothing of the refused reload applied, not even the device');

    config.smtp.maxMessageBytes -= 1;
    await writeFile(env.configFile, stringify(config));
    relay.child.kill('SIGHUP');
    const line = await relay.waitForLog(/"msg":"configuration reloaded: devices"/);
    assert.deepEqual(line.applied, ['devices']);
    assert.match((await send('late')).response, /^250 /);

    await writeFile(env.configFile, 'accounts: [broken\n');
    relay.child.kill('SIGHUP');
    await relay.waitForLog(/reload refused: the configuration has errors/);
    assert.match((await send('late')).response, /^250 /, 'the running configuration stays');
  } finally {
    await writeFile(env.configFile, original);
  }
});

test('the relay log holds no device password, no access token and no XOAUTH2 string', { skip }, async () => {
  const log = [...earlierLogs, relay.logText()].join('');
  assert.ok(earlierLogs.length === 2, 'covers every relay process of this file');
  assert.ok(log.includes('"msg":"message accepted"'), 'the log is the relay\'s');
  assert.ok(!log.includes(PASSWORD), 'device password in the log');
  assert.ok(!/eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}/.test(log), 'a JWT (access token) in the log');
  assert.ok(!/dXNlcj[A-Za-z0-9+/=]{20,}/.test(log), 'an XOAUTH2 string (base64 of "user=…") in the log');
});

test('a message/partial split scan (3 parts) and the MIME inside it arrive byte-identical through Postfix and Dovecot', { skip }, async () => {
  // From the mailbox itself, so the default sender policy keeps every header as sent.
  const { original, parts } = partialMessages(SANDBOX_MAILBOX, [SANDBOX_MAILBOX], `split scan ${Date.now()}`, 3);
  const before = (await peers.waitForMessages(SANDBOX_MAILBOX, 0, 100)).length;
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: port(), secure: false, ignoreTLS: true, auth: { user: 'mfp2', pass: PASSWORD } });
  try {
    for (const raw of parts) await transport.sendMail({ envelope: { from: SANDBOX_MAILBOX, to: [SANDBOX_MAILBOX] }, raw });
  } finally {
    transport.close();
  }
  const files = await messagesFor(SANDBOX_MAILBOX, before + 3, 60_000);
  const texts = await Promise.all(files.map((f) => readFile(f, 'latin1')));
  // Dovecot stores LF line endings; the relay's and Postfix's trace lines (and Return-Path) come before the
  // device's first header. From there on, every byte must be the device's.
  const lf = (s: string) => s.replaceAll('\r\n', '\n');
  const fragments: string[] = [];
  for (const [i, sent] of parts.entries()) {
    const firstHeader = sent.slice(0, sent.indexOf('\r\n'));
    const subject = /^Subject: (.*)$/m.exec(sent)![1]!;
    const text = texts.find((t) => t.includes(`\nSubject: ${subject}\n`));
    assert.ok(text, `part ${i + 1} arrived`);
    const added = text.slice(0, text.indexOf(`\n${firstHeader}\n`) + 1);
    assert.ok(added.split('\n').filter(Boolean).every((l) => /^(Return-Path|X-Original-To|Delivered-To|Received):|^\s/.test(l)), `only trace lines added before the original headers: ${added}`);
    assert.equal(sha256(text.slice(added.length)), sha256(lf(sent)), `part ${i + 1} byte-identical from its first header on`);
    fragments.push(text.slice(text.indexOf('\n\n') + 2));
  }
  assert.equal(sha256(fragments.join('')), sha256(lf(original)), 'the fragments reassemble into the original message (RFC 2046 §5.2.2.1)');
});
