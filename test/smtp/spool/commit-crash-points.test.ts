/**
 * Each step of `Spool.commit` (spool.ts header comment) with the process killed there (`kill -9`) or the step
 * failing (an injected throw): after recovery an acknowledged message is queued, whole and deliverable; one
 * that was not acknowledged is gone without a trace, or (killed after its commit marker was in place) whole.
 * Never a partial message, never a marker without its bytes. `kill -9` keeps the page cache, so this checks the
 * order of names; the fsyncs between the steps are what a power cut needs and are counted in spool.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { isRelayError } from '../../../src/errors.js';
import { Spool, type CommitStep } from '../../../src/smtp/spool/spool.js';

const child = fileURLToPath(new URL('./commit-crash-child.ts', import.meta.url));
const steps: CommitStep[] = ['message-written', 'synced', 'marker-renamed', 'directory-synced'];
/** Steps after which the commit marker is in queue/: the message is committed, even if the 250 never went out. */
const markerInPlace = new Set<CommitStep>(['marker-renamed', 'directory-synced']);

function runUntilKilled(stateDir: string, step: CommitStep): Promise<{ acked: [string, string]; crashing: [string, string] }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', child, stateDir, step], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
    proc.on('exit', (_code, signal) => {
      const line = (tag: string) => out.split('\n').find((l) => l.startsWith(`${tag} `))?.split(' ').slice(1) as [string, string] | undefined;
      const acked = line('acked');
      const crashing = line('crashing');
      if (signal !== 'SIGKILL' || !acked || !crashing) reject(new Error(`child did not stop at ${step} (signal ${signal}): ${out} ${err}`));
      else resolve({ acked, crashing });
    });
  });
}

async function filesOf(stateDir: string, id: string): Promise<string[]> {
  const found: string[] = [];
  for (const folder of ['tmp', 'queue', 'dead']) {
    for (const name of await readdir(join(stateDir, 'spool', folder))) if (name.includes(id)) found.push(`${folder}/${name}`);
  }
  return found;
}

const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

for (const step of steps) {
  test(`killed at "${step}": the acknowledged message is whole and deliverable; the one in flight is ${markerInPlace.has(step) ? 'whole (committed, 250 never sent)' : 'gone'}`, async () => {
    const stateDir = await mkdtemp(join(tmpdir(), 'xoauth2-relay-crashpoint-'));
    try {
      const { acked, crashing } = await runUntilKilled(stateDir, step);
      const spool = await Spool.open(stateDir, { recover: true });
      const [ackedId, ackedSha] = acked;
      const queued = await spool.list();
      const ackedEnvelope = queued.find((e) => e.id === ackedId);
      assert.ok(ackedEnvelope, 'the acknowledged message is queued');
      assert.equal(ackedEnvelope.state.status, 'queued');
      assert.equal(sha(await readFile(spool.messagePath(ackedId))), ackedSha, 'and whole');

      const [crashId, crashSha] = crashing;
      if (markerInPlace.has(step)) {
        assert.equal(sha(await readFile(spool.messagePath(crashId))), crashSha, 'committed before the kill: whole');
        assert.deepEqual((await filesOf(stateDir, crashId)).sort(), [`queue/${crashId}.eml`, `queue/${crashId}.json`]);
        assert.equal(queued.length, 2);
      } else {
        assert.deepEqual(await filesOf(stateDir, crashId), [], 'never acknowledged: nothing of it is left');
        assert.deepEqual(queued.map((e) => e.id), [ackedId]);
      }
      assert.deepEqual(await readdir(join(stateDir, 'spool', 'tmp')), []);
    } finally {
      await rm(stateDir, { recursive: true, force: true });
    }
  });
}

test('a step that fails (an injected throw) rejects the commit with SPOOL_WRITE_FAILED and leaves no file and no index entry', async () => {
  const stateDir = await mkdtemp(join(tmpdir(), 'xoauth2-relay-crashpoint-'));
  try {
    let failAt: CommitStep | null = null;
    const spool = await Spool.open(stateDir, {
      recover: true,
      onCommitStep: (step) => {
        if (step === failAt) throw new Error(`disk trouble at ${step}`);
      },
    });
    const envelope = { device: 'd', account: 'scanner', mailFrom: 'a@example.test', rcptTo: ['b@example.test'], remoteAddress: '127.0.0.1', smtpUtf8: false };
    const kept = await spool.commit(envelope, Readable.from([Buffer.from('Subject: kept\r\n\r\nkept\r\n')]));
    for (const step of steps) {
      failAt = step;
      await assert.rejects(spool.commit(envelope, Readable.from([Buffer.from('Subject: lost\r\n\r\nlost\r\n')])), (err) => isRelayError(err, 'SPOOL_WRITE_FAILED'), step);
      assert.deepEqual((await readdir(join(stateDir, 'spool', 'queue'))).sort(), [`${kept.id}.eml`, `${kept.id}.json`], step);
      assert.deepEqual(await readdir(join(stateDir, 'spool', 'tmp')), [], step);
      assert.deepEqual((await spool.list()).map((e) => e.id), [kept.id], step);
    }
  } finally {
    await rm(stateDir, { recursive: true, force: true });
  }
});
