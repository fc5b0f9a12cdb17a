/**
 * The device-facing front door with the real clients field devices resemble (swaks, curl, openssl s_client) and
 * raw sockets: `tls: auto` serving implicit TLS and plain+STARTTLS on one port per protocol (and greeting a client
 * that sends nothing); one rule for a login before TLS (refused with the standard reply on starttls listeners,
 * accepted on none listeners and after STARTTLS); and the one info line plus the metric that say why a TLS 1.0
 * device failed on a modern listener, with that same client succeeding once `tls.legacyDevices` is on.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RelayMetrics } from '../../src/admin/metrics.js';
import { DeviceDirectory } from '../../src/auth/device-directory.js';
import { FailureThrottle } from '../../src/auth/failure-throttle.js';
import { hashPassword } from '../../src/auth/password-hash.js';
import { configSchema, type Config, type LoginBeforeTls, type TlsMode } from '../../src/config/schema.js';
import { SmtpListener } from '../../src/smtp/listener.js';
import { Spool } from '../../src/smtp/spool/index.js';
import { LineClient } from '../support/peers/line-client.js';
import { memoryLogger } from '../support/memory-logger.js';
import { useFrontHarness } from './support/front-harness.js';
import { MFP } from './support/relay-fixture.js';

const have = (bin: string): boolean => {
  try {
    execFileSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};
const missing = ['swaks', 'curl', 'openssl'].filter((b) => !have(b));
const skip = missing.length > 0 ? `real client(s) not installed: ${missing.join(', ')} (scripts/setup-debian.sh installs them)` : false;

interface Run {
  code: number;
  out: string;
}

/**
 * Runs a client to its end; never rejects: the exit code is part of the result. `input` goes to its stdin after
 * `inputDelayMs` (a command typed before the greeting would make smtp-server answer "421 You talk too soon").
 */
function run(bin: string, args: string[], input = '', inputDelayMs = 0): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(bin, args, { timeout: 15_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, out: `${stdout}\n${stderr}` });
    });
    const timer = setTimeout(() => child.stdin?.end(input), inputDelayMs);
    child.on('exit', () => clearTimeout(timer));
  });
}

const imap = useFrontHarness('imap');
const pop3 = useFrontHarness('pop3');
const dir = mkdtempSync(join(tmpdir(), 'xoauth2-relay-field-tls-'));
const caFile = join(dir, 'ca.pem');
after(() => rm(dir, { recursive: true, force: true }));

/** The harnesses' worlds are made in their own `before`: the CA file for the clients is written from one on first use. */
async function trustedCa(harness = imap): Promise<string> {
  await writeFile(caFile, harness.world().caCertPem);
  return caFile;
}

// ── SMTP ────────────────────────────────────────────────────────────────────────────────────────────────────────

interface SmtpOptions {
  tls: TlsMode;
  loginBeforeTls?: LoginBeforeTls;
  legacyDevices?: boolean;
}

async function smtpRelay(o: SmtpOptions) {
  const spoolDir = await mkdtemp(join(dir, 'spool-'));
  const config: Config = configSchema.parse({
    stateDir: spoolDir,
    accounts: { scanner: { mailbox: 'scanner@contoso.com', tenantId: 'contoso.com', clientId: '66666666-7777-8888-9999-000000000000' } },
    devices: [{ name: 'mfp', username: MFP.username, passwordHash: await hashPassword(MFP.password, { N: 16384, r: 8, p: 1 }), account: 'scanner' }],
    smtp: { listen: [{ host: '127.0.0.1', port: 0, tls: o.tls, loginBeforeTls: o.loginBeforeTls ?? 'refuse' }] },
    tls: { legacyDevices: o.legacyDevices ?? false },
  });
  const spool = await Spool.open(spoolDir, { maxMessageBytes: config.smtp.maxMessageBytes });
  const memory = memoryLogger();
  const metrics = new RelayMetrics({ processMetrics: false });
  const listener = new SmtpListener({
    config, listen: config.smtp.listen[0]!, devices: new DeviceDirectory(config.devices), throttle: new FailureThrottle(),
    tls: imap.world().deviceTls, sink: spool, logger: memory.logger, metrics,
  });
  const port = await listener.listen();
  return { port, spool, metrics, log: memory.text, close: () => listener.close() };
}

