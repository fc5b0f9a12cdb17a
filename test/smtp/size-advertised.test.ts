/**
 * SIZE (RFC 1870) as devices see it: the EHLO keyword carries smtp.maxMessageBytes exactly, for the default
 * (Exchange Online's 35 MiB) and for a small limit written with a unit (a Xerox-like 10 MB), and a device that
 * declares a larger SIZE= in MAIL FROM is refused before it sends a byte of the scan.
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
import { Spool } from '../../src/smtp/spool/index.js';
import { SmtpDevice } from '../support/smtp-device.js';

const dirs: string[] = [];
after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

async function ehloSize(sizeLine: string): Promise<{ configured: number; advertised: number | null; bigMailFrom: number }> {
  const dir = await mkdtemp(join(tmpdir(), 'xoauth2-relay-size-'));
  dirs.push(dir);
  const yaml = `
stateDir: ${dir}
accounts: { scanner: { mailbox: scanner@contoso.com, tenantId: contoso.com, clientId: 66666666-7777-8888-9999-000000000000 } }
devices: [{ name: fax, account: scanner, allowFrom: [127.0.0.1/32] }]
smtp: { listen: [{ host: 127.0.0.1, port: 0 }]${sizeLine} }
`;
  const checked = checkConfigText(yaml, join(dir, 'config.yaml'), {});
  if (!checked.ok) throw new Error(JSON.stringify(checked.problems));
  const config = checked.loaded.config;
  const spool = await Spool.open(dir, { maxMessageBytes: config.smtp.maxMessageBytes });
  const listener = new SmtpListener({ config, listen: config.smtp.listen[0]!, devices: new DeviceDirectory(config.devices), throttle: new FailureThrottle(), tls: null, sink: spool, logger: createLogger({ level: 'silent' }) });
  const port = await listener.listen();
  const device = await SmtpDevice.connect(port);
  try {
    await device.reply();
    const ehlo = await device.command('EHLO scanner');
    const size = /^250[- ]SIZE (\d+)$/m.exec(ehlo.text);
    const mail = await device.command(`MAIL FROM:<fax@printer.local> SIZE=${config.smtp.maxMessageBytes + 1}`);
    return { configured: config.smtp.maxMessageBytes, advertised: size ? Number(size[1]) : null, bigMailFrom: mail.code };
  } finally {
    device.close();
    await listener.close();
  }
}

test('EHLO SIZE is the default smtp.maxMessageBytes: Exchange Online\'s 35 MiB', async () => {
  const { configured, advertised, bigMailFrom } = await ehloSize('');
  assert.equal(configured, 35 * 1024 * 1024);
  assert.equal(advertised, configured);
  assert.equal(bigMailFrom, 552);
});

test('EHLO SIZE follows a small configured limit (10 MB, a Xerox default) to the byte', async () => {
  const { configured, advertised, bigMailFrom } = await ehloSize(', maxMessageBytes: 10MB');
  assert.equal(configured, 10_000_000);
  assert.equal(advertised, configured);
  assert.equal(bigMailFrom, 552);
});
