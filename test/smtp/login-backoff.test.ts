/**
 * Device logins over SMTP AUTH on real sockets: user names cannot be told apart by timing (an unknown one costs the
 * scrypt of the configured hashes, here N=2^14, not the default 2^15 the relay used to spend on it), and after a
 * guessing burst from a shared address the device that logged in from there before gets in again within the
 * pair's short back-off, while a new user name from that address is still refused.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeviceDirectory } from '../../src/auth/device-directory.js';
import { FailureThrottle } from '../../src/auth/failure-throttle.js';
import { hashPassword } from '../../src/auth/password-hash.js';
import { configSchema } from '../../src/config/schema.js';
import { createLogger } from '../../src/log.js';
import { SmtpListener } from '../../src/smtp/listener.js';
import { Spool } from '../../src/smtp/spool/index.js';
import { SmtpDevice } from '../support/smtp-device.js';

const PASSWORD = 'the right password';
const dirs: string[] = [];
after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

async function start(throttle: FailureThrottle) {
  const dir = await mkdtemp(join(tmpdir(), 'xoauth2-relay-backoff-'));
  dirs.push(dir);
  const config = configSchema.parse({
    stateDir: dir,
    accounts: { scanner: { mailbox: 'scanner@contoso.com', tenantId: 'contoso.com', clientId: '66666666-7777-8888-9999-000000000000' } },
    devices: [{ name: 'mfp', account: 'scanner', username: 'mfp', passwordHash: await hashPassword(PASSWORD, { N: 16384, r: 8, p: 1 }) }],
    smtp: { listen: [{ host: '127.0.0.1', port: 0 }] },
  });
  const spool = await Spool.open(dir, {});
  const listener = new SmtpListener({ config, listen: config.smtp.listen[0]!, devices: new DeviceDirectory(config.devices), throttle, tls: null, sink: spool, logger: createLogger({ level: 'silent' }) });
  return { listener, port: await listener.listen() };
}

/** One AUTH PLAIN on a new connection: the reply code and the milliseconds from AUTH to the reply. */
async function login(port: number, localAddress: string, username: string, password: string): Promise<{ code: number; ms: number }> {
  const d = await SmtpDevice.connect(port, localAddress);
  try {
    await d.reply();
    await d.command('EHLO mfp');
    const started = performance.now();
    const reply = await d.command(`AUTH PLAIN ${Buffer.from(`\0${username}\0${password}`).toString('base64')}`);
    return { code: reply.code, ms: performance.now() - started };
  } finally {
    d.close();
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

test('a wrong password for a known user and any password for an unknown one take the same time', async () => {
  const lenient = { freeFailures: 1_000_000 };
  const { listener, port } = await start(new FailureThrottle({ ...lenient, perUser: lenient, perPair: lenient }));
  try {
    const known: number[] = [];
    const unknown: number[] = [];
    for (let i = 0; i < 15; i += 1) {
      const a = await login(port, `127.0.6.${2 * i + 1}`, 'mfp', `wrong ${i}`);
      const b = await login(port, `127.0.6.${2 * i + 2}`, `nobody${i}`, `wrong ${i}`);
      assert.deepEqual([a.code, b.code], [535, 535]);
      known.push(a.ms);
      unknown.push(b.ms);
    }
    const [k, u] = [median(known), median(unknown)];
    console.log(`# enumeration timing: median AUTH→535 known user ${k.toFixed(1)} ms, unknown user ${u.toFixed(1)} ms (ratio ${(u / k).toFixed(2)})`);
    // Before: the unknown name cost a 2^15 scrypt against these 2^14 hashes, a ratio near 2.
    assert.ok(u / k > 0.6 && u / k < 1.6, `medians ${k.toFixed(1)} ms and ${u.toFixed(1)} ms differ by more than noise`);
  } finally {
    await listener.close();
  }
});

test('after a guessing burst from a shared address (and from many) the device that logged in there before gets in after at most its short wait', async () => {
  const throttle = new FailureThrottle({ perPair: { maxBlockMs: 500 } });
  const { listener, port } = await start(throttle);
  try {
    assert.equal((await login(port, '127.0.7.1', 'mfp', PASSWORD)).code, 235);
    for (let i = 0; i < 24; i += 1) await login(port, '127.0.7.1', i % 2 ? 'mfp' : `guess${i}`, `wrong ${i}`);
    assert.equal((await login(port, '127.0.7.1', 'newcomer', 'x')).code, 421, 'a new name from the guessing address is held back');
    await new Promise((r) => setTimeout(r, 600));
    assert.equal((await login(port, '127.0.7.1', 'mfp', PASSWORD)).code, 235, 'the right password from the known pair is not locked out');
    const spread: number[] = [];
    for (let i = 0; i < 20 && !spread.includes(421); i += 1) spread.push((await login(port, `127.0.8.${i + 1}`, 'mfp', `spread ${i}`)).code);
    assert.equal(spread.at(-1), 421, `guessing mfp from many addresses is refused in the end (answers ${spread.join(' ')})`);
    assert.equal((await login(port, '127.0.7.1', 'mfp', PASSWORD)).code, 235, 'the device at its known address still gets in');
  } finally {
    await listener.close();
  }
});
