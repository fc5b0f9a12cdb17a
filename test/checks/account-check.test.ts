/**
 * `xoauth2-relay test <account>` against the sandbox mailbox (real TLS, real XOAUTH2, real tokens from the
 * identity simulator), through the CLI as an operator runs it.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify, parse } from 'yaml';
import { readFile } from 'node:fs/promises';
import { TokenServices } from '../../src/auth/token-services.js';
import { createLogger } from '../../src/log.js';
import { SANDBOX_MAILBOX } from '../../src/sandbox/sandbox-config.js';
import { startSandboxWorld, type SandboxWorld } from '../../src/sandbox/sandbox-world.js';
import { runCli } from '../support/run-cli.js';

let dir = '';
let world: SandboxWorld | undefined;
after(async () => {
  await world?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});
const keyEnv = { XOAUTH2_RELAY_KEY: '12'.repeat(32) };

test('test <account>: pass per protocol with a token; a fix when the upstream is down or there is no token', async () => {
  dir = await mkdtemp(join(tmpdir(), 'xoauth2-relay-check-'));
  world = await startSandboxWorld({ dir: join(dir, 'world'), smtpPort: 0, pop3Port: null, devicePassword: 'x' });
  const cfg = { ...keyEnv, XOAUTH2_RELAY_CONFIG: world.configFile };

  const none = await runCli(['test', 'scanner'], cfg);
  assert.equal(none.code, 1);
  assert.match(none.stdout, /^FAIL  smtp .*\n\s+fix: no token for this account yet: run `xoauth2-relay login <account>`/m);

  const tokens = await TokenServices.create(world.loaded.config, createLogger({ level: 'silent' }), { ...process.env, ...keyEnv });
  await tokens.start();
  const prompt = await tokens.get('scanner').startDeviceCode();
  world.sim.approve(prompt.userCode, SANDBOX_MAILBOX);
  await prompt.done;
  await tokens.stop();

  const ok = await runCli(['test', 'scanner'], cfg);
  assert.equal(ok.code, 0, ok.stdout + ok.stderr);
  assert.match(ok.stdout, /^pass  smtp  127\.0\.0\.1:\d+ accepted STARTTLS and AUTH XOAUTH2 for scanner@sandbox\.test/m);
  assert.match(ok.stdout, /^pass  imap  127\.0\.0\.1:\d+ accepted AUTHENTICATE XOAUTH2 for scanner@sandbox\.test; INBOX has 0 messages/m);
  assert.match(ok.stdout, /^pass  pop3  127\.0\.0\.1:\d+ accepted AUTH XOAUTH2 for scanner@sandbox\.test; the maildrop has 0 messages/m);

  const sent = await runCli(['test', 'scanner', '--only', 'smtp', '--send-to', SANDBOX_MAILBOX], cfg);
  assert.equal(sent.code, 0, sent.stdout + sent.stderr);
  assert.equal((await world.mailbox.messages(SANDBOX_MAILBOX)).length, 1);
  const pop = await runCli(['test', 'scanner', '--only', 'pop3'], cfg);
  assert.match(pop.stdout, /the maildrop has 1 message \(/);

  // The IMAP upstream pointed at a closed port: a clear failure and its fix; the others still pass.
  const config = parse(await readFile(world.configFile, 'utf8')) as Record<string, Record<string, unknown>>;
  config.imap = { ...config.imap, upstream: { host: '127.0.0.1', port: 9 } };
  const broken = join(dir, 'broken.yaml');
  await writeFile(broken, stringify(config));
  const down = await runCli(['test', 'scanner', '--config', broken], keyEnv);
  assert.equal(down.code, 1);
  assert.match(down.stdout, /^FAIL  imap  127\.0\.0\.1:9: ECONNREFUSED/m);
  assert.match(down.stdout, /fix: the upstream IMAP\/POP3 server could not be reached/);
  assert.match(down.stdout, /^pass  smtp/m);
  assert.equal((await runCli(['test', 'scanner', '--only', 'ftp'], cfg)).code, 64);
});
