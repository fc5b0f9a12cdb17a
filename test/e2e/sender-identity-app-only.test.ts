/**
 * End to end through the relay daemon (`xoauth2-relay run`, a child process) against the sandbox mailbox, which
 * checks senders and app-only role scope the way Exchange Online does (switched through its control API):
 * - a scanner with a fixed foreign From delivers under the default policy (From rewritten, Reply-To kept, checked
 *   in the delivered bytes); under `keep` without the grant it is dead-lettered with the SendAs fix; with the grant
 *   listed in the mailbox, `keep` delivers the message unchanged;
 * - app-only with a certificate: SMTP, IMAP and POP3 through the relay; refused once the sandbox takes the mailbox
 *   out of the app's role scope, and the doctor names the missing role assignment.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ImapFlow } from 'imapflow';
import nodemailer from 'nodemailer';
import { hashPassword } from '../../src/auth/password-hash.js';
import { SANDBOX_MAILBOX } from '../../src/sandbox/sandbox-config.js';
import { Spool } from '../../src/smtp/spool/spool.js';
import { startRelay, type RelayProcess } from '../support/relay-process.js';
import { APP_CLIENT_ID, APP_MAILBOX, KEY_ENV, startSandboxMailWorld, type SandboxMailWorld } from '../support/sandbox-mail-world.js';
import { eventually } from '../support/sandbox-env.js';
import { runCli } from '../support/run-cli.js';

const PASSWORD = 'front desk pass 1';
const FOREIGN = '"Floor 2 Scanner" <noreply@printer.local>';
let world: SandboxMailWorld;
let relay: RelayProcess;

before(async () => {
  const hash = await hashPassword(PASSWORD);
  world = await startSandboxMailWorld(() => ({
    devices: [
      { name: 'fixed-from', account: 'scanner', allowFrom: ['127.0.0.1/32'] },
      { name: 'myq', username: 'myq', passwordHash: hash, account: 'scanner', senderPolicy: 'keep' },
      { name: 'desk-mfp', username: 'desk', passwordHash: hash, account: 'frontdesk' },
    ],
    smtp: { listen: [{ host: '127.0.0.1', port: 0, tls: 'none' }] },
    imap: { listen: [{ host: '127.0.0.1', port: 0, tls: 'none' }] },
    pop3: { listen: [{ host: '127.0.0.1', port: 0, tls: 'none' }] },
  }));
  await world.signIn();
  relay = await startRelay(world.env.configFile, KEY_ENV);
});

after(async () => {
  await relay?.stop().catch(() => undefined);
  await world?.close();
});

async function send(from: string, subject: string, auth?: { user: string; pass: string }): Promise<void> {
  const device = nodemailer.createTransport({ host: '127.0.0.1', port: relay.ports.smtp[0]!, secure: false, ignoreTLS: true, ...(auth ? { auth } : {}) });
  try {
    await device.sendMail({ envelope: { from: from.replace(/^.*<|>$/g, ''), to: ['desk@sandbox.test'] }, raw: `From: ${from}\r\nTo: desk@sandbox.test\r\nSubject: ${subject}\r\n\r\nscan\r\n` });
  } finally {
    device.close();
  }
}

/** The delivered bytes of the message with this subject in desk@sandbox.test. */
async function delivered(subject: string): Promise<string> {
  return eventually(async () => {
    for (const m of await world.mailbox.messages('desk@sandbox.test')) {
      const bytes = await readFile(join(world.maildir, 'desk@sandbox.test', 'new', m.file), 'latin1');
      if (bytes.includes(`Subject: ${subject}`)) return bytes;
    }
    return '';
  }, 20_000, `message "${subject}"`);
}

test('default policy: a fixed foreign From arrives with the mailbox as From and the original in Reply-To', async () => {
  await send(FOREIGN, 'fixed from');
  const bytes = await delivered('fixed from');
  assert.match(bytes, /^From: "Floor 2 Scanner" <scanner@sandbox\.test>\r$/m);
  assert.match(bytes, /^Reply-To: "Floor 2 Scanner" <noreply@printer\.local>\r$/m);
  assert.match(bytes, /^X-Original-From: "Floor 2 Scanner" <noreply@printer\.local>\r$/m);
});

