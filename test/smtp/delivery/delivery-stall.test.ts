/**
 * A stalled upstream (it stops answering in the middle of a delivery: no FIN, no RST) frees its mailbox slot
 * within smtp.upstream.stallTimeoutSeconds and the message is retried, instead of holding the slot for
 * nodemailer's default 10 minutes while the mailbox's other mail waits.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '../../../src/log.js';
import { DeliveryWorker } from '../../../src/smtp/delivery/delivery-worker.js';
import type { DeliveryEvent } from '../../../src/smtp/delivery/record-outcome.js';
import { defaultDeliveryTimeouts, deliveryTimeouts } from '../../../src/smtp/delivery/upstream-sender.js';
import { configSchema } from '../../../src/config/schema.js';
import { createUpstreamTls, type UpstreamTls } from '../../support/scripted-upstream.js';
import { mailboxes, startHarness } from './harness.js';

let tls: UpstreamTls;
before(async () => {
  tls = await createUpstreamTls();
});

test('the defaults bound every delivery: connect 30 s, greeting, replies and sending progress 60 s', () => {
  const upstream = configSchema.parse({ accounts: { a: { mailbox: 'a@contoso.com', tenantId: 'contoso.com', clientId: '66666666-7777-8888-9999-000000000000' } } }).smtp.upstream;
  assert.deepEqual(deliveryTimeouts(upstream), { connectionMs: 30_000, greetingMs: 60_000, socketMs: 60_000 });
  assert.deepEqual({ ...defaultDeliveryTimeouts }, deliveryTimeouts(upstream), 'a caller that passes none gets the same');
});

test('an upstream that stops answering after the message frees the slot after the stall timeout; the message is retried and delivered', { timeout: 60_000 }, async () => {
  // The first DATA is never answered; later ones are.
  const h = await startHarness({ tls, start: false, script: { data: (_m, n) => (n === 1 ? new Promise<undefined>(() => undefined) : undefined) } });
  const worker = new DeliveryWorker({
    spool: h.spool,
    tokens: h.tokens,
    upstream: { host: '127.0.0.1', port: h.upstream.port, timeouts: deliveryTimeouts({ connectTimeoutSeconds: 1, stallTimeoutSeconds: 0.5 }) },
    extraCaPem: h.upstream.caCertPem,
    limits: { maxConnectionsPerMailbox: 1, maxMessagesPerMinute: 1000, retryInitialSeconds: 0.1, retryMaxSeconds: 0.2, maxAgeHours: 72 },
    mailboxOf: (account) => mailboxes[account]!,
    logger: createLogger({ level: 'silent' }),
    rescanIntervalMs: 200,
  });
  const seen: Array<[string, DeliveryEvent, number]> = [];
  const started = performance.now();
  for (const name of ['delivered', 'deferred', 'dead'] as const) worker.on(name, (e) => seen.push([name, e, performance.now() - started]));
  try {
    const stalled = await h.submit({ body: 'stalled' });
    const next = await h.submit({ body: 'next' });
    await worker.start();
    const deadline = Date.now() + 20_000;
    while (!(seen.some(([n, e]) => n === 'delivered' && e.id === stalled) && seen.some(([n, e]) => n === 'delivered' && e.id === next)) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    const deferred = seen.find(([n, e]) => n === 'deferred' && e.id === stalled);
    const nextDelivered = seen.find(([n, e]) => n === 'delivered' && e.id === next);
    assert.ok(deferred, `the stalled attempt was deferred (events: ${JSON.stringify(seen.map(([n, e]) => [n, e.id, e.reply]))})`);
    assert.ok(nextDelivered, 'the mailbox\'s next message went out through the freed slot');
    assert.ok(seen.some(([n, e]) => n === 'delivered' && e.id === stalled), 'the stalled message was retried and delivered');
    console.log(`# stalled upstream: slot freed (deferred) after ${deferred[2].toFixed(0)} ms with stallTimeoutSeconds 0.5; next message delivered at ${nextDelivered[2].toFixed(0)} ms (was 600 s with nodemailer's default)`);
    assert.ok(deferred[2] < 5000, `freed after ${deferred[2].toFixed(0)} ms`);
  } finally {
    await worker.stop(2000);
    await h.close();
  }
});