function swaks(port: number, extra: string[]): Promise<Run> {
  return run('swaks', ['--server', '127.0.0.1', '--port', String(port), '--from', 'fax@printer.local', '--to', 'desk@contoso.com', '--header', 'Subject: field test', '--body', 'scan attached', '--timeout', '10', ...extra]);
}

async function message(): Promise<string> {
  const file = join(dir, 'message.eml');
  await writeFile(file, 'From: fax@printer.local\r\nTo: desk@contoso.com\r\nSubject: curl\r\n\r\nscan\r\n');
  return file;
}

const swaksAuth = ['--auth', 'LOGIN', '--auth-user', MFP.username, '--auth-password', MFP.password];

describe('SMTP', { skip }, () => {
  test('tls: auto on one port: curl smtps:// (implicit TLS), curl STARTTLS, openssl s_client, and a silent socket greeted', async () => {
    await trustedCa();
    const relay = await smtpRelay({ tls: 'auto' });
    try {
      const file = await message();
      const curl = await run('curl', ['-sS', '--cacert', caFile, `smtps://127.0.0.1:${relay.port}`, '--user', `${MFP.username}:${MFP.password}`, '--mail-from', 'fax@printer.local', '--mail-rcpt', 'desk@contoso.com', '-T', file]);
      assert.equal(curl.code, 0, curl.out);

      const starttls = await run('curl', ['-sS', '-v', '--ssl-reqd', '--cacert', caFile, `smtp://127.0.0.1:${relay.port}`, '--user', `${MFP.username}:${MFP.password}`, '--mail-from', 'fax@printer.local', '--mail-rcpt', 'desk@contoso.com', '-T', file]);
      assert.equal(starttls.code, 0, starttls.out);
      assert.match(starttls.out, /< 250-STARTTLS/);
      assert.match(starttls.out, /< 220 Ready to start TLS/);
      assert.match(starttls.out, /< 250 2\.0\.0 Ok: queued as/);

      const sClient = await run('openssl', ['s_client', '-connect', `127.0.0.1:${relay.port}`, '-CAfile', caFile, '-quiet', '-verify_return_error'], 'EHLO fax\r\nQUIT\r\n', 700);
      assert.match(sClient.out, /^220 .*xoauth2-relay ESMTP/m, sClient.out);
      assert.match(sClient.out, /^250-AUTH PLAIN LOGIN/m, 'a TLS session offers AUTH');
      assert.doesNotMatch(sClient.out, /^250-STARTTLS/m, 'and no STARTTLS: it is TLS already');

      const silent = await LineClient.connect({ port: relay.port, timeoutMs: 5000 });
      const greeting = await silent.smtpReply();
      silent.close();
      assert.equal(greeting.code, 220, 'a device that waits for the greeting gets it');
      assert.equal((await relay.spool.list()).length, 2);
      assert.doesNotMatch(relay.log(), /handshake failed/);
    } finally {
      await relay.close();
    }
  });

  test('AUTH before STARTTLS: 530 5.7.0 on a starttls listener, accepted after STARTTLS and on a none listener', async () => {
    await trustedCa();
    const starttls = await smtpRelay({ tls: 'starttls' });
    const none = await smtpRelay({ tls: 'none' });
    try {
      const refused = await swaks(starttls.port, swaksAuth);
      assert.notEqual(refused.code, 0);
      assert.match(refused.out, /<\*\* 530 5\.7\.0 Must issue a STARTTLS command first/);
      // Refused at the AUTH command: the device was never asked for its user name or password over clear text.
      assert.doesNotMatch(refused.out, / 334 /, refused.out);
      assert.match(starttls.log(), /device login refused.*without TLS/);
      // swaks needs Net::SSLeay for --tls, which Debian only recommends: curl is the STARTTLS client here.
      const afterTls = await run('curl', ['-sS', '-v', '--ssl-reqd', '--cacert', caFile, `smtp://127.0.0.1:${starttls.port}`, '--user', `${MFP.username}:${MFP.password}`, '--mail-from', 'fax@printer.local', '--mail-rcpt', 'desk@contoso.com', '-T', await message()]);
      assert.equal(afterTls.code, 0, afterTls.out);
      assert.match(afterTls.out, /< 235 /);
      const plain = await swaks(none.port, swaksAuth);
      assert.equal(plain.code, 0, plain.out);
      assert.match(plain.out, /<- {2}235 /);
      assert.equal((await starttls.spool.list()).length, 1);
      assert.equal((await none.spool.list()).length, 1);
    } finally {
      await Promise.all([starttls.close(), none.close()]);
    }
  });

  test('a TLS 1.0 device on a modern auto listener: one info line naming TLS 1.0 and the fix, a metric; legacyDevices: true lets it in', async () => {
    await trustedCa();
    const modern = await smtpRelay({ tls: 'auto' });
    const legacy = await smtpRelay({ tls: 'auto', legacyDevices: true });
    try {
      const tls1 = ['s_client', '-tls1', '-cipher', 'DEFAULT@SECLEVEL=0', '-CAfile', caFile, '-quiet'];
      const failed = await run('openssl', [...tls1, '-connect', `127.0.0.1:${modern.port}`], 'QUIT\r\n');
      assert.doesNotMatch(failed.out, /^220 /m);
      const lines = modern.log().split('\n').filter((l) => l.includes('TLS handshake failed'));
      assert.equal(lines.length, 1, modern.log());
      const line = JSON.parse(lines[0]!) as { level: string; msg: string; reason: string; offered: string };
      assert.equal(line.level, 'info');
      assert.equal(line.reason, 'version-too-old');
      assert.equal(line.offered, 'tls1.0');
      assert.match(line.msg, /device offered TLS 1\.0 at most; this listener requires TLS 1\.2\+: set tls\.legacyDevices: true/);
      const { body } = await modern.metrics.exposition();
      assert.match(body, /xoauth2_relay_tls_handshake_failures_total\{protocol="smtp",listener="127\.0\.0\.1:\d+",reason="version-too-old",offered="tls1\.0"\} 1/);

      const ok = await run('openssl', [...tls1, '-connect', `127.0.0.1:${legacy.port}`], 'QUIT\r\n', 700);
      assert.match(ok.out, /^220 .*xoauth2-relay ESMTP/m, ok.out);
      assert.match(ok.out, /^221 /m);
      assert.doesNotMatch(legacy.log(), /handshake failed/);
    } finally {
      await Promise.all([modern.close(), legacy.close()]);
    }
  });

  test('STARTTLS with TLS 1.0 inside smtp-server: the line says the device offered only versions older than TLS 1.2', async () => {
    await trustedCa();
    const relay = await smtpRelay({ tls: 'starttls' });
    try {
      await run('openssl', ['s_client', '-starttls', 'smtp', '-tls1', '-cipher', 'DEFAULT@SECLEVEL=0', '-CAfile', caFile, '-quiet', '-connect', `127.0.0.1:${relay.port}`], 'QUIT\r\n');
      const lines = relay.log().split('\n').filter((l) => l.includes('TLS handshake failed'));
      assert.equal(lines.length, 1, relay.log());
      assert.match(lines[0]!, /"tls":"starttls".*"offered":"below-tls1\.2".*device offered only TLS versions older than TLS 1\.2; this listener requires TLS 1\.2\+: set tls\.legacyDevices: true/);
    } finally {
      await relay.close();
    }
  });
});