test('keep without the grant: dead-lettered with the SendAs fix; with the grant listed in the mailbox, keep delivers unchanged', async () => {
  await send(FOREIGN, 'keep denied', { user: 'myq', pass: PASSWORD });
  const spool = await Spool.open(world.env.config.stateDir, { create: false });
  const dead = await eventually(async () => (await spool.listDead()).find((e) => e.device === 'myq'), 20_000, 'the dead letter');
  assert.equal(dead.state.lastCode, 'UPSTREAM_SEND_AS_DENIED');
  assert.match(dead.state.lastReply ?? '', /^550 5\.7\.60 SMTP; Client does not have permissions to send as this sender/);
  assert.match(dead.state.lastReason ?? '', new RegExp(`Add-RecipientPermission -Identity noreply@printer\\.local -Trustee ${SANDBOX_MAILBOX} -AccessRights SendAs`));
  assert.match(dead.state.lastReason ?? '', /default senderPolicy \(auto\)/);

  await world.setRules(SANDBOX_MAILBOX, { sendAs: ['noreply@printer.local'] });
  await send(FOREIGN, 'keep granted', { user: 'myq', pass: PASSWORD });
  const bytes = await delivered('keep granted');
  assert.match(bytes, /^From: "Floor 2 Scanner" <noreply@printer\.local>\r$/m, 'From as the device wrote it');
  assert.doesNotMatch(bytes, /^Reply-To:/m);
});

test('app-only with a certificate: SMTP, IMAP and POP3 through the relay; out of the role scope, refused and named by the doctor', async () => {
  await send(APP_MAILBOX, 'app-only scan', { user: 'desk', pass: PASSWORD });
  await delivered('app-only scan');

  const imap = new ImapFlow({ host: '127.0.0.1', port: relay.ports.imap[0]!, secure: false, doSTARTTLS: false, auth: { user: 'desk', pass: PASSWORD }, logger: false });
  await imap.connect();
  const inbox = await imap.mailboxOpen('INBOX', { readOnly: true });
  assert.equal(typeof inbox.exists, 'number');
  await imap.logout();

  const pop = await popLogin();
  assert.match(pop, /^\+OK/);

  await world.setRules(APP_MAILBOX, { appRoles: [] });
  const refusedImap = new ImapFlow({ host: '127.0.0.1', port: relay.ports.imap[0]!, secure: false, doSTARTTLS: false, auth: { user: 'desk', pass: PASSWORD }, logger: false });
  refusedImap.on('error', () => undefined);
  await assert.rejects(refusedImap.connect());
  assert.match(await popLogin(), /^-ERR \[SYS\/TEMP\] Mail server refused the relay's login/);

  const doctor = await runCli(['--config', world.env.configFile, 'doctor', 'frontdesk'], KEY_ENV);
  assert.equal(doctor.code, 1, doctor.stdout + doctor.stderr);
  assert.match(doctor.stdout, /FAIL  smtp-auth .*535 5\.7\.3/);
  assert.match(doctor.stdout, new RegExp(`fix: +New-ManagementRoleAssignment -App ${APP_CLIENT_ID} -Role "Application SMTP\\.SendAsApp"`));
  assert.match(doctor.stdout, /fix: +New-ManagementRoleAssignment .*-Role "Application IMAP\.AccessAsApp"/);
  assert.match(doctor.stdout, /fix: +New-ManagementRoleAssignment .*-Role "Application POP\.AccessAsApp"/);
});

/** USER/PASS through the relay's POP3; the answer to PASS. */
async function popLogin(): Promise<string> {
  const { connect } = await import('node:net');
  const socket = connect({ host: '127.0.0.1', port: relay.ports.pop3[0]! });
  const lines: string[] = [];
  let buffer = '';
  socket.on('data', (d: Buffer) => {
    buffer += d.toString('latin1');
    let i;
    while ((i = buffer.indexOf('\r\n')) !== -1) {
      lines.push(buffer.slice(0, i));
      buffer = buffer.slice(i + 2);
    }
  });
  const next = async (n: number) => eventually(() => lines.length >= n, 15_000, 'POP3 line');
  try {
    await next(1);
    socket.write('USER desk\r\n');
    await next(2);
    socket.write(`PASS ${PASSWORD}\r\n`);
    await next(3);
    socket.write('QUIT\r\n');
    return lines[2]!;
  } finally {
    socket.destroy();
  }
}
