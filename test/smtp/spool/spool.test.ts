import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { isRelayError } from '../../../src/errors.js';
import { Spool } from '../../../src/smtp/spool/spool.js';
import { isMessageId, newMessageId } from '../../../src/smtp/spool/message-id.js';
import { nextStatus, type NewEnvelope } from '../../../src/smtp/spool/envelope.js';

const envelope: NewEnvelope = {
  device: 'floor2-mfp',
  account: 'scanner',
  mailFrom: 'scanner@contoso.example',
  rcptTo: ['alice@contoso.example', 'bob@fabrikam.example'],
  remoteAddress: '192.168.10.50',
  smtpUtf8: false,
};

const message = (body = 'scan attached') => Buffer.from(`From: scanner@contoso.example\r\nTo: alice@contoso.example\r\nSubject: Scan\r\n\r\n${body}\r\n`);

async function withStateDir(run: (stateDir: string) => Promise<void>): Promise<void> {
  const stateDir = await mkdtemp(join(tmpdir(), 'xoauth2-relay-spool-'));
  try {
    await run(stateDir);
  } finally {
    await rm(stateDir, { recursive: true, force: true });
  }
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

test('commit writes the message and its envelope into queue/, private, and list/get/openMessage read them back', () =>
  withStateDir(async (stateDir) => {
    const spool = await Spool.open(stateDir);
    const bytes = message();
    const { id, size } = await spool.commit(envelope, Readable.from([bytes.subarray(0, 10), bytes.subarray(10)]));
    assert.ok(isMessageId(id));
    assert.equal(size, bytes.length);

    const queue = join(stateDir, 'spool', 'queue');
    assert.deepEqual((await readdir(queue)).sort(), [`${id}.eml`, `${id}.json`]);
    assert.deepEqual(await readFile(join(queue, `${id}.eml`)), bytes);
    assert.equal((await stat(join(queue, `${id}.eml`))).mode & 0o777, 0o600);
    assert.equal((await stat(join(stateDir, 'spool'))).mode & 0o777, 0o700);
    assert.deepEqual(await readdir(join(stateDir, 'spool', 'tmp')), []);

    const [listed] = await spool.list();
    assert.equal(listed?.id, id);
    assert.deepEqual(listed?.rcptTo, envelope.rcptTo);
    assert.equal(listed?.size, bytes.length);
    assert.equal(listed?.state.status, 'queued');
    assert.equal(listed?.state.attempts, 0);
    assert.equal(listed?.state.since, listed?.receivedAt);
    assert.deepEqual(await spool.get(id), listed);

    const chunks: Buffer[] = [];
    for await (const chunk of spool.openMessage(id)) chunks.push(chunk as Buffer);
    assert.equal(sha256(Buffer.concat(chunks)), sha256(bytes));
  }));

test('a message over the byte limit is refused with MESSAGE_TOO_LARGE, leaves no file, and its stream is drained for the SMTP reply', () =>
  withStateDir(async (stateDir) => {
    const spool = await Spool.open(stateDir, { maxMessageBytes: 64 * 1024 });
    let ended = false;
    const big = Readable.from((function* () {
      for (let i = 0; i < 40; i += 1) yield Buffer.alloc(4096, 0x41);
    })());
    big.on('end', () => (ended = true));
    await assert.rejects(spool.commit(envelope, big), (err) => isRelayError(err, 'MESSAGE_TOO_LARGE'));
    await new Promise((r) => setTimeout(r, 50));
    assert.ok(ended, 'the rest of the message was read (smtp-server needs the final dot before it replies)');
    assert.deepEqual(await readdir(join(stateDir, 'spool', 'tmp')), []);
    assert.deepEqual(await readdir(join(stateDir, 'spool', 'queue')), []);

    // A per-commit limit overrides the spool's default; exactly at the limit is fine.
    const exact = Buffer.alloc(1000, 0x42);
    await assert.rejects(spool.commit(envelope, Readable.from([exact]), { maxBytes: 999 }), (err) => isRelayError(err, 'MESSAGE_TOO_LARGE'));
    assert.equal((await spool.commit(envelope, Readable.from([exact]), { maxBytes: 1000 })).size, 1000);
    assert.equal((await spool.list()).length, 1);
  }));

test('a failing source stream leaves no file and rejects with its own error', () =>
  withStateDir(async (stateDir) => {
    const spool = await Spool.open(stateDir);
    const broken = new Readable({ read() {} });
    broken.push(Buffer.from('half a message'));
    setTimeout(() => broken.destroy(new Error('device went away')), 10);
    await assert.rejects(spool.commit(envelope, broken), /device went away/);
    assert.deepEqual(await readdir(join(stateDir, 'spool', 'tmp')), []);
    assert.deepEqual(await readdir(join(stateDir, 'spool', 'queue')), []);
  }));

test('opening with recover removes what a crash left behind and keeps every committed message', () =>
  withStateDir(async (stateDir) => {
    const spool = await Spool.open(stateDir);
    const kept = await spool.commit(envelope, Readable.from([message('kept')]));
    const buried = await spool.commit(envelope, Readable.from([message('buried')]));
    const root = join(stateDir, 'spool');
    // Crash leftovers: a half-received message, bytes renamed but no envelope yet, an envelope whose message was
    // dropped, a replaceFileDurably temp file, and a bury interrupted after dead/ got its copy.
    await writeFile(join(root, 'tmp', `${newMessageId()}.eml`), 'half a messa');
    const orphanId = newMessageId();
    await writeFile(join(root, 'queue', `${orphanId}.eml`), message('never acknowledged'));
    const brokenId = newMessageId();
    await writeFile(join(root, 'queue', `${brokenId}.json`), JSON.stringify({ id: brokenId, state: { status: 'queued' } }));
    await writeFile(join(root, 'queue', `.${kept.id}.json.123-abcdef.tmp`), '{"id":');
    await spool.bury(buried.id, { code: 'UPSTREAM_REJECTED', reason: 'test', reply: '550 no' });
    const deadJson = await readFile(join(root, 'dead', `${buried.id}.json`), 'utf8');
    await writeFile(join(root, 'queue', `${buried.id}.eml`), message('buried'));
    await writeFile(join(root, 'queue', `${buried.id}.json`), deadJson.replace('"status": "dead"', '"status": "queued"').replace(/"updatedAt": "[^"]+"/, '"updatedAt": "2000-01-01T00:00:00.000Z"'));

    // The queue CLI opens without recovery: it must not touch anything.
    await Spool.open(stateDir);
    assert.equal((await readdir(join(root, 'tmp'))).length, 1);

    const reopened = await Spool.open(stateDir, { recover: true });
    assert.deepEqual(reopened.recovery, { tmpRemoved: 1, orphansRemoved: 3, duplicatesResolved: 1 });
    assert.deepEqual(await readdir(join(root, 'tmp')), []);
    assert.deepEqual((await readdir(join(root, 'queue'))).sort(), [`${kept.id}.eml`, `${kept.id}.json`]);
    assert.deepEqual((await readdir(join(root, 'dead'))).sort(), [`${buried.id}.eml`, `${buried.id}.json`]);
    assert.deepEqual(await readFile(join(root, 'queue', `${kept.id}.eml`)), message('kept'));
  }));

test('bury moves a message to dead/ with its verdict; retry brings it back with a fresh count; drop deletes it', () =>
  withStateDir(async (stateDir) => {
    let nowMs = Date.parse('2030-01-01T00:00:00Z');
    const spool = await Spool.open(stateDir, { now: () => nowMs });
    const { id } = await spool.commit(envelope, Readable.from([message()]));
    const queued = await spool.get(id);
    assert.ok(queued);
    await spool.update(id, { ...queued.state, status: 'deferred', attempts: 4, lastReply: '451 4.7.0 later', lastReason: 'x', lastCode: 'UPSTREAM_TEMPORARY' });

    nowMs += 3_600_000;
    assert.equal(await spool.bury(id, { code: 'UPSTREAM_SEND_AS_DENIED', reason: 'grant Send As', reply: '550 5.7.60 SMTP; Client does not have permissions to send as this sender' }), true);
    assert.deepEqual(await spool.list(), []);
    const [dead] = await spool.listDead();
    assert.equal(dead?.state.status, 'dead');
    assert.equal(dead?.state.lastCode, 'UPSTREAM_SEND_AS_DENIED');
    assert.match(dead?.state.lastReply ?? '', /5\.7\.60/);
    assert.deepEqual(await readFile(spool.messagePath(id, 'dead')), message());
    assert.equal(await spool.bury(id, { code: 'UPSTREAM_REJECTED', reason: 'again', reply: null }), false, 'not queued any more');

    nowMs += 3_600_000;
    assert.equal(await spool.retry(id), 'resurrected');
    assert.deepEqual(await spool.listDead(), []);
    const back = await spool.get(id);
    assert.equal(back?.state.status, 'queued');
    assert.equal(back?.state.attempts, 0);
    assert.equal(back?.state.since, new Date(nowMs).toISOString(), 'maxAgeHours counts again from the retry');
    assert.equal(back?.state.nextAttemptAt, new Date(nowMs).toISOString());

    assert.equal(await spool.drop(id), true);
    assert.equal(await spool.get(id), null);
    assert.equal(await spool.drop(id), false);
    assert.equal(await spool.retry(id), null);
    assert.equal(await spool.update(id, back!.state), false, 'a late update never brings back a dropped message');
    assert.deepEqual(await readdir(join(stateDir, 'spool', 'queue')), []);
  }));

test('buryRecipients puts a copy for the refused recipients in dead/, sharing the bytes, and the message stays queued', () =>
  withStateDir(async (stateDir) => {
    const spool = await Spool.open(stateDir);
    const { id } = await spool.commit(envelope, Readable.from([message()]));
    const copyId = await spool.buryRecipients(id, ['bob@fabrikam.example'], { code: 'UPSTREAM_RECIPIENT_REJECTED', reason: 'fix the address', reply: '550 5.1.1 User unknown' });
    assert.ok(copyId && copyId !== id);
    const copy = await spool.get(copyId);
    assert.equal(copy?.state.status, 'dead');
    assert.deepEqual(copy?.rcptTo, ['bob@fabrikam.example']);
    assert.equal(copy?.splitFrom, id);
    assert.equal((await stat(spool.messagePath(copyId, 'dead'))).ino, (await stat(spool.messagePath(id))).ino, 'a hard link, not a copy');
    assert.equal((await spool.get(id))?.state.status, 'queued');
    assert.equal(await spool.remove(id), true);
    assert.deepEqual(await readFile(spool.messagePath(copyId, 'dead')), message(), 'the dead copy keeps its bytes');
  }));

test('ids are unique, sort by time, and nothing else passes as an id', async () => {
  const t = Date.parse('2026-03-01T12:00:00Z');
  const ids = Array.from({ length: 2000 }, (_, i) => newMessageId(t + Math.floor(i / 100)));
  assert.equal(new Set(ids).size, ids.length);
  const byTime = ids.map((id, i) => ({ id, t: t + Math.floor(i / 100) }));
  const sorted = [...byTime].sort((a, b) => (a.id < b.id ? -1 : 1));
  for (let i = 1; i < sorted.length; i += 1) assert.ok(sorted[i]!.t >= sorted[i - 1]!.t);
  assert.ok(ids.every(isMessageId));
  for (const bad of ['../../etc/passwd', '', 'x'.repeat(20), `${ids[0]}.json`, `${ids[0]}/`]) assert.equal(isMessageId(bad), false);
});

test('operations given a malformed id find nothing and touch no path', () =>
  withStateDir(async (stateDir) => {
    const spool = await Spool.open(stateDir);
    assert.equal(await spool.get('../queue/x'), null);
    assert.equal(await spool.drop('../../tokens'), false);
    assert.equal(await spool.retry('..'), null);
    assert.throws(() => spool.openMessage('../x'), /not a spool message id/);
  }));

test('the status table allows exactly the documented moves', () => {
  assert.equal(nextStatus('queued', 'temporary-failure'), 'deferred');
  assert.equal(nextStatus('deferred', 'token-unavailable'), 'held');
  assert.equal(nextStatus('held', 'token-available'), 'queued');
  assert.equal(nextStatus('held', 'temporary-failure'), null, 'a held message is not attempted');
  assert.equal(nextStatus('dead', 'delivered'), null, 'nothing leaves dead/ but an operator');
  assert.equal(nextStatus('dead', 'operator-retry'), 'queued');
  for (const status of ['queued', 'deferred', 'held', 'dead'] as const) assert.equal(nextStatus(status, 'operator-drop'), 'removed');
  for (const status of ['queued', 'deferred', 'held'] as const) assert.equal(nextStatus(status, 'expired'), 'dead');
});

test('a corrupt envelope file (hand-edited, disk trouble) is skipped by list, not fatal', () =>
  withStateDir(async (stateDir) => {
    const spool = await Spool.open(stateDir);
    const { id } = await spool.commit(envelope, Readable.from([message()]));
    const corrupt = newMessageId();
    await writeFile(join(stateDir, 'spool', 'queue', `${corrupt}.eml`), 'x');
    for (const text of ['{"id": "trunc', '[]', 'null', '{"id": 5}']) {
      await writeFile(join(stateDir, 'spool', 'queue', `${corrupt}.json`), text);
      assert.deepEqual((await spool.list()).map((e) => e.id), [id], text);
      assert.equal(await spool.get(corrupt), null);
    }
  }));

test('a commit the disk refuses fails with SPOOL_WRITE_FAILED (the device gets a 4xx and retries) and leaves nothing', () =>
  withStateDir(async (stateDir) => {
    const spool = await Spool.open(stateDir);
    const queue = join(stateDir, 'spool', 'queue');
    await rm(queue, { recursive: true });
    await writeFile(queue, 'not a directory'); // rename into queue/ now fails (ENOTDIR), whoever runs the test
    await assert.rejects(spool.commit(envelope, Readable.from([message()])), (err) => isRelayError(err, 'SPOOL_WRITE_FAILED') && err.replyFor('smtp').startsWith('452 '));
    assert.deepEqual(await readdir(join(stateDir, 'spool', 'tmp')), []);
    await assert.rejects(spool.list(), (err) => isRelayError(err, 'SPOOL_READ_FAILED'));
  }));

test('a commit costs two data fsyncs and one fsync of queue/, which concurrent commits share (the fsync counter)', () =>
  withStateDir(async (stateDir) => {
    const spool = await Spool.open(stateDir);
    await spool.commit(envelope, Readable.from([message('alone')]));
    assert.deepEqual({ files: spool.fsyncs.files, directories: spool.fsyncs.directories }, { files: 2, directories: 1 });
    await Promise.all(Array.from({ length: 20 }, (_, i) => spool.commit(envelope, Readable.from([message(`together ${i}`)]))));
    assert.equal(spool.fsyncs.files, 2 + 40, 'message and envelope of each');
    assert.ok(spool.fsyncs.directories < 1 + 20, `queue/ synced ${spool.fsyncs.directories - 1} times for 20 concurrent commits`);
    assert.equal((await spool.list()).length, 21);
  }));