test('SMTP: a device that drops the connection in the middle of DATA is logged at info, nothing stored', async () => {
  await trustedCa();
  const relay = await smtpRelay({ tls: 'none' });
  try {
    const d = await LineClient.connect({ port: relay.port, timeoutMs: 5000 });
    await d.smtpReply();
    await d.smtp('EHLO mfp');
    const auth = await d.smtp(`AUTH PLAIN ${Buffer.from(`\0${MFP.username}\0${MFP.password}`).toString('base64')}`);
    assert.equal(auth.code, 235, auth.text);
    assert.equal((await d.smtp('MAIL FROM:<fax@printer.local>')).code, 250);
    assert.equal((await d.smtp('RCPT TO:<desk@contoso.com>')).code, 250);
    assert.equal((await d.smtp('DATA')).code, 354);
    await d.write('Subject: half a scan\r\n\r\nfirst half of the page');
    d.close();
    await eventually(() => relay.log().includes('in the middle of DATA'));
    const line = JSON.parse(relay.log().split('\n').find((l) => l.includes('in the middle of DATA'))!) as { level: string };
    assert.equal(line.level, 'info');
    assert.doesNotMatch(relay.log(), /"level":"(error|warn)"/);
    assert.deepEqual(await relay.spool.list(), []);
  } finally {
    await relay.close();
  }
});

