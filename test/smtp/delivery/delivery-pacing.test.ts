import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { MailboxPacing } from '../../../src/smtp/delivery/mailbox-pacing.js';
import { retryDelayMs } from '../../../src/smtp/delivery/retry-schedule.js';
import { createUpstreamTls, type UpstreamTls } from '../../support/scripted-upstream.js';
import { startHarness } from './harness.js';

let tls: UpstreamTls;
before(async () => {
  tls = await createUpstreamTls();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('10 messages for one mailbox never use more than maxConnectionsPerMailbox (3) connections, and reuse them', async () => {
  const h = await startHarness({ tls, limits: { maxConnectionsPerMailbox: 3 }, script: { data: () => sleep(150).then(() => undefined) }, start: false });
  try {
    const ids: string[] = [];
    for (let i = 0; i < 10; i += 1) ids.push(await h.submit({ body: `page ${i}` }));
    await h.worker.start();
    await h.upstream.waitForMessages(10, 20_000);
    assert.equal(h.upstream.connections.maxOpen, 3, 'the limit is reached and never passed');
    assert.equal(h.upstream.connections.total, 3, 'three connections carry the ten messages');
    // Delivered in arrival order as far as concurrency allows: the first three went first.
    const firstThree = h.events.filter((e) => e.name === 'delivered').slice(0, 3).map((e) => e.event.id);
    assert.ok(firstThree.every((id) => ids.slice(0, 4).includes(id)));
  } finally {
    await h.close();
  }
});

test('the per-minute limit paces: with 5 per window, 8 messages do not all go in the first window', async (t) => {
  const windowMs = 1500;
  const h = await startHarness({ tls, limits: { maxMessagesPerMinute: 5 }, worker: { rateWindowMs: windowMs }, start: false });
  try {
    for (let i = 0; i < 8; i += 1) await h.submit({ body: `page ${i}` });
    await h.worker.start();
    await h.upstream.waitForMessages(8, 20_000);
    // Counted at the upstream: when each MAIL FROM arrived, on whichever (reused) connection.
    const sent = h.upstream.commands.filter((c) => c.command === 'MAIL').map((c) => c.at);
    assert.equal(sent.length, 8);
    const first = sent[0]!;
    // 50 ms of slack for the RSET and MAIL FROM round trips after a send starts.
    const inFirstWindow = sent.filter((at) => at < first + windowMs - 50).length;
    assert.equal(inFirstWindow, 5);
    assert.ok(sent[5]! >= first + windowMs - 50, `6th send ${sent[5]! - first} ms after the first`);
    assert.ok(h.upstream.connections.total <= 3, `${h.upstream.connections.total} connections`);
    t.diagnostic(`sends at +${sent.map((at) => at - first).join(', +')} ms over ${h.upstream.connections.total} connection(s)`);
  } finally {
    await h.close();
  }
});

test('mailboxes are paced apart: one at its limit does not hold back another', async () => {
  const h = await startHarness({ tls, limits: { maxMessagesPerMinute: 1 }, worker: { rateWindowMs: 60_000 }, start: false });
  try {
    const scanner = [await h.submit({ account: 'scanner' }), await h.submit({ account: 'scanner' })];
    const copier = await h.submit({ account: 'copier' });
    await h.worker.start();
    await h.waitForEvent('delivered', copier, 5000);
    await h.waitForEvent('delivered', scanner[0]!, 5000);
    await sleep(300);
    assert.ok(!h.events.some((e) => e.event.id === scanner[1]), 'the second scanner message waits for the next minute');
    assert.equal((await h.spool.get(scanner[1]!))?.state.status, 'queued');
  } finally {
    await h.close();
  }
});

test('MailboxPacing: sliding window and connection limit per mailbox', () => {
  const pacing = new MailboxPacing({ maxConnections: 2, maxPerWindow: 3, windowMs: 1000 });
  assert.ok(pacing.canStart('a', 0));
  pacing.start('a', 0);
  pacing.start('a', 100);
  assert.equal(pacing.canStart('a', 200), false, 'two running');
  assert.ok(pacing.canStart('b', 200), 'another mailbox is free');
  pacing.finish('a');
  pacing.start('a', 300);
  pacing.finish('a');
  pacing.finish('a');
  assert.equal(pacing.canStart('a', 400), false, 'three started within the window');
  assert.equal(pacing.windowOpensAt('a', 400), 1000);
  assert.ok(pacing.canStart('a', 1000), 'the first start left the window');
  assert.equal(pacing.windowOpensAt('b', 1000), null);
});

test('MailboxPacing: a send counts from its real submit time; one whose submit would overfill the window waits', () => {
  const pacing = new MailboxPacing({ maxConnections: 3, maxPerWindow: 2, windowMs: 1000 });
  pacing.start('a', 0); // A: a new connection, TLS and AUTH first
  pacing.start('a', 5); // B: a reused connection, submits at once
  assert.equal(pacing.sendableAt('a', 5, 5), 5);
  pacing.restamp('a', 5, 5);
  pacing.finish('a');
  assert.equal(pacing.canStart('a', 999), false, 'two starts in the window');
  assert.equal(pacing.canStart('a', 1001), true, "A's start left the window, A has not submitted yet");
  pacing.start('a', 1001); // C
  pacing.restamp('a', 1001, 1001);
  // A submits only now: B (5) and C (1001) are in its window, so it waits until B's stamp leaves.
  assert.equal(pacing.sendableAt('a', 0, 1002), 1005);
  assert.equal(pacing.sendableAt('a', 0, 1005), 1005);
  pacing.restamp('a', 0, 1005);
  assert.equal(pacing.canStart('a', 1500), false, 'C and A count from their submits');
  assert.equal(pacing.windowOpensAt('a', 1500), 2001);
});

test('retry delays double from retryInitialSeconds up to retryMaxSeconds, with ±25 % jitter', () => {
  const settings = { retryInitialSeconds: 60, retryMaxSeconds: 3600 };
  const mid = () => 0.5;
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 8, 50].map((n) => retryDelayMs(n, settings, mid)), [60_000, 120_000, 240_000, 480_000, 960_000, 1_920_000, 3_600_000, 3_600_000, 3_600_000]);
  assert.equal(retryDelayMs(1, settings, () => 0), 45_000);
  assert.equal(retryDelayMs(1, settings, () => 0.999999), 75_000);
  assert.equal(retryDelayMs(10, settings, () => 1), 3_600_000, 'jitter never passes the maximum');
});
