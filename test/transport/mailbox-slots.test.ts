/**
 * The per-mailbox cap on upstream IMAP/POP3 sessions: waiting logins are served first come first served, the
 * wait and the queue are bounded and end in the protocol's "try later" reply, and a slot comes back when the
 * upstream socket closes (a real socket here) or the login fails.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, connect, type Socket } from 'node:net';
import { RelayError, isRelayError } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import { MailboxSlots } from '../../src/transport/mailbox-slots.js';

const log = createLogger({ level: 'silent' });

test('over the cap, logins wait and get freed slots in the order they came; counts follow', async () => {
  const slots = new MailboxSlots({ maxPerMailbox: 2, waitSeconds: 30, maxWaitingPerMailbox: 5 });
  const first = await slots.acquire('scanner', 'imap', log);
  const second = await slots.acquire('scanner', 'pop3', log);
  const order: string[] = [];
  const third = slots.acquire('scanner', 'imap', log).then((r) => (order.push('third'), r));
  const fourth = slots.acquire('scanner', 'imap', log).then((r) => (order.push('fourth'), r));
  assert.deepEqual(slots.counts(), [{ account: 'scanner', held: { imap: 1, pop3: 1 }, waiting: 2 }]);
  // Another mailbox is not held up by this one.
  const other = await slots.acquire('frontdesk', 'imap', log);
  second();
  second(); // idempotent: a second call frees nothing more
  const releaseThird = await third;
  assert.deepEqual(order, ['third']);
  assert.deepEqual(slots.counts().find((c) => c.account === 'scanner'), { account: 'scanner', held: { imap: 2, pop3: 0 }, waiting: 1 });
  first();
  (await fourth)();
  releaseThird();
  other();
  assert.deepEqual(order, ['third', 'fourth']);
  assert.deepEqual(slots.counts(), [], 'idle mailboxes leave no entry behind');
});

test('no slot within waitSeconds, or a full queue: MAILBOX_BUSY with NO [UNAVAILABLE] / -ERR [IN-USE], counted by reason', async () => {
  const slots = new MailboxSlots({ maxPerMailbox: 1, waitSeconds: 0.05, maxWaitingPerMailbox: 1 });
  const held = await slots.acquire('scanner', 'imap', log);
  const waiting = slots.acquire('scanner', 'pop3', log);
  await assert.rejects(slots.acquire('scanner', 'imap', log), (err: unknown) => {
    assert.ok(isRelayError(err, 'MAILBOX_BUSY'));
    assert.equal(err.replyFor('imap'), 'NO [UNAVAILABLE] Too many sessions on this mailbox, try again later');
    return true;
  });
  await assert.rejects(waiting, (err: unknown) => {
    assert.ok(isRelayError(err, 'MAILBOX_BUSY'));
    assert.equal(err.replyFor('pop3'), '-ERR [IN-USE] Too many sessions on this mailbox, try again later');
    return true;
  });
  assert.deepEqual(slots.counts(), [{ account: 'scanner', held: { imap: 1, pop3: 0 }, waiting: 0 }], 'a timed-out waiter leaves the queue');
  assert.deepEqual(
    slots.refusedCounts().sort((a, b) => a.reason.localeCompare(b.reason)),
    [
      { account: 'scanner', protocol: 'imap', reason: 'queue-full', count: 1 },
      { account: 'scanner', protocol: 'pop3', reason: 'wait-timeout', count: 1 },
    ],
  );
  held();
  assert.deepEqual(slots.counts(), []);
});

test('hold(): the slot is given back when the upstream socket closes, and at once when the login fails', async () => {
  const server = createServer((s) => s.on('error', () => undefined));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  const slots = new MailboxSlots({ maxPerMailbox: 1, waitSeconds: 5, maxWaitingPerMailbox: 1 });
  try {
    const open = async () => {
      const socket: Socket = connect({ host: '127.0.0.1', port });
      await once(socket, 'connect');
      return { socket };
    };
    const session = await slots.hold('scanner', 'imap', log, open);
    assert.deepEqual(slots.counts(), [{ account: 'scanner', held: { imap: 1, pop3: 0 }, waiting: 0 }]);
    const next = slots.hold('scanner', 'imap', log, open); // waits for the first one's socket
    session.socket.destroy();
    const second = await next;
    assert.deepEqual(slots.counts(), [{ account: 'scanner', held: { imap: 1, pop3: 0 }, waiting: 0 }]);
    second.socket.destroy();
    await once(second.socket, 'close');
    assert.deepEqual(slots.counts(), []);
    await assert.rejects(slots.hold('scanner', 'pop3', log, () => Promise.reject(new RelayError('UPSTREAM_UNAVAILABLE'))), (err) => isRelayError(err, 'UPSTREAM_UNAVAILABLE'));
    assert.deepEqual(slots.counts(), [], 'a failed upstream login holds no slot');
  } finally {
    server.close();
  }
});
