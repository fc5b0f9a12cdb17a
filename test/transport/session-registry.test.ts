/**
 * The session registry: counts, polite shutdown first, destroy after the time is up, per-listener draining.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SessionRegistry, type RegisteredSession, type SessionPhase } from '../../src/transport/session-registry.js';

function fakeSession(id: string, phase: SessionPhase, listener = 'l1', endsOnShutdown = phase === 'pre-auth'): RegisteredSession & { calls: string[] } {
  let end!: () => void;
  const closed = new Promise<void>((resolve) => (end = resolve));
  const calls: string[] = [];
  return {
    id,
    protocol: 'imap',
    listener,
    remote: '127.0.0.1',
    phase,
    device: null,
    account: null,
    startedAt: new Date(),
    closed,
    calls,
    shutdown() {
      calls.push('shutdown');
      if (endsOnShutdown) end();
    },
    destroy() {
      calls.push('destroy');
      end();
    },
  };
}

test('drain: pre-login sessions end politely, spliced ones are destroyed when the time is up', async () => {
  const registry = new SessionRegistry();
  const a = fakeSession('a', 'pre-auth');
  const b = fakeSession('b', 'spliced');
  registry.add(a);
  registry.add(b);
  assert.equal(registry.count(), 2);
  assert.equal(registry.count('pop3'), 0);
  const started = Date.now();
  assert.deepEqual(await registry.drain(150), { ended: 1, forced: 1 });
  assert.ok(Date.now() - started >= 140);
  assert.deepEqual(a.calls, ['shutdown']);
  assert.deepEqual(b.calls, ['shutdown', 'destroy']);
  assert.equal(registry.count(), 0);
});

test('drain resolves as soon as every session ended; only the selected listener is drained', async () => {
  const registry = new SessionRegistry();
  const mine = fakeSession('a', 'pre-auth', 'l1');
  const other = fakeSession('b', 'pre-auth', 'l2');
  registry.add(mine);
  registry.add(other);
  const started = Date.now();
  assert.deepEqual(await registry.drain(10_000, (s) => s.listener === 'l1'), { ended: 1, forced: 0 });
  assert.ok(Date.now() - started < 1000);
  assert.deepEqual(other.calls, []);
  assert.deepEqual(registry.list().map((s) => s.id), ['b']);
});
