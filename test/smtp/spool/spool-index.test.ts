/**
 * The daemon's in-memory spool index: after commits, deliveries, dead letters, retries and drops, and after a
 * restart, it says what the disk says; another process's changes reach it through change markers; it is
 * rebuilt from thousands of envelopes under a file-descriptor limit that a read of all at once would break.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Spool } from '../../../src/smtp/spool/spool.js';
import { newMessageId } from '../../../src/smtp/spool/message-id.js';
import type { NewEnvelope, SpooledEnvelope } from '../../../src/smtp/spool/envelope.js';

const envelope: NewEnvelope = { device: 'mfp', account: 'scanner', mailFrom: 'scan@contoso.example', rcptTo: ['a@contoso.example', 'b@contoso.example'], remoteAddress: '192.168.1.20', smtpUtf8: false };
const verdict = { code: 'UPSTREAM_REJECTED' as const, reason: 'test', reply: '550 5.1.1 no such user' };
const body = (n: number) => Readable.from([Buffer.from(`Subject: ${n}\r\n\r\nmessage ${n}\r\n`)]);

async function withStateDir(run: (stateDir: string) => Promise<void>): Promise<void> {
  const stateDir = await mkdtemp(join(tmpdir(), 'xoauth2-relay-index-'));
  try {
    await run(stateDir);
  } finally {
    await rm(stateDir, { recursive: true, force: true });
  }
}

/** What the disk holds, read by a spool without an index (as the queue CLI reads it). */
async function onDisk(stateDir: string) {
  const disk = await Spool.open(stateDir, { create: false });
  return { queue: await disk.list(), dead: await disk.listDead(), summary: await disk.summary(1000) };
}

const ids = (envelopes: SpooledEnvelope[]) => envelopes.map((e) => e.id);

async function assertIndexMatchesDisk(spool: Spool, stateDir: string, what: string): Promise<void> {
  const disk = await onDisk(stateDir);
  assert.deepEqual(await spool.list(), disk.queue, `${what}: queue`);
  assert.deepEqual(await spool.listDead(), disk.dead, `${what}: dead`);
  assert.deepEqual(await spool.summary(1000), disk.summary, `${what}: summary`);
}

test('the index says what the disk says after commits, deferral, delivery, dead letters, retry, drop and a restart', () =>
  withStateDir(async (stateDir) => {
    const spool = await Spool.open(stateDir, { recover: true });
    const committed: string[] = [];
    for (let n = 0; n < 8; n += 1) committed.push((await spool.commit(envelope, body(n))).id);
    await assertIndexMatchesDisk(spool, stateDir, 'commits');
    const [a, b, c, d, e, f] = committed as [string, string, string, string, string, string];

    const current = (await spool.get(a))!;
    await spool.update(a, { ...current.state, status: 'deferred', attempts: 1, nextAttemptAt: new Date(Date.now() + 60_000).toISOString() });
    await spool.update(b, { ...current.state, status: 'held' });
    await spool.remove(c); // delivered
    await spool.bury(d, verdict);
    const copy = await spool.buryRecipients(e, ['b@contoso.example'], verdict);
    assert.ok(copy);
    await assertIndexMatchesDisk(spool, stateDir, 'delivery outcomes');
    const summary = await spool.summary(3);
    assert.deepEqual(summary.counts, { queued: 4, deferred: 1, held: 1, dead: 2 });
    assert.equal(summary.waiting, 6);
    assert.equal(summary.total, 8);
    assert.deepEqual(ids(summary.first), [a, b, e], 'the first page: oldest waiting first');
    assert.equal(summary.oldestReceivedAt, current.receivedAt);

    assert.equal(await spool.retry(d), 'resurrected');
    assert.equal(await spool.drop(f), true);
    assert.equal(await spool.drop(copy), true);
    await assertIndexMatchesDisk(spool, stateDir, 'retry and drop');
    assert.deepEqual(ids(await spool.list()), [a, b, d, e, ...committed.slice(6)], 'a message back from dead/ takes its place by age');

    const restarted = await Spool.open(stateDir, { recover: true });
    assert.deepEqual(await restarted.summary(1000), await spool.summary(1000), 'rebuilt at start: the same index');
    await assertIndexMatchesDisk(restarted, stateDir, 'restart');
  }));