async function eventually(check: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !check(); i++) await new Promise((r) => setTimeout(r, 20));
  assert.ok(check(), 'the expected log line did not come');
}

// ── IMAP and POP3 ───────────────────────────────────────────────────────────────────────────────────────────────

describe('IMAP', { skip }, () => {
  test('tls: auto on one port: curl imaps:// (implicit TLS), curl --ssl-reqd imap:// (STARTTLS), a silent socket greeted', async () => {
    await trustedCa();
    const server = await imap.upstream();
    const { port } = await imap.relay({ upstreamPort: server.port, tls: 'auto' });
    const user = `${MFP.username}:${MFP.password}`;
    const implicit = await run('curl', ['-sS', '-v', '--cacert', caFile, '--user', user, `imaps://127.0.0.1:${port}/`, '-X', 'NOOP']);
    assert.equal(implicit.code, 0, implicit.out);
    assert.match(implicit.out, /< \* OK \[CAPABILITY IMAP4rev1 SASL-IR LITERAL\+ ID AUTH=PLAIN AUTH=LOGIN\] xoauth2-relay IMAP ready/);
    const starttls = await run('curl', ['-sS', '-v', '--ssl-reqd', '--cacert', caFile, '--user', user, `imap://127.0.0.1:${port}/`, '-X', 'NOOP']);
    assert.equal(starttls.code, 0, starttls.out);
    assert.match(starttls.out, /STARTTLS LOGINDISABLED/);
    assert.match(starttls.out, /OK Begin TLS negotiation now/);
    assert.equal(server.connections, 2, 'both logged in upstream');
    const silent = await imap.device(port);
    assert.match(silent.greeting, /^\* OK \[CAPABILITY .*STARTTLS LOGINDISABLED\] xoauth2-relay IMAP ready$/);
  });

  test('LOGIN before STARTTLS: NO [PRIVACYREQUIRED] on starttls, OK on none, OK on starttls with loginBeforeTls: allow', async () => {
    const server = await imap.upstream();
    const starttls = await imap.relay({ upstreamPort: server.port, tls: 'starttls' });
    const none = await imap.relay({ upstreamPort: server.port, tls: 'none' });
    const allow = await imap.relay({ upstreamPort: server.port, tls: 'starttls', loginBeforeTls: 'allow' });
    const refused = await imap.device(starttls.port);
    assert.match(refused.greeting, /LOGINDISABLED/);
    assert.deepEqual(await refused.client.imap('a', `LOGIN ${MFP.username} ${MFP.password}`), ['a NO [PRIVACYREQUIRED] Use STARTTLS before logging in']);
    const plain = await imap.device(none.port);
    assert.match((await plain.client.imap('a', `LOGIN ${MFP.username} ${MFP.password}`)).join('\n'), /^a OK \[CAPABILITY .*\] Logged in$/);
    const allowed = await imap.device(allow.port);
    assert.match(allowed.greeting, /STARTTLS AUTH=PLAIN AUTH=LOGIN\]/);
    assert.match((await allowed.client.imap('a', `LOGIN ${MFP.username} ${MFP.password}`)).join('\n'), /^a OK \[CAPABILITY .*\] Logged in$/);
  });

  test('STARTTLS with TLS 1.0 on a modern listener: the ClientHello read before the handshake names TLS 1.0', async () => {
    await trustedCa();
    const server = await imap.upstream();
    const { port } = await imap.relay({ upstreamPort: server.port, tls: 'starttls' });
    await run('openssl', ['s_client', '-starttls', 'imap', '-tls1', '-cipher', 'DEFAULT@SECLEVEL=0', '-CAfile', caFile, '-quiet', '-connect', `127.0.0.1:${port}`], 'a LOGOUT\r\n');
    const lines = imap.world().logText().split('\n').filter((l) => l.includes('TLS handshake failed') && l.includes(`127.0.0.1:${port}`));
    assert.equal(lines.length, 1, imap.world().logText());
    assert.match(lines[0]!, /"tls":"starttls".*"offered":"tls1\.0".*device offered TLS 1\.0 at most; this listener requires TLS 1\.2\+: set tls\.legacyDevices: true/);
  });
});

