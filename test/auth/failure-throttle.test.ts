/**
 * The login back-off as data, with a fake clock: per address, per user name, per (user name, address) pair; short
 * blocks; a pair that logged in before is slowed only by its own short back-off, so a guesser behind the same
 * NAT address cannot lock the device out, while new names from that address and guesses of that user name from
 * other addresses stay blocked.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FailureThrottle } from '../../src/auth/failure-throttle.js';

const SHARED = '192.0.2.10';

function clock() {
  let now = 1_000_000;
  return { now: () => now, advance: (ms: number) => void (now += ms) };
}

test('defaults: 10 free failures per address, then 1 s doubling, never more than a minute', () => {
  const c = clock();
  const t = new FailureThrottle({ now: c.now });
  for (let i = 0; i < 10; i += 1) t.failed('198.51.100.1');
  assert.equal(t.blockedFor('198.51.100.1'), 0);
  t.failed('198.51.100.1');
  assert.equal(t.blockedFor('198.51.100.1'), 1000);
  for (let i = 0; i < 40; i += 1) t.failed('198.51.100.1');
  assert.equal(t.blockedFor('198.51.100.1'), 60_000, 'capped at a minute, not 15');
  c.advance(60_001);
  assert.equal(t.blockedFor('198.51.100.1'), 0);
});

test('a guessing burst from a shared address: the known device logs in within the pair\'s short back-off', () => {
  const c = clock();
  const t = new FailureThrottle({ now: c.now });
  t.succeeded(SHARED, 'mfp'); // the printer has logged in before
  for (let i = 0; i < 50; i += 1) t.failed(SHARED, i % 2 ? 'mfp' : `guess${i}`);
  assert.ok(t.blockedFor(SHARED, 'newcomer') >= 30_000, 'another name from that address is held back');
  const wait = t.blockedFor(SHARED, 'mfp');
  assert.ok(wait > 0 && wait <= 30_000, `the known pair waits at most 30 s (waits ${wait} ms)`);
  c.advance(wait);
  assert.equal(t.blockedFor(SHARED, 'mfp'), 0, 'then it may try: the correct password gets through');
  t.succeeded(SHARED, 'mfp');
  assert.equal(t.blockedFor(SHARED, 'mfp'), 0);
});

test('one user name guessed from many addresses is blocked everywhere except where it logged in before', () => {
  const c = clock();
  const t = new FailureThrottle({ now: c.now });
  t.succeeded('10.0.0.5', 'mfp');
  for (let i = 0; i < 30; i += 1) t.failed(`203.0.113.${i}`, 'mfp');
  assert.ok(t.blockedFor('203.0.113.200', 'mfp') > 0, 'a fresh address guessing mfp is refused');
  assert.equal(t.blockedFor('203.0.113.200', 'other'), 0, 'other user names from there are not');
  assert.equal(t.blockedFor('10.0.0.5', 'mfp'), 0, 'the device at its own address is not');
});

test('unknown user names are tracked like known ones, and memory stays bounded', () => {
  const c = clock();
  const t = new FailureThrottle({ now: c.now, maxTracked: 100, perUser: { freeFailures: 1 } });
  for (let i = 0; i < 10_000; i += 1) t.failed(`198.51.100.${i % 250}`, `nobody${i}`);
  t.failed('198.51.100.1', 'nobody9999');
  assert.ok(t.blockedFor('198.51.100.2', 'nobody9999') > 0);
  assert.equal(t.blockedFor('198.51.100.2', 'nobody1'), 0, 'evicted: the table holds at most maxTracked keys');
});