test('changes made by another process (the queue CLI) reach the daemon\'s index through change markers', () =>
  withStateDir(async (stateDir) => {
    const daemon = await Spool.open(stateDir, { recover: true });
    const first = (await daemon.commit(envelope, body(1))).id;
    const second = (await daemon.commit(envelope, body(2))).id;
    await daemon.bury(second, verdict);
    const cli = await Spool.open(stateDir, { create: false });
    assert.equal(await cli.drop(first), true);
    assert.equal(await cli.retry(second), 'resurrected');
    await new Promise((r) => setTimeout(r, 50)); // the markers are written without waiting (best effort)
    await assertIndexMatchesDisk(daemon, stateDir, 'after the CLI');
    assert.deepEqual(ids(await daemon.list()), [second]);
    assert.deepEqual((await daemon.summary(10)).counts, { queued: 1, deferred: 0, held: 0, dead: 0 });
  }));

test('5,000 envelopes are rebuilt and listed under a 96 file-descriptor limit (no EMFILE)', { timeout: 60_000 }, () =>
  withStateDir(async (stateDir) => {
    const spool = await Spool.open(stateDir); // creates the folders
    const queue = join(stateDir, 'spool', 'queue');
    const start = Date.now() - 10_000;
    const made: string[] = [];
    for (let i = 0; i < 5000; i += 1) {
      const id = newMessageId(start + i);
      made.push(id);
      const at = new Date(start + i).toISOString();
      const e: SpooledEnvelope = { ...envelope, id, receivedAt: at, size: 10, state: { status: i % 2 ? 'queued' : 'deferred', attempts: 0, nextAttemptAt: at, lastReply: null, lastReason: null, lastCode: null, updatedAt: at, since: at } };
      writeFileSync(join(queue, `${id}.eml`), 'Subject: x\r\n\r\n');
      writeFileSync(join(queue, `${id}.json`), JSON.stringify(e));
    }
    void spool;
    const child = fileURLToPath(new URL('./spool-index-child.ts', import.meta.url));
    const { stdout } = await promisify(execFile)('sh', ['-c', `ulimit -n 96 && exec "${process.execPath}" --import tsx "${child}" "${stateDir}"`]);
    const seen = JSON.parse(stdout) as { counts: Record<string, number>; waiting: number; first: string[]; cliListed: number; cliPage: { total: number; envelopes: SpooledEnvelope[] }; cliCounts: Record<string, number> };
    assert.deepEqual(seen.counts, { queued: 2500, deferred: 2500, held: 0, dead: 0 });
    assert.equal(seen.waiting, 5000);
    assert.deepEqual(seen.first, made.slice(0, 10));
    assert.equal(seen.cliListed, 5000);
    assert.equal(seen.cliPage.total, 5000);
    assert.deepEqual(ids(seen.cliPage.envelopes), made.slice(0, 5));
    assert.deepEqual(seen.cliCounts, seen.counts);
  }));

test('queue list\'s first page comes from the daemon\'s summary when there is one, and never shows the CLI a state older than its own change', () =>
  withStateDir(async (stateDir) => {
    const daemon = await Spool.open(stateDir, { recover: true });
    const a = (await daemon.commit(envelope, body(1))).id;
    const b = (await daemon.commit(envelope, body(2))).id;
    await daemon.close(); // writes the summary at once (otherwise within a second of the change)
    const cli = await Spool.open(stateDir, { create: false });
    const fromSummary = await cli.firstPage('queue', 10);
    assert.ok(fromSummary.asOf, 'read from the summary');
    assert.equal(fromSummary.total, 2);
    assert.deepEqual(ids(fromSummary.envelopes), [a, b]);
    assert.deepEqual(fromSummary.envelopes, (await onDisk(stateDir)).queue);

    assert.equal(await cli.drop(a), true);
    const afterDrop = await cli.firstPage('queue', 10);
    assert.equal(afterDrop.asOf, undefined, 'the CLI removed the summary with its change: read from disk');
    assert.deepEqual(ids(afterDrop.envelopes), [b]);

    await daemon.summary(10); // the daemon reads the CLI's change marker ...
    await daemon.close(); // ... and the summary it writes has it
    const again = await cli.firstPage('queue', 10);
    assert.ok(again.asOf);
    assert.deepEqual(ids(again.envelopes), [b]);
    assert.ok((await cli.firstPage('queue', 500)).asOf === undefined, 'a page larger than the summary is read from disk');
  }));
