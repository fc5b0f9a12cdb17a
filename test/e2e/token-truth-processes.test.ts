/**
 * One truth about each account across processes: the daemon (`xoauth2-relay run`, a child process) and CLI
 * commands (`login`, `logout`, child processes) on one state directory, with the sandbox identity platform and
 * the sandbox XOAUTH2 mailbox as the upstream. What the daemon's /metrics and log say must be what happened,
 * whichever process changed it; a reload and a broken token file never stop it.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { parse, stringify } from 'yaml';
import { createEncryptedFileStore } from '../../src/auth/store/index.js';
import { mailboxDirectoryName } from '../../src/sandbox/mailbox/maildir.js';
import { SANDBOX_MAILBOX } from '../../src/sandbox/sandbox-config.js';
import { startSandboxWorld, type SandboxWorld } from '../../src/sandbox/sandbox-world.js';
import { startRelay, type RelayProcess } from '../support/relay-process.js';
import { runCli, startCli } from '../support/run-cli.js';
import { eventually } from '../support/sandbox-env.js';

const PASSWORD = 'device-pass-1';
let dir: string;
let world: SandboxWorld;
let relay: RelayProcess;
let adminUrl: string;

async function startDaemon(): Promise<void> {
  relay = await startRelay(world.configFile, {});
  const ready = await relay.waitForLog(/"msg":"xoauth2-relay ready"/);
  adminUrl = String(ready.admin);
}

async function tokenState(account: string): Promise<string | null> {
  const text = await (await fetch(new URL('/metrics', adminUrl))).text();
  const m = new RegExp(`^xoauth2_relay_token_state\\{account="${account}",state="([a-z-]+)"\\} 1$`, 'm').exec(text);
  return m?.[1] ?? null;
}

/** Scan-to-email from the address-admitted device (127.0.0.1), as a scanner does. */
async function scan(subject: string, port = relay.ports.smtp[0]!): Promise<string> {
  const t = nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true });
  try {
    return (await t.sendMail({ from: 'scanner@printer.local', to: SANDBOX_MAILBOX, subject, text: 'scan' })).response;
  } finally {
    t.close();
  }
}

async function arrived(subject: string): Promise<boolean> {
  const folder = join(dir, 'mailbox', mailboxDirectoryName(SANDBOX_MAILBOX)!, 'new');
  for (const m of await world.mailbox.messages(SANDBOX_MAILBOX)) {
    const text = await readFile(join(folder, m.file), 'utf8').catch(() => '');
    if (text.includes(subject)) return true;
  }
  return false;
}

/** `xoauth2-relay login scanner` in its own process; the mailbox owner approves or declines at the sandbox. */
async function cliLogin(decision: 'approve' | 'decline'): Promise<{ code: number; stdout: string; stderr: string }> {
  const run = startCli(['login', 'scanner', '--config', world.configFile]);
  const [, code] = await run.waitFor(/enter the code (\S+)/);
  if (decision === 'approve') world.sim.approve(code!, SANDBOX_MAILBOX);
  else world.sim.decline(code!);
  return { code: await run.exit, stdout: run.stdout(), stderr: run.stderr() };
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'xoauth2-relay-truth-'));
  world = await startSandboxWorld({ dir: join(dir, 'world'), smtpPort: 0, pop3Port: 0, devicePassword: PASSWORD });
  dir = join(dir, 'world');
  await startDaemon();
});

after(async () => {
  if (process.env.TRUTH_DEBUG) console.log(relay?.logText().split('\n').filter((l) => /account|held|deliver|reload/.test(l)).join('\n'));
  await relay?.stop();
  await world?.close();
  await rm(dir, { recursive: true, force: true });
});