test('IMAP: a plain-text client on an implicit listener is told apart: reason not-tls, with the fix', async () => {
  const server = await imap.upstream();
  const { port } = await imap.relay({ upstreamPort: server.port, tls: 'implicit' });
  const client = await LineClient.connect({ port, timeoutMs: 5000 });
  client.send('a CAPABILITY');
  await assert.rejects(client.readLine(), /closed|ECONNRESET/);
  const lines = imap.world().logText().split('\n').filter((l) => l.includes('TLS handshake failed') && l.includes(`127.0.0.1:${port}`));
  assert.equal(lines.length, 1);
  assert.match(lines[0]!, /"tls":"implicit","reason":"not-tls".*device sent something other than a TLS handshake: it speaks plain text, so give it a listener with tls: auto, starttls or none/);
});

describe('POP3', { skip }, () => {
  test('tls: auto on one port: curl pop3s:// (implicit TLS), curl --ssl-reqd pop3:// (STLS), a silent socket greeted', async () => {
    await trustedCa(pop3);
    const server = await pop3.upstream();
    const { port } = await pop3.relay({ upstreamPort: server.port, tls: 'auto' });
    const user = `${MFP.username}:${MFP.password}`;
    const implicit = await run('curl', ['-sS', '-v', '--cacert', caFile, '--user', user, `pop3s://127.0.0.1:${port}/`, '-X', 'NOOP', '-I']);
    assert.equal(implicit.code, 0, implicit.out);
    assert.match(implicit.out, /< \+OK xoauth2-relay POP3 ready/);
    const starttls = await run('curl', ['-sS', '-v', '--ssl-reqd', '--cacert', caFile, '--user', user, `pop3://127.0.0.1:${port}/`, '-X', 'NOOP', '-I']);
    assert.equal(starttls.code, 0, starttls.out);
    assert.match(starttls.out, /< \+OK Begin TLS negotiation now/);
    assert.equal(server.connections, 2, 'both logged in upstream');
    const silent = await pop3.device(port);
    assert.equal(silent.greeting, '+OK xoauth2-relay POP3 ready');
  });

  test('USER before STLS: -ERR [AUTH] on starttls, +OK on none', async () => {
    const server = await pop3.upstream();
    const starttls = await pop3.relay({ upstreamPort: server.port, tls: 'starttls' });
    const none = await pop3.relay({ upstreamPort: server.port, tls: 'none' });
    const refused = await pop3.device(starttls.port);
    refused.client.send(`USER ${MFP.username}`);
    assert.equal(await refused.client.readLine(), '-ERR [AUTH] Use STLS before logging in');
    const plain = await pop3.device(none.port);
    plain.client.send(`USER ${MFP.username}`);
    assert.equal(await plain.client.readLine(), '+OK Send PASS');
    plain.client.send(`PASS ${MFP.password}`);
    assert.equal(await plain.client.readLine(), '+OK Logged in');
  });
});
