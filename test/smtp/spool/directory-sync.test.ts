/**
 * Group commit of directory fsyncs: a caller is only released by an fsync that started after it asked, and
 * callers arriving during one fsync share the next. The fsync is a controllable stand-in here so the order is
 * exact; the real fsync runs in the spool tests.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DirectorySync, FsyncCounter } from '../../../src/smtp/spool/directory-sync.js';

function controlledFsync() {
  const started: Array<{ dir: string; finish: (err?: Error) => void }> = [];
  const fsync = (dir: string) =>
    new Promise<void>((resolve, reject) => {
      started.push({ dir, finish: (err) => (err ? reject(err) : resolve()) });
    });
  return { started, fsync };
}

const tick = () => new Promise((r) => setImmediate(r));

test('callers during a running fsync share one next fsync, which starts only when the running one ends', async () => {
  const counter = new FsyncCounter();
  const { started, fsync } = controlledFsync();
  const sync = new DirectorySync(counter, fsync);
  const released: string[] = [];
  const first = sync.sync('/q').then(() => released.push('first'));
  assert.equal(started.length, 1, 'an idle directory is synced at once');
  const later = ['a', 'b', 'c'].map((name) => sync.sync('/q').then(() => released.push(name)));
  await tick();
  assert.equal(started.length, 1, 'no second fsync while the first runs');
  started[0]!.finish();
  await first;
  await tick();
  assert.deepEqual(released, ['first'], 'the later callers are not released by an fsync that started before them');
  assert.equal(started.length, 2, 'one fsync for the three that waited');
  started[1]!.finish();
  await Promise.all(later);
  assert.deepEqual(released, ['first', 'a', 'b', 'c']);
  assert.equal(counter.directories, 2);
});

test('directories are independent, a failed fsync rejects only its own callers, and the next one still runs', async () => {
  const counter = new FsyncCounter();
  const { started, fsync } = controlledFsync();
  const sync = new DirectorySync(counter, fsync);
  const q1 = sync.sync('/q');
  const d1 = sync.sync('/d');
  assert.deepEqual(started.map((s) => s.dir), ['/q', '/d']);
  const q2 = sync.sync('/q');
  started[0]!.finish(new Error('EIO'));
  await assert.rejects(q1, /EIO/);
  await tick();
  assert.equal(started.length, 3);
  started[2]!.finish();
  started[1]!.finish();
  await Promise.all([q2, d1]);
  assert.equal(counter.directories, 3);
});

test('with the real fsync, 50 concurrent callers on one directory cost far fewer than 50 fsyncs', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'xoauth2-relay-dirsync-'));
  try {
    const counter = new FsyncCounter();
    const sync = new DirectorySync(counter);
    await Promise.all(Array.from({ length: 50 }, () => sync.sync(dir)));
    assert.equal(counter.directories, 2, 'the first caller\'s fsync, then one shared by the 49 that came during it');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