test('CLI login in another process: the daemon reports acquired within seconds and releases the held scan', async () => {
  assert.equal(await tokenState('scanner'), 'not-acquired');
  assert.match(await scan('held until sign-in'), /^250 /);
  await relay.waitForLog(/"msg":"held/);
  const login = await cliLogin('approve');
  assert.equal(login.code, 0, login.stderr);
  const t0 = Date.now();
  await eventually(async () => (await tokenState('scanner')) === 'acquired', 10_000, 'daemon sees the CLI sign-in');
  console.log(`# daemon reported acquired ${Date.now() - t0} ms after the CLI login exited`);
  await eventually(() => arrived('held until sign-in'), 15_000, 'the held scan delivered');
});

test('re-sign-in declined in another process: the account stays acquired in the daemon and mail still flows', async () => {
  const declined = await cliLogin('decline');
  assert.equal(declined.code, 1);
  assert.match(declined.stderr, /declined.*keeps its working token/);
  assert.equal(await tokenState('scanner'), 'acquired');
  assert.match(await scan('after a declined re-sign-in'), /^250 /);
  await eventually(() => arrived('after a declined re-sign-in'), 15_000, 'delivered with the working token');
});

test('CLI logout in another process: the daemon reports not acquired, never invalid, and sends no notice', async () => {
  const logBefore = relay.logText().length;
  const out = await runCli(['logout', 'scanner', '--config', world.configFile]);
  assert.equal(out.code, 0, out.stderr);
  const t0 = Date.now();
  await eventually(async () => (await tokenState('scanner')) === 'not-acquired', 10_000, 'daemon sees the CLI logout');
  console.log(`# daemon reported not-acquired ${Date.now() - t0} ms after the CLI logout exited`);
  // A device that uses the account now: held (SMTP), not a reason to call the token invalid.
  assert.match(await scan('after logout'), /^250 /);
  await relay.waitForLog(/"msg":"held/);
  await new Promise((r) => setTimeout(r, 500));
  const since = relay.logText().slice(logBefore);
  assert.doesNotMatch(since, /"state":"invalid"|token is invalid|needs a new sign-in/);
  assert.equal(await tokenState('scanner'), 'not-acquired');
  const login = await cliLogin('approve'); // for the tests after this one
  assert.equal(login.code, 0);
  await eventually(async () => (await tokenState('scanner')) === 'acquired', 10_000);
});

test('SIGHUP adding an account and a device on it: the device is answered, its mail held, the daemon alive; a broken file keeps the old config', async () => {
  const original = await readFile(world.configFile, 'utf8');
  const config = parse(original) as { accounts: Record<string, Record<string, unknown>>; devices: Array<Record<string, unknown>> };
  config.accounts.second = { ...config.accounts.scanner, mailbox: 'second@sandbox.test' };
  config.devices.push({ name: 'second-mfp', username: 'second', passwordHash: config.devices.find((d) => d.name === 'mfp')!.passwordHash, account: 'second' });
  await writeFile(world.configFile, stringify(config));
  relay.child.kill('SIGHUP');
  await relay.waitForLog(/"msg":"configuration reloaded: accounts, devices"/);
  const t = nodemailer.createTransport({ host: '127.0.0.1', port: relay.ports.smtp[0], secure: false, ignoreTLS: true, auth: { user: 'second', pass: PASSWORD } });
  const sent = await t.sendMail({ from: 'second@sandbox.test', to: SANDBOX_MAILBOX, subject: 'new account', text: 'x' }).finally(() => t.close());
  assert.match(sent.response, /^250 /);
  await eventually(async () => /"account":"second"[^\n]*"msg":"held|"msg":"held[^\n]*"account":"second"/.test(relay.logText()), 10_000, 'held for the new account');
  assert.equal(await tokenState('second'), 'not-acquired');
  assert.equal(relay.child.exitCode, null, 'the daemon is alive');

  await writeFile(world.configFile, 'accounts: [broken\n');
  relay.child.kill('SIGHUP');
  await relay.waitForLog(/reload refused: the configuration has errors/);
  assert.match(await scan('after a broken reload'), /^250 /);
  await eventually(() => arrived('after a broken reload'), 15_000);
  await writeFile(world.configFile, stringify(config));
});

test('a token file sealed with another key: the daemon starts, that account is invalid with the reason, the other delivers', async () => {
  const stateDir = join(dir, 'state');
  const foreign = createEncryptedFileStore({ stateDir, key: Buffer.alloc(32, 9) });
  await foreign.save('second', '{"Account":{}}');
  assert.equal(await relay.stop(), 0);
  await startDaemon();
  assert.equal(await tokenState('second'), 'invalid');
  await relay.waitForLog(/token store cannot be read: sealed with another key/);
  assert.equal(await tokenState('scanner'), 'acquired');
  assert.match(await scan('beside a broken account'), /^250 /);
  await eventually(() => arrived('beside a broken account'), 15_000);
  // A sign-in writes a new file for that account from here on: the operator's fix is Delete token, then Get token.
  const out = await runCli(['logout', 'second', '--config', world.configFile]);
  assert.equal(out.code, 0, out.stderr);
  await eventually(async () => (await tokenState('second')) === 'not-acquired', 10_000, 'Delete token clears the broken file');
});
