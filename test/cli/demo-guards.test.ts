/**
 * The demo's guards, with the real CLI as a child process: a state directory it did not make is refused
 * untouched; a port in use is named with the process that holds it, before anything is written, and the demo
 * exits instead of hanging; a second demo neither overwrites a running demo's config nor takes its ports.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEMO_MARKER, stateDirProblem } from '../../src/cli/demo-guards.js';
import { runCli, startCli } from '../support/run-cli.js';

const anyPorts = ['--smtp-port', '0', '--pop3-port', '0', '--imap-port', '0', '--admin-port', '0'];

async function scratchDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'xoauth2-relay-demo-guard-'));
}

function listen(): Promise<{ server: Server; port: number }> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as { port: number }).port }));
  });
}

test('state directory: new, empty, its own (marker, or an older demo\'s layout) are fine; anything else is refused', async () => {
  const root = await scratchDir();
  try {
    assert.equal(await stateDirProblem(join(root, 'new')), null);
    await mkdir(join(root, 'empty'));
    assert.equal(await stateDirProblem(join(root, 'empty')), null);
    await mkdir(join(root, 'own'));
    await writeFile(join(root, 'own', DEMO_MARKER), JSON.stringify({ pid: 2 ** 22 + 7, startedAt: 'earlier' }));
    await writeFile(join(root, 'own', 'config.yaml'), '');
    assert.equal(await stateDirProblem(join(root, 'own')), null, 'its own, from a demo that has ended');
    await mkdir(join(root, 'legacy'));
    await mkdir(join(root, 'legacy', 'mailbox'));
    await writeFile(join(root, 'legacy', 'config.yaml'), '');
    assert.equal(await stateDirProblem(join(root, 'legacy')), null);
    await mkdir(join(root, 'home'));
    await writeFile(join(root, 'home', 'thesis.tex'), 'years of work');
    assert.match((await stateDirProblem(join(root, 'home'))) ?? '', /is not empty and was not made by the demo/);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('--state-dir with someone else\'s files: refused (64) with the reason, nothing deleted, no log written', async () => {
  const root = await scratchDir();
  try {
    const dir = join(root, 'documents');
    await mkdir(dir);
    await writeFile(join(dir, 'precious.txt'), 'keep me');
    const r = await runCli(['demo', '--auto-approve', ...anyPorts, '--state-dir', dir]);
    assert.equal(r.code, 64, r.stderr);
    assert.match(r.stderr, /--state-dir .*documents is not empty and was not made by the demo \(no \.xoauth2-relay-demo in it\)/);
    assert.deepEqual(await readdir(dir), ['precious.txt']);
    assert.equal(await readFile(join(dir, 'precious.txt'), 'utf8'), 'keep me');
    assert.equal(existsSync(join(root, 'documents.log')), false);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('a port in use: named with its holder before anything is written; the demo exits (69) instead of hanging', async () => {
  const root = await scratchDir();
  const { server, port } = await listen();
  try {
    const dir = join(root, 'demo');
    const started = Date.now();
    const r = await runCli(['demo', '--auto-approve', ...anyPorts, '--admin-port', String(port), '--state-dir', dir]);
    assert.equal(r.code, 69, r.stderr);
    assert.ok(Date.now() - started < 20_000);
    assert.match(r.stderr, new RegExp(`port ${port} \\(--admin-port\\) on 127\\.0\\.0\\.1 is held by pid ${process.pid} \\(`));
    assert.match(r.stderr, /pass --admin-port 0 for any free port/);
    assert.equal(existsSync(dir), false, 'no state directory');
    assert.equal(existsSync(join(root, 'demo.log')), false, 'no log');
  } finally {
    server.close();
    await rm(root, { recursive: true, force: true });
  }
});

test('a second demo while one runs: same state dir refused with the running pid, its config untouched; its port refused as another demo\'s', { timeout: 120_000 }, async () => {
  const root = await scratchDir();
  const dir = join(root, 'demo');
  const first = startCli(['demo', '--auto-approve', ...anyPorts, '--state-dir', dir]);
  try {
    const [, adminPort] = await first.waitFor(/admin page: +http:\/\/127\.0\.0\.1:(\d+)\//);
    await first.waitFor(/Press Ctrl-C to stop/, 60_000);
    const config = join(dir, 'config.yaml');
    const before = { text: await readFile(config, 'utf8'), mtimeMs: (await stat(config)).mtimeMs };

    const sameDir = await runCli(['demo', '--auto-approve', ...anyPorts, '--state-dir', dir]);
    assert.equal(sameDir.code, 64, sameDir.stderr);
    assert.match(sameDir.stderr, new RegExp(`another demo is running from .*demo \\(pid ${first.child.pid}, since `));

    const samePort = await runCli(['demo', '--auto-approve', ...anyPorts, '--admin-port', adminPort!, '--state-dir', join(root, 'other')]);
    assert.equal(samePort.code, 69, samePort.stderr);
    assert.match(samePort.stderr, new RegExp(`port ${adminPort} \\(--admin-port\\) on 127\\.0\\.0\\.1 is held by pid ${first.child.pid} \\(.*\\): another demo is running; stop it with Ctrl-C where it runs`));

    assert.equal(await readFile(config, 'utf8'), before.text, 'the running demo\'s config is untouched');
    assert.equal((await stat(config)).mtimeMs, before.mtimeMs);
    assert.equal((await fetch(`http://127.0.0.1:${adminPort}/healthz`)).status, 200, 'the first demo still serves');
  } finally {
    first.child.kill('SIGINT');
    assert.equal(await first.exit, 0, first.stderr());
    await rm(root, { recursive: true, force: true });
  }
});
