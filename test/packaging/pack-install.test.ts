/**
 * The release artifact, as an operator installs it: `npm pack` (its prepack step builds dist/), then
 * `npm install -g --prefix <temp> ./xoauth2-relay-<v>.tgz` (dependencies from the npm registry or the local
 * cache), then the `xoauth2-relay` that landed on PATH: --version, check-config on the shipped example, and the
 * demo end to end without a terminal, including the queue command the demo tells the user to type.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const pkg = JSON.parse(readFileSync(resolve('package.json'), 'utf8')) as { name: string; version: string };
let scratch = '';
let prefix = '';
let env: NodeJS.ProcessEnv = {};

/** The environment of a shell outside this repository: no npm script variables that point npm back here. */
function cleanEnv(): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^npm_(lifecycle_|package_|config_(prefix|global|local_prefix|global_prefix)$)/i.test(k)) continue;
    out[k] = v;
  }
  delete out.XOAUTH2_RELAY_CONFIG;
  return out;
}

before(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'xoauth2-relay-pack-'));
  prefix = join(scratch, 'prefix');
  env = { ...cleanEnv(), PATH: `${join(prefix, 'bin')}${delimiter}${process.env.PATH ?? ''}` };
});

after(async () => {
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

test('npm pack builds first and ships dist/, bin/, the example config, the unit file and the docs', { timeout: 180_000 }, async () => {
  await run('npm', ['pack', '--pack-destination', scratch, '--no-fund'], { env: cleanEnv(), maxBuffer: 16 * 1024 * 1024 });
  const tarball = join(scratch, `${pkg.name}-${pkg.version}.tgz`);
  assert.ok(existsSync(tarball), `${tarball} made (found: ${(await readdir(scratch)).join(', ')})`);
  const { stdout } = await run('tar', ['-tzf', tarball], { maxBuffer: 16 * 1024 * 1024 });
  const files = stdout.split('\n');
  for (const wanted of ['package/bin/xoauth2-relay.js', 'package/dist/cli/main.js', 'package/dist/daemon.js', 'package/config/example.yaml', 'package/systemd/xoauth2-relay.service', 'package/docs/running.md']) {
    assert.ok(files.includes(wanted), `the tarball has ${wanted}`);
  }
  assert.equal(files.some((f) => f.startsWith('package/src/') || f.startsWith('package/test/')), false, 'no sources or tests');

  const install = await run('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', tarball], { env: cleanEnv(), maxBuffer: 16 * 1024 * 1024 });
  assert.match(install.stdout, /added \d+ packages?/);
  assert.ok(existsSync(join(prefix, 'bin', 'xoauth2-relay')), 'xoauth2-relay is in <prefix>/bin');
});

test('the installed xoauth2-relay: --version, and check-config on the shipped example', { timeout: 60_000 }, async () => {
  const which = await run('sh', ['-c', 'command -v xoauth2-relay'], { env });
  assert.equal(which.stdout.trim(), join(prefix, 'bin', 'xoauth2-relay'));
  const version = await run('xoauth2-relay', ['--version'], { env });
  assert.equal(version.stdout.trim(), pkg.version);
  const example = join(prefix, 'lib', 'node_modules', pkg.name, 'config', 'example.yaml');
  const checked = await run('xoauth2-relay', ['--config', example, 'check-config'], { env });
  assert.match(checked.stdout, /: OK\n {2}accounts: scanner \(scanner@contoso\.com, device-code\)/);
});

test('the installed demo runs to the end without a terminal, and the queue command it prints works as printed', { timeout: 120_000 }, async () => {
  const stateDir = join(scratch, 'demo');
  const demo = spawn('xoauth2-relay', ['demo', '--auto-approve', '--smtp-port', '0', '--pop3-port', '0', '--imap-port', '0', '--admin-port', '0', '--state-dir', stateDir], { env, cwd: scratch, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  demo.stdout.on('data', (d) => (out += String(d)));
  demo.stderr.on('data', (d) => (err += String(d)));
  const exited = new Promise<number>((done) => demo.on('exit', (code, signal) => done(code ?? (signal ? 128 : 1))));
  try {
    const until = Date.now() + 90_000;
    while (!/Press Ctrl-C to stop/.test(out) && Date.now() < until && demo.exitCode === null) await new Promise((r) => setTimeout(r, 200));
    assert.match(out, /✔ token acquired for scanner@sandbox\.test/, `${out}\n${err}`);
    assert.match(out, /✔ fetched through the relay: Subject: Scan from demo-scanner/);
    const queueLine = /Queue: (XOAUTH2_RELAY_CONFIG=\S+) (xoauth2-relay queue list)\n/.exec(out);
    assert.ok(queueLine, `the demo prints the bare command for an installed package:\n${out}`);
    const queue = await run('sh', ['-c', `${queueLine[1]} ${queueLine[2]}`], { env, cwd: scratch });
    assert.doesNotMatch(queue.stdout + queue.stderr, /not found|error/i);
  } finally {
    demo.kill('SIGINT');
    assert.equal(await exited, 0, err);
  }
});
