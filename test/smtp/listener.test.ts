/**
 * The device-facing SMTP listener on a real socket with a real spool: what gets 250 is on disk, what gets 552
 * or 530 is not.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeviceDirectory } from '../../src/auth/device-directory.js';
import { FailureThrottle } from '../../src/auth/failure-throttle.js';
import { checkConfigText } from '../../src/config/load.js';
import { createLogger } from '../../src/log.js';
import { SmtpListener } from '../../src/smtp/listener.js';
import { greetsPromptly } from '../../src/smtp/prompt-greeting.js';
import { Spool } from '../../src/smtp/spool/index.js';
import { SmtpDevice } from '../support/smtp-device.js';

const dirs: string[] = [];
after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

async function start() {
  const dir = await mkdtemp(join(tmpdir(), 'xoauth2-relay-smtp-'));
  dirs.push(dir);
  const yaml = `
stateDir: ${dir}
accounts: { scanner: { mailbox: scanner@contoso.com, tenantId: contoso.com, clientId: 66666666-7777-8888-9999-000000000000 } }
devices: [{ name: fax, account: scanner, allowFrom: [127.0.0.1/32] }]
smtp: { listen: [{ host: 127.0.0.1, port: 0 }], maxMessageBytes: 4096 }
`;
  const checked = checkConfigText(yaml, join(dir, 'config.yaml'), {});
  if (!checked.ok) throw new Error(JSON.stringify(checked.problems));
  const config = checked.loaded.config;
  const spool = await Spool.open(dir, { maxMessageBytes: config.smtp.maxMessageBytes });
  const listener = new SmtpListener({ config, listen: config.smtp.listen[0]!, devices: new DeviceDirectory(config.devices), throttle: new FailureThrottle(), tls: null, sink: spool, logger: createLogger({ level: 'silent' }) });
  const port = await listener.listen();
  return { spool, listener, port };
}

async function transaction(port: number, body: string, localAddress = '127.0.0.1') {
  const d = await SmtpDevice.connect(port, localAddress);
  await d.reply();
  await d.command('EHLO fax');
  const mail = await d.command('MAIL FROM:<fax@printer.local>');
  if (mail.code !== 250) {
    d.close();
    return mail;
  }
  await d.command('RCPT TO:<desk@contoso.com>');
  await d.command('DATA');
  d.write(`${body}\r\n.\r\n`);
  const reply = await d.reply();
  d.close();
  return reply;
}

test('over SIZE: 552 and nothing in the spool; at the limit: 250 and on disk', async () => {
  const { spool, listener, port } = await start();
  assert.ok(greetsPromptly(listener.server), 'the relay greets without the 100 ms early-talker wait');
  try {
    const tooBig = await transaction(port, `Subject: big\r\n\r\n${'x'.repeat(5000)}`);
    assert.equal(tooBig.code, 552);
    assert.deepEqual(await spool.list(), []);
    const fits = await transaction(port, `Subject: small\r\n\r\n${'x'.repeat(3000)}`);
    assert.equal(fits.code, 250, fits.text);
    const listed = await spool.list();
    assert.equal(listed.length, 1);
    assert.equal(listed[0]!.mailFrom, 'scanner@contoso.com', 'rewrite-envelope by default');
    assert.match(fits.text, new RegExp(`queued as ${listed[0]!.id}`));
  } finally {
    await listener.close();
  }
});

test('an address no device is admitted from gets 530 at MAIL FROM and nothing is spooled', async () => {
  const { spool, listener, port } = await start();
  try {
    const reply = await transaction(port, 'Subject: spam\r\n\r\nx', '127.0.0.9');
    assert.equal(reply.code, 530);
    assert.match(reply.text, /5\.7\.0/);
    assert.deepEqual(await spool.list(), []);
  } finally {
    await listener.close();
  }
});

async function startTls(mode: 'starttls' | 'implicit', legacyDevices: boolean) {
  const { createPki } = await import('../../src/sandbox/pki.js');
  const { writeFile } = await import('node:fs/promises');
  const dir = await mkdtemp(join(tmpdir(), 'xoauth2-relay-smtp-tls-'));
  dirs.push(dir);
  const pki = await createPki('smtp listener test CA');
  const cert = await pki.issueServerCertificate(['127.0.0.1', 'localhost']);
  await writeFile(join(dir, 'cert.pem'), cert.certPem);
  await writeFile(join(dir, 'key.pem'), cert.keyPem);
  const yaml = `
stateDir: ${dir}
accounts: { scanner: { mailbox: scanner@contoso.com, tenantId: contoso.com, clientId: 66666666-7777-8888-9999-000000000000 } }
devices: [{ name: fax, account: scanner, allowFrom: [127.0.0.1/32] }]
smtp: { listen: [{ host: 127.0.0.1, port: 0, tls: ${mode} }] }
tls: { certFile: cert.pem, keyFile: key.pem, legacyDevices: ${legacyDevices} }
`;
  const checked = checkConfigText(yaml, join(dir, 'config.yaml'), {});
  if (!checked.ok) throw new Error(JSON.stringify(checked.problems));
  const config = checked.loaded.config;
  const { loadDeviceTlsMaterial } = await import('../../src/transport/tls-options.js');
  const spool = await Spool.open(dir);
  const listener = new SmtpListener({ config, listen: config.smtp.listen[0]!, devices: new DeviceDirectory(config.devices), throttle: new FailureThrottle(), tls: loadDeviceTlsMaterial(config), sink: spool, logger: createLogger({ level: 'silent' }) });
  return { listener, port: await listener.listen(), ca: pki.caCertPem, spool };
}

test('STARTTLS and implicit TLS listeners; TLS 1.0 only when legacyDevices is on', async () => {
  const nodemailer = (await import('nodemailer')).default;
  for (const mode of ['starttls', 'implicit'] as const) {
    const { listener, port, ca, spool } = await startTls(mode, false);
    try {
      const t = nodemailer.createTransport({ host: '127.0.0.1', port, secure: mode === 'implicit', requireTLS: mode === 'starttls', tls: { ca: [ca], servername: 'localhost' } });
      const info = await t.sendMail({ from: 'fax@printer.local', to: 'desk@contoso.com', subject: mode, text: 'x' });
      t.close();
      assert.match(info.response, /^250 /);
      assert.equal((await spool.list()).length, 1);
      // A TLS 1.0 device is refused unless the operator turned legacyDevices on.
      const old = nodemailer.createTransport({ host: '127.0.0.1', port, secure: mode === 'implicit', requireTLS: mode === 'starttls', tls: { ca: [ca], servername: 'localhost', minVersion: 'TLSv1', maxVersion: 'TLSv1', ciphers: 'DEFAULT@SECLEVEL=0' } });
      await assert.rejects(old.sendMail({ from: 'fax@printer.local', to: 'desk@contoso.com', text: 'x' }));
      old.close();
    } finally {
      await listener.close();
    }
  }
  const { listener, port, ca } = await startTls('implicit', true);
  try {
    const old = nodemailer.createTransport({ host: '127.0.0.1', port, secure: true, tls: { ca: [ca], servername: 'localhost', minVersion: 'TLSv1', maxVersion: 'TLSv1', ciphers: 'DEFAULT@SECLEVEL=0' } });
    const info = await old.sendMail({ from: 'fax@printer.local', to: 'desk@contoso.com', text: 'from a 2008 scanner' });
    old.close();
    assert.match(info.response, /^250 /);
  } finally {
    await listener.close();
  }
});
