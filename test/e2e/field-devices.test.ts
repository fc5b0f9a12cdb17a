/**
 * Field-device behaviours with real clients, through the relay's listeners against the sandbox mailbox (the
 * Exchange look-alike over TLS, XOAUTH2 with tokens from the sandbox identity simulator):
 * - POP-before-SMTP: fetchmail logs in over POP3 (and IMAP) as a Fuji Xerox would, then swaks sends without AUTH:
 *   250 from the same address within the window, 530 from 127.0.0.2, 530 once the window is over (injected clock),
 *   530 for a device that has it off;
 * - 25 devices log in over IMAP at once to one mailbox with a cap of 10: 10 are served, 10 wait and are served in
 *   turn as the first ones log out, 5 (past the wait queue) are told to retry; none hangs, and /metrics and the
 *   admin page count the held sessions; a POP3 device meanwhile gets -ERR [IN-USE], which fetchmail reads as
 *   "lock busy";
 * - the daemon (Daemon.start) wires the cap into its listeners, /metrics and the admin API.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DeviceDirectory } from '../../src/auth/device-directory.js';
import { FailureThrottle } from '../../src/auth/failure-throttle.js';
import { hashPassword } from '../../src/auth/password-hash.js';
import { TokenServices } from '../../src/auth/token-services.js';
import { RelayMetrics } from '../../src/admin/metrics.js';
import { liveSection } from '../../src/admin/page.js';
import { accountViews } from '../../src/admin/status-view.js';
import type { Config } from '../../src/config/schema.js';
import { Daemon } from '../../src/daemon.js';
import { ImapListener } from '../../src/imap/imap-listener.js';
import { Pop3Listener } from '../../src/pop3/pop3-listener.js';
import { SmtpListener } from '../../src/smtp/listener.js';
import { Spool } from '../../src/smtp/spool/index.js';
import { MailboxSlots } from '../../src/transport/mailbox-slots.js';
import { loadUpstreamExtraCa } from '../../src/transport/tls-options.js';
import type { ProxyListenerOptions } from '../../src/transport/proxy-listener.js';
import { LineClient } from '../support/peers/line-client.js';
import { eventually } from '../support/sandbox-env.js';
import { KEY_ENV, startSandboxMailWorld, type SandboxMailWorld } from '../support/sandbox-mail-world.js';

const run = promisify(execFile);
const missing = ['fetchmail', 'swaks'].filter((tool) => spawnSync(tool, ['--version'], { stdio: 'ignore' }).error);
// setup-debian installs both; CI must run these tests, a developer machine without them skips with the reason.
const skip = missing.length > 0 && process.env.CI !== 'true' ? `${missing.join(' and ')} not installed` : false;
const PASSWORD = 'Xerox pass 7';
const WINDOW_MINUTES = 5;
const CAP = 10;
const WAITING = 10;
const DEVICES = 25;

let world: SandboxMailWorld;
let services: TokenServices;
let config: Config;
let spool: Spool;
let tmp: string;
const clock = { skewMs: 0 };
const slots = new MailboxSlots({ maxPerMailbox: CAP, waitSeconds: 20, maxWaitingPerMailbox: WAITING });
const metrics = new RelayMetrics({ processMetrics: false });
const ports = { smtp: 0, pop3: 0, imap: 0 };
const closers: Array<() => Promise<unknown>> = [];

before(async () => {
  if (skip) return;
  if (missing.length > 0) assert.fail(`CI=true but ${missing.join(' and ')} are not installed`);
  const hash = await hashPassword(PASSWORD, { N: 16384, r: 8, p: 1 });
  world = await startSandboxMailWorld(() => ({
    devices: [
      { name: 'xerox', username: 'xerox', passwordHash: hash, account: 'scanner', popBeforeSmtpMinutes: WINDOW_MINUTES },
      { name: 'mfp', username: 'mfp', passwordHash: hash, account: 'scanner' },
    ],
  }));
  await world.signIn();
  config = world.env.config;
  tmp = await mkdtemp(join(tmpdir(), 'field-devices-'));
  services = await TokenServices.create(config, world.env.logger, { ...process.env, ...KEY_ENV });
  await services.start();
  spool = await Spool.open(join(tmp, 'state'), { maxMessageBytes: config.smtp.maxMessageBytes });
  metrics.observe({ tokens: services, spool, delivery: new EventEmitter() as never, mailboxSessions: slots });

  const devices = new DeviceDirectory(config.devices, undefined, { now: () => Date.now() + clock.skewMs });
  const throttle = new FailureThrottle({ freeFailures: 1000 });
  const logger = world.env.logger.child({ test: 'field-devices' });
  const smtp = new SmtpListener({ config, listen: { host: '127.0.0.1', port: 0, tls: 'none', loginBeforeTls: 'refuse' }, devices, throttle, tls: null, sink: spool, logger, metrics });
  ports.smtp = await smtp.listen();
  closers.push(() => smtp.close());
  const proxy: Omit<ProxyListenerOptions, 'listen'> = {
    config, devices, throttle, tls: null, tokens: services, upstreamExtraCaPem: loadUpstreamExtraCa(config), logger, metrics, slots,
    limits: { maxConnectionsPerAddress: 100 },
  };
  const pop3 = new Pop3Listener({ ...proxy, listen: { host: '127.0.0.1', port: 0, tls: 'none', loginBeforeTls: 'refuse' } });
  const imap = new ImapListener({ ...proxy, listen: { host: '127.0.0.1', port: 0, tls: 'none', loginBeforeTls: 'refuse' } });
  ports.pop3 = await pop3.listen();
  ports.imap = await imap.listen();
  closers.push(() => pop3.close(), () => imap.close());
});

after(async () => {
  for (const close of closers.reverse()) await close().catch(() => undefined);
  await services?.stop();
  await world?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

/** fetchmail, run once in the foreground (no daemon), checking the mailbox without keeping what it finds. */
async function fetchmail(protocol: 'pop3' | 'imap', user: string): Promise<{ code: number; output: string }> {
  const home = await mkdtemp(join(tmp, 'fetchmail-'));
  const rc = join(home, 'fetchmailrc');
  const port = protocol === 'pop3' ? ports.pop3 : ports.imap;
  await writeFile(rc, `set no syslog\npoll 127.0.0.1 service ${port} protocol ${protocol} auth password timeout 20\n  user "${user}" password "${PASSWORD}" is "nobody" here\n  sslproto "" no sslcertck keep fetchall mda "/bin/cat > /dev/null"\n`);
  await chmod(rc, 0o600);
  try {
    const { stdout, stderr } = await run('fetchmail', ['--nodetach', '--fetchmailrc', rc, '--pidfile', join(home, 'pid'), '-v'], { env: { ...process.env, HOME: home, FETCHMAILHOME: home }, timeout: 30_000 });
    return { code: 0, output: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

/** swaks without AUTH from `localAddress`; the server's reply to MAIL FROM (or the end of DATA) decides. */
async function swaks(localAddress: string, subject: string): Promise<{ accepted: boolean; output: string }> {
  const args = ['--server', '127.0.0.1', '--port', String(ports.smtp), '--local-interface', localAddress, '--from', 'scan@printer.local', '--to', 'desk@sandbox.test', '--header', `Subject: ${subject}`, '--body', 'scan', '--timeout', '20'];
  try {
    const { stdout } = await run('swaks', args, { timeout: 30_000 });
    return { accepted: true, output: stdout };
  } catch (err) {
    return { accepted: false, output: String((err as { stdout?: string }).stdout ?? err) };
  }
}

test('POP-before-SMTP with fetchmail and swaks: admitted within the window from the same address only, refused after it and for a device that has it off', { skip }, async () => {
  const before = await swaks('127.0.0.1', 'before any login');
  assert.equal(before.accepted, false);
  assert.match(before.output, /<\*\* +530 5\.7\.0 Authentication required/);

  const checked = await fetchmail('pop3', 'xerox');
  // fetchmail exits 1 for "no mail": the login itself worked.
  assert.ok(checked.code === 0 || checked.code === 1, checked.output);
  assert.match(checked.output, /\+OK Logged in/);

  const within = await swaks('127.0.0.1', 'pop before smtp');
  assert.equal(within.accepted, true, within.output);
  assert.match(within.output, /<- +250 2\.0\.0 Ok: queued as /);
  const queued = await spool.list();
  assert.equal(queued.length, 1);
  assert.equal(queued[0]!.device, 'xerox');
  assert.match(world.env.logText(), /admitted without AUTH by POP-before-SMTP/);

  const elsewhere = await swaks('127.0.0.2', 'from another address');
  assert.equal(elsewhere.accepted, false);
  assert.match(elsewhere.output, /<\*\* +530 5\.7\.0/);

  clock.skewMs += WINDOW_MINUTES * 60_000 + 1000;
  const late = await swaks('127.0.0.1', 'after the window');
  assert.equal(late.accepted, false);
  assert.match(late.output, /<\*\* +530 5\.7\.0/);

  // An IMAP login opens the window too.
  const imapCheck = await fetchmail('imap', 'xerox');
  assert.ok(imapCheck.code === 0 || imapCheck.code === 1, imapCheck.output);
  assert.equal((await swaks('127.0.0.1', 'imap before smtp')).accepted, true);
  clock.skewMs += WINDOW_MINUTES * 60_000 + 1000;

  // A device with POP-before-SMTP off (the default) opens nothing.
  const off = await fetchmail('pop3', 'mfp');
  assert.ok(off.code === 0 || off.code === 1, off.output);
  assert.equal((await swaks('127.0.0.1', 'device with it off')).accepted, false);
  assert.equal((await spool.list()).length, 2);
});

interface Outcome {
  served: boolean;
  reply: string;
}

/** One device: greeting, LOGIN, then (once logged in) NOOP when `release` resolves, then LOGOUT. */
async function imapDevice(n: number, loggedIn: (n: number) => void, release: Promise<void>): Promise<Outcome> {
  const client = await LineClient.connect({ port: ports.imap, timeoutMs: 45_000 });
  try {
    assert.match(await client.readLine(), /^\* OK/);
    const login = await client.imap(`L${n}`, `LOGIN mfp "${PASSWORD}"`);
    const reply = login.at(-1)!;
    if (!reply.startsWith(`L${n} OK`)) return { served: false, reply };
    loggedIn(n);
    await release;
    const noop = await client.imap(`N${n}`, 'NOOP');
    assert.match(noop.at(-1)!, new RegExp(`^N${n} OK`));
    await client.imap(`Q${n}`, 'LOGOUT');
    return { served: true, reply };
  } finally {
    client.close();
  }
}

test(`${DEVICES} IMAP devices on one mailbox with a cap of ${CAP}: served in turn or told to retry, none hangs; /metrics and the admin page count them`, { skip }, async () => {
  let releaseFirst!: () => void;
  const firstMayGo = new Promise<void>((resolve) => (releaseFirst = resolve));
  const loggedIn: number[] = [];
  const outcomes = Array.from({ length: DEVICES }, (_, n) => imapDevice(n, (i) => loggedIn.push(i), firstMayGo));
  // The devices logged in first hold their sessions until released: the cap is full, the queue too.
  const firstWave = await eventually(() => (loggedIn.length === CAP && slots.counts()[0]?.waiting === WAITING ? [...loggedIn] : null), 30_000, 'ten sessions held and ten waiting');
  assert.equal(firstWave.length, CAP);
  assert.deepEqual(slots.counts(), [{ account: 'scanner', held: { imap: CAP, pop3: 0 }, waiting: WAITING }]);

  const exposition = (await metrics.exposition()).body;
  assert.match(exposition, /^xoauth2_relay_upstream_sessions\{account="scanner",protocol="imap"\} 10$/m);
  assert.match(exposition, /^xoauth2_relay_upstream_sessions\{account="scanner",protocol="pop3"\} 0$/m);
  assert.match(exposition, /^xoauth2_relay_upstream_sessions_refused_total\{account="scanner",protocol="imap",reason="queue-full"\} 5$/m);
  const card = String(liveSection({ generatedAt: '', accounts: accountViews({ tokens: services, tests: null, doctors: null, mailboxSessions: slots }), spool: { counts: { queued: 0, deferred: 0, held: 0, dead: 0 }, waiting: 0, oldestAgeSeconds: null, messages: [], notListed: 0 }, recentDeliveries: [] }, { csrfToken: 'x', nowMs: Date.now() }));
  assert.match(card, /data-field="mailbox-sessions" data-imap="10" data-pop3="0" data-waiting="10">10 IMAP · 0 POP3 of 10/);

  // A POP3 device of the same mailbox meanwhile: the queue is full, so fetchmail is told at once to come back later.
  const busy = await fetchmail('pop3', 'mfp');
  assert.match(busy.output, /POP3< -ERR \[IN-USE\] Too many sessions on this mailbox, try again later/);
  assert.equal(busy.code, 9, 'fetchmail reads [IN-USE] as LOCKBUSY (try later), not as a wrong password (3)');

  releaseFirst();
  const results = await Promise.all(outcomes);
  const served = results.filter((r) => r.served);
  const refused = results.filter((r) => !r.served);
  assert.equal(served.length, CAP + WAITING, 'the waiting devices were served as slots came free');
  assert.equal(refused.length, DEVICES - CAP - WAITING);
  for (const r of refused) assert.match(r.reply, /^L\d+ NO \[UNAVAILABLE\] Too many sessions on this mailbox, try again later$/);
  await eventually(() => slots.counts().length === 0, 10_000, 'every slot given back');
  assert.match((await metrics.exposition()).body, /^xoauth2_relay_upstream_sessions\{account="scanner",protocol="imap"\} 0$/m);
});

test('the daemon wires the cap: a held IMAP session shows in /metrics and in the admin API\'s account view', { skip }, async () => {
  const listen = [{ host: '127.0.0.1', port: 0, tls: 'none' as const, loginBeforeTls: 'refuse' as const }];
  const daemon = await Daemon.start({
    config: { ...config, smtp: { ...config.smtp, listen }, imap: { ...config.imap, listen }, admin: { ...config.admin, listen: '127.0.0.1:0' } },
    logger: world.env.logger.child({ test: 'daemon' }),
    env: { ...process.env, ...KEY_ENV },
  });
  const client = await LineClient.connect({ port: daemon.ports.imap[0]!, timeoutMs: 20_000 });
  try {
    assert.match(await client.readLine(), /^\* OK/);
    assert.match((await client.imap('a', `LOGIN mfp "${PASSWORD}"`)).at(-1)!, /^a OK/);
    const status = (await (await fetch(new URL('/api/status', daemon.admin.url))).json()) as { accounts: Array<{ account: string; mailboxSessions: unknown }> };
    assert.deepEqual(status.accounts.find((a) => a.account === 'scanner')?.mailboxSessions, { imap: 1, pop3: 0, waiting: 0, limit: 10 });
    const exposition = await (await fetch(new URL('/metrics', daemon.admin.url))).text();
    assert.match(exposition, /^xoauth2_relay_upstream_sessions\{account="scanner",protocol="imap"\} 1$/m);
    await client.imap('b', 'LOGOUT');
  } finally {
    client.close();
    await daemon.stop(2000);
  }
});
