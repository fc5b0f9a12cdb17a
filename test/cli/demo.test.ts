/**
 * The README's first command ends in `xoauth2-relay demo`: it must sign in, relay a test scan, and relay the
 * newcomer's own scan, with nothing but this machine.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { startCli } from '../support/run-cli.js';

test('demo: sign-in, a relayed test scan fetched back over POP3 through the relay, then a scan sent by the user arrives', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'xoauth2-relay-demo-'));
  const demo = startCli(['demo', '--auto-approve', '--smtp-port', '0', '--pop3-port', '0', '--imap-port', '0', '--admin-port', '0', '--state-dir', join(dir, 'demo')]);
  try {
    const [, port] = await demo.waitFor(/relay for devices: +SMTP 127\.0\.0\.1:(\d+), POP3 127\.0\.0\.1:\d+, IMAP 127\.0\.0\.1:\d+/);
    const [, adminUrl] = await demo.waitFor(/admin page: +(http:\/\/127\.0\.0\.1:\d+\/)/);
    const health = await fetch(`${adminUrl}healthz`);
    assert.equal(health.status, 200);
    await demo.waitFor(/✔ token acquired for scanner@sandbox\.test/);
    const [, firstFile] = await demo.waitFor(/✔ scan relayed: it is in the sandbox mailbox: (\S+)/);
    const delivered = await readFile(firstFile!, 'utf8');
    assert.match(delivered, /Subject: Scan from demo-scanner/);
    // The scanner's foreign From went out as the mailbox; the original is where replies go.
    assert.match(delivered, /^From: "?Floor 2 Scanner"? <scanner@sandbox\.test>\r?$/m);
    assert.match(delivered, /^Reply-To: "?Floor 2 Scanner"? <noreply@printer\.local>\r?$/m);
    await demo.waitFor(/it arrived with  From: "?Floor 2 Scanner"? <scanner@sandbox\.test>   Reply-To: "?Floor 2 Scanner"? <noreply@printer\.local>/);
    await demo.waitFor(/✔ fetched through the relay: Subject: Scan from demo-scanner/);
    const [, curl] = await demo.waitFor(/(printf .* -T -)\n/);
    assert.match(curl!, new RegExp(`smtp://127\\.0\\.0\\.1:${port}`));

    const device = nodemailer.createTransport({ host: '127.0.0.1', port: Number(port), secure: false, ignoreTLS: true, auth: { user: 'mfp', pass: 'demo' } });
    await device.sendMail({ from: 'scan@printer.local', to: 'scanner@sandbox.test', subject: 'my own scan', text: 'hello' });
    device.close();
    await demo.waitFor(/✔ arrived in scanner@sandbox\.test: /);
  } finally {
    demo.child.kill('SIGINT');
    const code = await demo.exit;
    await rm(dir, { recursive: true, force: true });
    assert.equal(code, 0, demo.stderr());
  }
});
