import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { LatestWinsQueue } from '../../../src/auth/store/latest-wins-queue.js';

test('writes arriving while one runs collapse into the last; their callers are answered after it', async () => {
  const queue = new LatestWinsQueue();
  const written: string[] = [];
  const answered: string[] = [];
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let started!: () => void;
  const running = new Promise<void>((resolve) => (started = resolve));
  const write = (value: string) => async () => {
    started();
    await gate;
    written.push(value);
  };
  const submit = (value: string) =>
    queue.submit('k', write(value)).then(() => answered.push(`${value} after ${written.join(',')}`));
  // Calls in one tick collapse before any starts.
  const burst = ['a', 'b'].map(submit);
  await running; // 'b' is now running and held at the gate
  const calls = [...burst, ...['c', 'd', 'e'].map(submit)];
  release();
  await Promise.all(calls);
  assert.deepEqual(written, ['b', 'e']);
  assert.deepEqual(answered, ['a after b', 'b after b', 'c after b,e', 'd after b,e', 'e after b,e']);
});

test('operations on different keys do not wait for each other', async () => {
  const queue = new LatestWinsQueue();
  let slowDone = false;
  const slow = queue.submit('slow', async () => {
    await sleep(50);
    slowDone = true;
  });
  await queue.submit('fast', async () => undefined);
  assert.equal(slowDone, false);
  await slow;
});

test('a failure reaches the callers of that operation only', async () => {
  const queue = new LatestWinsQueue();
  let started!: () => void;
  const running = new Promise<void>((resolve) => (started = resolve));
  const failing = queue.submit('k', async () => {
    started();
    await sleep(5);
    throw new Error('disk full');
  });
  await running; // so the next one queues behind it instead of replacing it
  const next = queue.submit('k', async () => undefined);
  await assert.rejects(failing, /disk full/);
  await next;
  await queue.settled('k');
});

test('settled waits for what was submitted before it', async () => {
  const queue = new LatestWinsQueue();
  let done = false;
  void queue.submit('k', async () => {
    await sleep(10);
    done = true;
  });
  await queue.settled('k');
  assert.equal(done, true);
  await queue.settled('never-used');
});
