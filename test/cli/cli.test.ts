/**
 * The operator's path with the real CLI in child processes: login shows a code and link, the sign-in is
 * approved in the sandbox, status shows acquired, logout returns to not-acquired; plus check-config,
 * hash-password, --help and exit codes.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { verifyPassword } from '../../src/auth/password-hash.js';
import { SANDBOX_MAILBOX } from '../../src/sandbox/sandbox-config.js';
import { runCli, startCli } from '../support/run-cli.js';
import { startSandboxEnv, type SandboxEnv } from '../support/sandbox-env.js';

let env: SandboxEnv | undefined;
after(() => env?.close());
const key = { XOAUTH2_RELAY_KEY: 'cd'.repeat(32) };

test('login shows a code and link; after approval status says acquired; logout returns to not-acquired', async () => {
  env = await startSandboxEnv({ sim: { pollIntervalSec: 1 } });
  const cfg = { ...key, XOAUTH2_RELAY_CONFIG: env.configFile };

  const before = await runCli(['status'], cfg);
  assert.equal(before.code, 1);
  assert.match(before.stdout, /^scanner\s+not-acquired\s+scanner@sandbox\.test\s+run: xoauth2-relay login scanner/m);

  const login = startCli(['login', 'scanner'], cfg);
  const [, uri, code] = await login.waitFor(/open (\S+)\nand enter the code (\S+)/);
  assert.equal(uri, env.sim.verificationUri);
  const waiting = JSON.parse((await runCli(['status', '--json'], cfg)).stdout) as Array<Record<string, unknown>>;
  assert.equal(waiting[0]!.state, 'waiting-authorization');
  assert.equal(waiting[0]!.userCode, code);
  env.sim.approve(code!, SANDBOX_MAILBOX);
  assert.equal(await login.exit, 0, login.stderr());
  assert.match(login.stdout(), /scanner: acquired \(access token valid until \d{4}-/);

  const status = await runCli(['status', '--json'], cfg);
  assert.equal(status.code, 0, status.stderr);
  const rows = JSON.parse(status.stdout) as Array<Record<string, unknown>>;
  assert.equal(rows[0]!.state, 'acquired');
  assert.equal(rows[0]!.mailbox, SANDBOX_MAILBOX);
  assert.ok(Date.parse(String(rows[0]!.expiresAt)) > Date.now());

  const logout = await runCli(['logout', 'scanner'], cfg);
  assert.equal(logout.code, 0, logout.stderr);
  assert.match((await runCli(['status'], cfg)).stdout, /scanner\s+not-acquired/);
  assert.equal((await runCli(['login', 'nobody'], cfg)).code, 78);
});

test('check-config lists every problem with key, value and fix, and exits 78', async () => {
  env ??= await startSandboxEnv();
  const bad = join(env.dir, 'bad.yaml');
  await writeFile(bad, 'accounts:\n  scanner:\n    mailbox: nope\n    tenantId: x y\n    clientId: 66666666-7777-8888-9999-000000000000\n    flow: devicecode\nlog: { level: loud }\n');
  const r = await runCli(['check-config', '--config', bad]);
  assert.equal(r.code, 78);
  assert.match(r.stderr, /4 problems/);
  assert.match(r.stderr, /accounts\.scanner\.mailbox = "nope": is not a valid email\n\s+fix: write the full mailbox address/);
  assert.match(r.stderr, /accounts\.scanner\.flow = "devicecode": is not one of "device-code", "browser", "client-credentials"/);
  assert.match(r.stderr, /log\.level = "loud"/);
  const ok = await runCli(['check-config'], { XOAUTH2_RELAY_CONFIG: env.configFile });
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /OK\n\s+accounts: scanner \(scanner@sandbox\.test, device-code\)/);
  const missing = await runCli(['check-config', '--config', join(env.dir, 'none.yaml')]);
  assert.equal(missing.code, 78);
  assert.match(missing.stderr, /file not found/);
});

test('hash-password reads the password from standard input and prints a verifiable hash', async () => {
  const r = await runCli(['hash-password'], {}, 'p@ss:wörd "x"\n');
  assert.equal(r.code, 0, r.stderr);
  const hash = r.stdout.trim();
  assert.match(hash, /^scrypt\$32768\$8\$1\$/);
  assert.ok(await verifyPassword('p@ss:wörd "x"', hash));
  assert.ok(!r.stdout.includes('wörd'));
  assert.equal((await runCli(['hash-password'], {}, '\n')).code, 1);
});

test('--help works on every command; a wrong command line exits 64', async () => {
  for (const cmd of [[], ['demo'], ['run'], ['queue'], ['login'], ['logout'], ['status'], ['test'], ['check-config'], ['hash-password'], ['sandbox']]) {
    const r = await runCli([...cmd, '--help']);
    assert.equal(r.code, 0, `${cmd.join(' ')} --help`);
    assert.match(r.stdout, /Usage: xoauth2-relay/);
    assert.match(r.stdout, /Exit codes: 0 ok/);
  }
  assert.equal((await runCli(['no-such-command'])).code, 64);
  assert.equal((await runCli(['login'])).code, 64);
});
