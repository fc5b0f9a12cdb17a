/**
 * The Dockerfile, checked without a Docker engine: it parses, builds in two stages (dev dependencies only in
 * the first), installs production dependencies with `npm ci --omit=dev`, runs as a non-root user, keeps its
 * state in a volume, exposes the device and admin ports, and its HEALTHCHECK asks /healthz on the admin
 * listener's default address. Everything it COPYs from the build context exists in this checkout.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { configSchema } from '../../src/config/schema.js';
import { envOf, instructionsOf, parseDockerfile, type Stage } from './dockerfile-parser.js';

const dockerfile = parseDockerfile(readFileSync(resolve('Dockerfile'), 'utf8'));
const runtime = dockerfile.stages.at(-1)!;
const build = dockerfile.stages[0]!;

/** What the schema gives a config that only names an account: the defaults the image must match. */
const defaults = configSchema.parse({ accounts: { a: { mailbox: 'a@example.com', tenantId: 'organizations', clientId: '00000000-0000-4000-8000-000000000000' } } });

const runs = (stage: Stage) => instructionsOf(stage, 'RUN').map((i) => i.args).join('\n');

test('the parser reads instructions, continuations and exec forms, and refuses what Docker would', () => {
  const sample = parseDockerfile('# syntax=docker/dockerfile:1\nARG V=1\nFROM a:${V} AS one\nRUN echo \\\n  two \\\n  three\nFROM scratch\nCOPY --from=one /x /y\nCMD ["run", "now"]\n');
  assert.equal(sample.globalArgs.length, 1);
  assert.deepEqual(sample.stages.map((s) => s.name), ['one', null]);
  assert.equal(sample.stages[0]!.instructions[1]!.args, 'echo two three');
  assert.deepEqual(sample.stages[1]!.instructions[1]!.flags, { from: 'one' });
  assert.deepEqual(sample.stages[1]!.instructions[2]!.exec, ['run', 'now']);
  assert.throws(() => parseDockerfile('FROM a\nRUNN x\n'), /unknown instruction RUNN/);
  assert.throws(() => parseDockerfile('RUN x\nFROM a\n'), /before the first FROM/);
  assert.throws(() => parseDockerfile('FROM a\nCMD ["x",]\n'), /not one/);
  assert.throws(() => parseDockerfile('FROM a\nRUN x \\\n'), /never ends/);
});

test('multi-stage: the build stage compiles, the runtime stage takes only dist/ from it', () => {
  assert.ok(dockerfile.stages.length >= 2, 'at least two stages');
  assert.equal(build.name, 'build');
  assert.match(runs(build), /^npm ci$/m);
  assert.match(runs(build), /npm run build/);
  const fromBuild = instructionsOf(runtime, 'COPY').filter((c) => c.flags.from);
  assert.ok(fromBuild.length > 0);
  for (const copy of fromBuild) {
    assert.ok(dockerfile.stages.slice(0, -1).some((s) => s.name === copy.flags.from), `COPY --from=${copy.flags.from} names an earlier stage`);
    assert.match(copy.args, /^\/app\/dist /);
  }
  assert.equal(runtime.base, build.base, 'same Node base image in both stages');
  assert.match(runtime.base, /^node:24-/, 'Node 24, the active LTS');
});

test('production dependencies only: npm ci --omit=dev in the runtime stage, and no other install there', () => {
  const text = runs(runtime);
  assert.match(text, /\bnpm ci --omit=dev\b/);
  assert.equal(/\bnpm (install|i)\b/.test(text), false);
  assert.equal((text.match(/\bnpm ci\b/g) ?? []).length, 1);
  assert.equal(instructionsOf(runtime, 'COPY').some((c) => /^src\b/.test(c.args)), false, 'no TypeScript sources in the image');
});

test('runs as a non-root user, set before the entry point, with the state in a volume it owns', () => {
  const users = instructionsOf(runtime, 'USER');
  assert.ok(users.length > 0, 'a USER instruction');
  const user = users.at(-1)!.args.split(':')[0]!;
  assert.ok(!['root', '0'].includes(user), `USER ${user} is not root`);
  const entry = instructionsOf(runtime, 'ENTRYPOINT').at(-1)!;
  assert.ok(users.at(-1)!.line < entry.line, 'USER comes before ENTRYPOINT');
  assert.deepEqual(entry.exec, ['node', '/app/bin/xoauth2-relay.js'], 'exec form: node is PID 1 and receives SIGTERM');
  assert.deepEqual(instructionsOf(runtime, 'CMD').at(-1)!.exec, ['run']);
  assert.deepEqual(instructionsOf(runtime, 'VOLUME').at(-1)!.exec, ['/var/lib/xoauth2-relay']);
  assert.match(runs(runtime), new RegExp(`chown ${user}:${user} /var/lib/xoauth2-relay`));
  assert.equal(envOf(runtime).XOAUTH2_RELAY_CONFIG, '/etc/xoauth2-relay/config.yaml');
});

test('exposes the device ports and the admin port of the schema defaults', () => {
  const ports = instructionsOf(runtime, 'EXPOSE').flatMap((e) => e.args.split(/\s+/)).map((p) => Number(p.split('/')[0]));
  const adminPort = Number(defaults.admin.listen.split(':').at(-1));
  for (const port of [defaults.smtp.listen[0]!.port, 1143, 1110, adminPort]) assert.ok(ports.includes(port), `EXPOSE ${port}`);
});

test('HEALTHCHECK asks /healthz on the admin listener\'s default address', () => {
  const checks = instructionsOf(runtime, 'HEALTHCHECK');
  assert.equal(checks.length, 1);
  const check = checks[0]!;
  for (const flag of ['interval', 'timeout', 'retries']) assert.ok(check.flags[flag], `--${flag}`);
  assert.ok(check.exec, 'exec form');
  const script = check.exec!.join(' ');
  const url = envOf(runtime).XOAUTH2_RELAY_HEALTHCHECK_URL;
  assert.ok(script.includes('/healthz') || (script.includes('XOAUTH2_RELAY_HEALTHCHECK_URL') && url?.endsWith('/healthz')), 'it asks /healthz');
  assert.equal(url, `http://${defaults.admin.listen}/healthz`);
  assert.match(script, /process\.exit\(r\.statusCode>=200&&r\.statusCode<300\?0:1\)/, 'unhealthy on a non-2xx answer');
  assert.match(script, /u\.protocol==='https:'\?'https':'http'/, 'works for an HTTPS admin page too (admin.tls)');
});

test('every file the Dockerfile copies from the build context exists', () => {
  for (const stage of dockerfile.stages) {
    for (const copy of instructionsOf(stage, 'COPY').filter((c) => !c.flags.from)) {
      const parts = copy.args.split(/\s+/);
      for (const source of parts.slice(0, -1)) assert.ok(existsSync(resolve(source)), `COPY ${source} (line ${copy.line})`);
    }
  }
  const ignored = readFileSync(resolve('.dockerignore'), 'utf8').split('\n').map((l) => l.trim());
  for (const local of ['node_modules', 'dist', '.git']) assert.ok(ignored.includes(local), `.dockerignore keeps ${local} out of the build context`);
});
