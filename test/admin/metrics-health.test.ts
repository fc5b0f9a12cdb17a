/**
 * `/metrics`, `/healthz`, `/readyz` on a running relay: the exposition parses strictly, its counters move when
 * a scan is relayed end to end (device → SMTP listener → spool → worker → sandbox XOAUTH2 mailbox), and
 * readiness follows the listeners and a spool that can really be written.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { SANDBOX_MAILBOX } from '../../src/sandbox/sandbox-config.js';
import { eventually } from '../support/sandbox-env.js';
import { startAdminWorld, type AdminWorld } from './support/admin-world.js';
import { parsePrometheusText, valueOf, type MetricFamily } from './support/prometheus-text.js';

let world: AdminWorld;

before(async () => {
  world = await startAdminWorld();
});

after(() => world?.close());

async function get(path: string): Promise<Response> {
  return fetch(new URL(path, world.admin.url));
}

async function scrape(): Promise<Map<string, MetricFamily>> {
  const response = await get('/metrics');
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return parsePrometheusText(await response.text());
}

async function signIn(): Promise<void> {
  const service = world.daemon.tokens.get('scanner');
  const prompt = await service.startDeviceCode();
  world.env.sim.approve(prompt.userCode, SANDBOX_MAILBOX);
  await prompt.done;
  assert.equal(service.state.state, 'acquired');
}

test('/healthz answers 200 while the process is up', async () => {
  const response = await get('/healthz');
  assert.equal(response.status, 200);
  assert.deepEqual(await response.json(), { status: 'up' });
});

test('/metrics parses as Prometheus text and its counters move when a scan is relayed', async () => {
  const before = await scrape();
  const account = { account: 'scanner' };
  assert.equal(valueOf(before, 'xoauth2_relay_token_state', { account: 'scanner', state: 'not-acquired' }), 1);
  assert.equal(valueOf(before, 'xoauth2_relay_token_state', { account: 'scanner', state: 'acquired' }), 0);
  for (const protocol of ['smtp', 'imap', 'pop3']) {
    assert.equal(valueOf(before, 'xoauth2_relay_sessions_open', { protocol }), 0, `sessions_open{protocol=${protocol}} is exported`);
    assert.equal(valueOf(before, 'xoauth2_relay_auth_failures_total', { protocol }), 0);
  }
  assert.equal(before.get('xoauth2_relay_delivery_latency_seconds')?.type, 'histogram');
  assert.ok(before.has('xoauth2_relay_process_resident_memory_bytes'), 'process metrics are there, in our namespace');

  await signIn();
  assert.match(await world.sendScan('metrics scan'), /^250 /);
  await eventually(async () => (await world.mailbox!.messages(SANDBOX_MAILBOX)).length === 1, 15_000, 'the scan delivered');
  world.metrics.sessionOpened('imap');
  world.metrics.authFailed('smtp');

  const after = await scrape();
  const delta = (name: string, labels: Record<string, string> = account) => (valueOf(after, name, labels) ?? 0) - (valueOf(before, name, labels) ?? 0);
  assert.equal(delta('xoauth2_relay_messages_accepted_total'), 1);
  assert.equal(delta('xoauth2_relay_messages_delivered_total'), 1);
  assert.equal(valueOf(after, 'xoauth2_relay_messages_dead_total', account) ?? 0, 0);
  assert.equal(delta('xoauth2_relay_delivery_latency_seconds_count'), 1);
  assert.ok(delta('xoauth2_relay_delivery_latency_seconds_sum') > 0);
  assert.equal(delta('xoauth2_relay_token_refreshes_total'), 1, 'the sign-in obtained a token');
  assert.equal(valueOf(after, 'xoauth2_relay_token_state', { account: 'scanner', state: 'acquired' }), 1);
  assert.equal(valueOf(after, 'xoauth2_relay_token_state', { account: 'scanner', state: 'not-acquired' }), 0);
  assert.equal(valueOf(after, 'xoauth2_relay_sessions_open', { protocol: 'imap' }), 1);
  assert.equal(delta('xoauth2_relay_auth_failures_total', { protocol: 'smtp' }), 1);
  for (const status of ['queued', 'deferred', 'held', 'dead']) assert.equal(valueOf(after, 'xoauth2_relay_spool_messages', { status }), 0);
  assert.equal(valueOf(after, 'xoauth2_relay_spool_oldest_message_age_seconds'), 0);
  world.metrics.sessionClosed('imap');
});

test('spool gauges count waiting messages by status and the oldest one\'s age', async () => {
  await world.daemon.tokens.get('scanner').logout();
  assert.match(await world.sendScan('held for the gauges'), /^250 /);
  await eventually(async () => (await world.daemon.spool.list())[0]?.state.status === 'held', 10_000, 'the message held');
  await new Promise((r) => setTimeout(r, 1100));
  const families = await scrape();
  assert.equal(valueOf(families, 'xoauth2_relay_spool_messages', { status: 'held' }), 1);
  assert.ok((valueOf(families, 'xoauth2_relay_spool_oldest_message_age_seconds') ?? 0) >= 1);
  assert.equal(valueOf(families, 'xoauth2_relay_messages_held_total', { account: 'scanner' }), 1);
  for (const e of await world.daemon.spool.list()) await world.daemon.spool.drop(e.id);
});

test('/readyz is 200 when the listeners are bound and the spool is writable, 503 otherwise', async () => {
  const ready = await get('/readyz');
  assert.equal(ready.status, 200);
  assert.deepEqual(await ready.json(), { ready: true, checks: { listeners: { ok: true }, spool: { ok: true }, tokenStore: { ok: true, kind: 'file', reachable: true } } });

  world.listenersBound.value = false;
  const unbound = await get('/readyz');
  assert.equal(unbound.status, 503);
  assert.equal(((await unbound.json()) as { checks: { listeners: { ok: boolean } } }).checks.listeners.ok, false);
  world.listenersBound.value = true;

  // The tests run as root, and root writes through any mode bits (chmod 000 would not stop it). A regular file
  // where the spool directory was stops everyone: creating spool/tmp/<x> then fails with ENOTDIR.
  const root = world.daemon.spool.root;
  await rename(root, `${root}.aside`);
  await writeFile(root, 'not a directory\n');
  try {
    const broken = await get('/readyz');
    assert.equal(broken.status, 503);
    const report = (await broken.json()) as { ready: boolean; checks: { spool: { ok: boolean; problem?: string } } };
    assert.equal(report.ready, false);
    assert.equal(report.checks.spool.ok, false);
    assert.match(report.checks.spool.problem ?? '', /spool\/tmp is not writable \(ENOTDIR\)/);
  } finally {
    await rm(root, { force: true });
    await rename(`${root}.aside`, root);
  }
  // A missing folder is just as unready (someone cleaned up the state directory).
  await rm(`${root}/dead`, { recursive: true });
  assert.equal((await get('/readyz')).status, 503);
  await mkdir(`${root}/dead`, { mode: 0o700 });
  assert.equal((await get('/readyz')).status, 200);
});
