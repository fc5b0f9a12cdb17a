import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Spool } from '../../../src/smtp/spool/spool.js';

const child = fileURLToPath(new URL('./commit-until-killed.ts', import.meta.url));

/** Runs the committing child until `killAfterMs`, kills it with SIGKILL, and resolves the acknowledged ids. */
function commitUntilKilled(stateDir: string, killAfterMs: number): Promise<Map<string, string>> {
  return new Promise((resolve, reject) => {
    const acknowledged = new Map<string, string>();
    const proc = spawn(process.execPath, ['--import', 'tsx', child, stateDir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let pending = '';
    let stderr = '';
    let killTimer: NodeJS.Timeout | undefined;
    proc.stdout.on('data', (chunk: Buffer) => {
      pending += chunk.toString();
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        const [id, sha] = line.split(' ');
        if (id && sha) acknowledged.set(id, sha);
        // Kill only once it is committing at full speed (tsx start-up takes a while).
        if (acknowledged.size === 1) killTimer = setTimeout(() => proc.kill('SIGKILL'), killAfterMs);
      }
    });
    proc.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    proc.on('exit', (code, signal) => {
      clearTimeout(killTimer);
      if (signal === 'SIGKILL') resolve(acknowledged);
      else reject(new Error(`child exited by itself (code ${code}): ${stderr}`));
    });
  });
}

test('kill -9 at any moment loses no acknowledged message: after recovery each one is queued or dead, whole', { timeout: 120_000 }, async (t) => {
  const stateDir = await mkdtemp(join(tmpdir(), 'xoauth2-relay-crash-'));
  try {
    const everAcknowledged = new Map<string, string>();
    let recovered = 0;
    for (const killAfterMs of [150, 330, 520, 710]) {
      for (const [id, sha] of await commitUntilKilled(stateDir, killAfterMs)) everAcknowledged.set(id, sha);
      const spool = await Spool.open(stateDir, { recover: true });
      const r = spool.recovery!;
      recovered += r.tmpRemoved + r.orphansRemoved + r.duplicatesResolved;

      const queued = new Set((await spool.list()).map((e) => e.id));
      const dead = new Set((await spool.listDead()).map((e) => e.id));
      for (const [id, sha] of everAcknowledged) {
        assert.ok(queued.has(id) !== dead.has(id), `${id} must be in exactly one of queue/ and dead/`);
        const bytes = await readFile(spool.messagePath(id, queued.has(id) ? 'queue' : 'dead'));
        assert.equal(createHash('sha256').update(bytes).digest('hex'), sha, `${id} intact`);
      }
      // Nothing but whole entries is left: every file belongs to a committed message.
      assert.deepEqual(await readdir(join(stateDir, 'spool', 'tmp')), []);
      for (const folder of ['queue', 'dead']) {
        const names = await readdir(join(stateDir, 'spool', folder));
        for (const name of names) assert.ok(names.includes(name.replace(/\.eml$/, '.json')) && names.includes(name.replace(/\.json$/, '.eml')), `${folder}/${name} has its pair`);
      }
    }
    assert.ok(everAcknowledged.size > 20, `the child committed ${everAcknowledged.size} messages`);
    t.diagnostic(`${everAcknowledged.size} acknowledged messages over 4 kills, ${recovered} crash leftovers recovered`);
  } finally {
    await rm(stateDir, { recursive: true, force: true });
  }
});
