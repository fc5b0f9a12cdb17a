/**
 * `hash-password` as a person meets it at a terminal, in a real one (tmux, a pseudo-terminal with a screen we
 * can read): the prompts "Password: " and "Again: " are visible, what is typed is not, a short password is
 * refused before "Again:", and the hash goes to standard output. And as a script meets it: one line on
 * standard input, the same refusal for a short password.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { verifyPassword } from '../../src/auth/password-hash.js';
import { runCli } from '../support/run-cli.js';

const exec = promisify(execFile);
const TMUX = '/usr/bin/tmux';

function tmuxMissing(): string | false {
  try {
    accessSync(TMUX, constants.X_OK);
    return false;
  } catch {
    // CI installs it (scripts/setup-debian.sh): there the test must run, not pass unseen.
    return process.env.CI ? false : `${TMUX} not found: apt-get install tmux`;
  }
}

const skip = tmuxMissing();
let scratch = '';
let socket = '';

before(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'xoauth2-relay-tty-'));
  socket = join(scratch, 'tmux.sock');
});

after(async () => {
  if (!skip) await exec(TMUX, ['-S', socket, 'kill-server']).catch(() => undefined);
  await rm(scratch, { recursive: true, force: true });
});

const tmux = (...args: string[]) => exec(TMUX, ['-S', socket, ...args]);

/** Starts `hash-password` in a fresh tmux window; its standard output goes to `outFile`, the exit code after it. */
async function startAtTerminal(name: string, outFile: string): Promise<void> {
  const cli = `${JSON.stringify(process.execPath)} --import tsx src/cli/main.ts hash-password > ${JSON.stringify(outFile)}; echo "EXIT=$?"; sleep 120`;
  const args = ['new-window', '-d', '-n', name, '-c', resolve('.'), cli];
  await tmux(...(await hasServer() ? args : ['new-session', '-d', '-s', 'main', '-n', name, '-x', '120', '-y', '20', '-c', resolve('.'), cli]));
}

async function hasServer(): Promise<boolean> {
  return tmux('has-session', '-t', 'main').then(() => true, () => false);
}

async function screen(name: string): Promise<string> {
  return (await tmux('capture-pane', '-p', '-t', `main:${name}`)).stdout;
}

async function waitForScreen(name: string, pattern: RegExp): Promise<string> {
  const until = Date.now() + 20_000;
  let text = '';
  while (Date.now() < until) {
    text = await screen(name);
    if (pattern.test(text)) return text;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the terminal never showed ${pattern}:\n${text}`);
}

async function type(name: string, text: string): Promise<void> {
  await tmux('send-keys', '-t', `main:${name}`, '-l', text);
  await tmux('send-keys', '-t', `main:${name}`, 'Enter');
}

test('at a terminal: visible prompts, hidden input, confirmation, and the hash on standard output', { skip }, async () => {
  const out = join(scratch, 'hash.txt');
  await startAtTerminal('good', out);
  await waitForScreen('good', /^Password:\s*$/m);
  const password = 'correct horse battery';
  await type('good', password);
  await waitForScreen('good', /^Again:\s*$/m);
  await type('good', password);
  const done = await waitForScreen('good', /EXIT=\d+/);
  assert.match(done, /EXIT=0/);
  assert.equal(done.includes('horse'), false, `nothing typed is echoed:\n${done}`);
  const hash = (await readFile(out, 'utf8')).trim();
  assert.ok(await verifyPassword(password, hash), 'the printed hash verifies the password');
});

test('at a terminal: a password under 8 characters is refused before "Again:", in words', { skip }, async () => {
  const out = join(scratch, 'short.txt');
  await startAtTerminal('short', out);
  await waitForScreen('short', /^Password:\s*$/m);
  await type('short', 'abc');
  const done = await waitForScreen('short', /EXIT=\d+/);
  assert.match(done, /EXIT=1/);
  assert.match(done, /the password has 3 characters, at least 8 are needed: nothing printed/);
  assert.doesNotMatch(done, /Again:/);
  assert.doesNotMatch(done, /abc/);
  assert.equal(await readFile(out, 'utf8'), '');
});

test('at a terminal: two different passwords print nothing', { skip }, async () => {
  const out = join(scratch, 'differ.txt');
  await startAtTerminal('differ', out);
  await waitForScreen('differ', /^Password:\s*$/m);
  await type('differ', 'first password');
  await waitForScreen('differ', /^Again:\s*$/m);
  await type('differ', 'second password');
  const done = await waitForScreen('differ', /EXIT=\d+/);
  assert.match(done, /EXIT=1/);
  assert.match(done, /the two passwords differ, nothing printed/);
  assert.equal(await readFile(out, 'utf8'), '');
});

test('from standard input: a short password is refused with the same words; 8 characters are enough', async () => {
  const short = await runCli(['hash-password'], {}, 'abc\n');
  assert.equal(short.code, 1);
  assert.equal(short.stdout, '');
  assert.match(short.stderr, /the password has 3 characters, at least 8 are needed: nothing printed/);
  const enough = await runCli(['hash-password'], {}, '12345678\n');
  assert.equal(enough.code, 0, enough.stderr);
  assert.ok(await verifyPassword('12345678', enough.stdout.trim()));
});
