import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { queueCommand, type QueueAction, type QueueOptions, type QueueRow } from '../../../src/cli/queue.js';
import { exitCodes } from '../../../src/cli/exit-codes.js';
import { Spool } from '../../../src/smtp/spool/spool.js';

const configYaml = `
stateDir: ./state
accounts:
  scanner:
    mailbox: scanner@contoso.example
    tenantId: 11111111-2222-3333-4444-555555555555
    clientId: 66666666-7777-8888-9999-000000000000
`;

/** Runs the command and captures what it prints. */
async function run(action: QueueAction, id: string | undefined, opts: QueueOptions): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const stdoutWrite = process.stdout.write.bind(process.stdout);
  const stderrWrite = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((chunk: string) => ((out += chunk), true)) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string) => ((err += chunk), true)) as typeof process.stderr.write;
  try {
    return { code: await queueCommand(action, id, opts), out, err };
  } finally {
    process.stdout.write = stdoutWrite;
    process.stderr.write = stderrWrite;
  }
}

test('queue list / retry / drop on a spool, with the config from a file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'xoauth2-relay-queue-cli-'));
  try {
    const config = join(dir, 'config.yaml');
    await writeFile(config, configYaml);
    const opts = { config };

    // No spool yet: an empty list, and nothing created (the daemon's user must own the spool).
    assert.deepEqual(await run('list', undefined, opts), { code: exitCodes.ok, out: 'queue is empty\n', err: '' });
    await assert.rejects(stat(join(dir, 'state', 'spool')), { code: 'ENOENT' });

    const spool = await Spool.open(join(dir, 'state'));
    const envelope = { device: 'floor2-mfp', account: 'scanner', mailFrom: 'mfp@contoso.example', rcptTo: ['a@contoso.example', 'b@contoso.example'], remoteAddress: '192.168.10.50', smtpUtf8: false };
    const deferred = (await spool.commit(envelope, Readable.from([Buffer.alloc(2048, 0x41)]))).id;
    const doomed = (await spool.commit(envelope, Readable.from([Buffer.from('x\r\n')]))).id;
    const state = (await spool.get(deferred))!.state;
    const later = new Date(Date.now() + 3_600_000).toISOString();
    await spool.update(deferred, { ...state, status: 'deferred', attempts: 3, nextAttemptAt: later, lastReply: '451 4.7.0 later', lastReason: 'Exchange answered with a temporary failure (4xx: busy, throttled, or a passing fault)', lastCode: 'UPSTREAM_TEMPORARY' });
    await spool.bury(doomed, { code: 'UPSTREAM_SEND_AS_DENIED', reason: 'the mailbox may not send as this sender', reply: '550 5.7.60 denied' });

    const listed = await run('list', undefined, opts);
    assert.equal(listed.code, exitCodes.ok);
    const [line, ...rest] = listed.out.trimEnd().split('\n');
    assert.deepEqual(rest, []);
    assert.match(line!, new RegExp(`^${deferred}\\s+deferred\\s+scanner\\s+mfp@contoso.example\\s+2 rcpt\\s+2.0 KB\\s+\\d+s\\s+3 tries\\s+Exchange answered with a temporary failure`));

    const json = JSON.parse((await run('list', undefined, { ...opts, json: true })).out) as QueueRow[];
    assert.equal(json.length, 1);
    assert.deepEqual({ ...json[0], ageSeconds: 0 }, { id: deferred, status: 'deferred', account: 'scanner', device: 'floor2-mfp', from: 'mfp@contoso.example', rcpt: 2, size: 2048, ageSeconds: 0, attempts: 3, nextAttemptAt: later, lastReply: '451 4.7.0 later', lastReason: 'Exchange answered with a temporary failure (4xx: busy, throttled, or a passing fault)' });

    const dead = JSON.parse((await run('list', undefined, { ...opts, json: true, dead: true })).out) as QueueRow[];
    assert.deepEqual(dead.map((r) => [r.id, r.status, r.lastReply]), [[doomed, 'dead', '550 5.7.60 denied']]);

    // retry <id>: due now, attempts kept; from dead/: back in the queue.
    assert.equal((await run('retry', deferred, opts)).code, exitCodes.ok);
    const retried = await spool.get(deferred);
    assert.equal(retried?.state.status, 'queued');
    assert.equal(retried?.state.attempts, 3);
    assert.ok(Date.parse(retried!.state.nextAttemptAt) <= Date.now());
    const resurrected = await run('retry', doomed, opts);
    assert.match(resurrected.out, /back from dead\/, queued/);
    assert.equal((await spool.get(doomed))?.state.status, 'queued');

    // drop <id>, and the errors a person can make.
    assert.deepEqual(await run('drop', doomed, opts), { code: exitCodes.ok, out: `${doomed} dropped\n`, err: '' });
    const missing = await run('drop', doomed, opts);
    assert.equal(missing.code, exitCodes.failed);
    assert.match(missing.err, /no message/);
    assert.equal((await run('retry', undefined, opts)).code, exitCodes.usage);
    assert.equal((await run('drop', undefined, { ...opts, all: true })).code, exitCodes.usage, 'drop --all needs --dead');
    assert.equal((await run('retry', '../../etc/passwd', opts)).code, exitCodes.failed);

    // retry --all, drop --all --dead.
    await spool.bury(deferred, { code: 'UPSTREAM_REJECTED', reason: 'test', reply: '550 no' });
    assert.match((await run('retry', undefined, { ...opts, all: true, dead: true })).out, new RegExp(`${deferred} back from dead`));
    await spool.bury(deferred, { code: 'UPSTREAM_REJECTED', reason: 'test', reply: '550 no' });
    assert.equal((await run('drop', undefined, { ...opts, all: true, dead: true })).code, exitCodes.ok);
    assert.deepEqual([...(await spool.list()), ...(await spool.listDead())], []);
    assert.equal((await run('list', undefined, { ...opts, dead: true })).out, 'no dead letters\n');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
