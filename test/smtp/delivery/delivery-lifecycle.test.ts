import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '../../../src/log.js';
import { DeliveryWorker } from '../../../src/smtp/delivery/delivery-worker.js';
import { Spool } from '../../../src/smtp/spool/spool.js';
import { createUpstreamTls, type UpstreamTls } from '../../support/scripted-upstream.js';
import { FakeTokens } from './fake-tokens.js';
import { startHarness } from './harness.js';

let tls: UpstreamTls;
before(async () => {
  tls = await createUpstreamTls();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('a commit in this process starts delivery at once, without waiting for the rescan timer', async () => {
  const h = await startHarness({ tls, worker: { rescanIntervalMs: 60_000 } });
  try {
    const started = Date.now();
    const id = await h.submit();
    await h.waitForEvent('delivered', id, 3000);
    assert.ok(Date.now() - started < 3000);
  } finally {
    await h.close();
  }
});

test('changes another process (the queue CLI) makes are noticed: a drop is never sent, a retry goes at once', async () => {
  const h = await startHarness({ tls, limits: { retryInitialSeconds: 3600, retryMaxSeconds: 3600 }, script: { data: (_m, n) => (n === 1 ? { code: 451, message: '4.7.0 later' } : undefined) } });
  try {
    const cli = await Spool.open(h.stateDir, { create: false });
    const retried = await h.submit({ body: 'retried' });
    await h.waitForEvent('deferred', retried);
    assert.equal(await cli.retry(retried), 'queued');
    await h.waitForEvent('delivered', retried, 3000); // the next rescan (200 ms here) sees it due now

    h.tokens.setState('scanner', 'not-acquired');
    const dropped = await h.submit({ body: 'dropped' });
    await h.waitForEvent('held', dropped);
    assert.equal(await cli.drop(dropped), true);
    await sleep(400);
    h.tokens.setState('scanner', 'acquired');
    await sleep(400);
    assert.equal(h.upstream.received.length, 1, 'the dropped message never left');
    assert.equal(await h.spool.get(dropped), null, 'and it did not come back');
  } finally {
    await h.close();
  }
});

test('a held message whose account got its token while the relay was down is released at start', async () => {
  const tokens = new FakeTokens('not-acquired');
  const first = await startHarness({ tls, tokens });
  const id = await first.submit();
  await first.waitForEvent('held', id);
  await first.worker.stop(1000);

  tokens.setState('scanner', 'acquired'); // no worker listening: as if the sign-in happened while stopped
  const restarted = new DeliveryWorker({
    spool: first.spool,
    tokens,
    upstream: { host: '127.0.0.1', port: first.upstream.port },
    extraCaPem: first.upstream.caCertPem,
    limits: { maxConnectionsPerMailbox: 3, maxMessagesPerMinute: 30, retryInitialSeconds: 0.1, retryMaxSeconds: 1, maxAgeHours: 72 },
    mailboxOf: () => 'scanner@contoso.example',
    logger: createLogger({ level: 'silent' }),
  });
  try {
    await restarted.start();
    await first.upstream.waitForMessages(1, 5000);
  } finally {
    await restarted.stop(1000);
    await first.close();
  }
});

test('stop() waits for a send in flight and reports whether it finished within the bound', async () => {
  const h = await startHarness({ tls, script: { data: () => sleep(600).then(() => undefined) } });
  try {
    const slow = await h.submit({ body: 'slow' });
    await waitUntil(() => h.worker.inFlight === 1);
    assert.equal(await h.worker.stop(50), false, 'not within 50 ms');
    await h.waitForEvent('delivered', slow, 5000); // the send still completes and is recorded
    assert.equal(await h.spool.get(slow), null);

    const h2 = await startHarness({ tls, script: { data: () => sleep(300).then(() => undefined) } });
    try {
      const id = await h2.submit();
      await waitUntil(() => h2.worker.inFlight === 1);
      assert.equal(await h2.worker.stop(5000), true);
      assert.ok(h2.events.some((e) => e.name === 'delivered' && e.event.id === id));
      const later = await h2.submit({ body: 'after stop' });
      await sleep(400);
      assert.equal((await h2.spool.get(later))?.state.status, 'queued', 'a stopped worker picks up nothing');
    } finally {
      await h2.close();
    }
  } finally {
    await h.close();
  }
});

async function waitUntil(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(5);
  }
}
