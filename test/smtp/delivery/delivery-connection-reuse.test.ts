/**
 * Delivery reuses authenticated upstream connections: counted at a real SMTP server (smtp-server with STARTTLS and
 * XOAUTH2), how many connections, AUTHs, RSETs and token requests a batch of messages costs, and what a refused
 * message, a dropped connection, a throttling reply, an ageing token and an idle pause do to the connection.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { reusableAfter } from '../../../src/smtp/delivery/upstream-connection.js';
import { createUpstreamTls, type ScriptedUpstream, type UpstreamTls } from '../../support/scripted-upstream.js';
import { FakeTokens } from './fake-tokens.js';
import { startHarness } from './harness.js';

let tls: UpstreamTls;
before(async () => {
  tls = await createUpstreamTls();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** The verbs each connection sent after logging in, in order (EHLO, STARTTLS and AUTH left out). */
function sessions(upstream: ScriptedUpstream): string[][] {
  const byConnection = new Map<string, string[]>();
  for (const { connection, command } of upstream.commands) {
    if (!byConnection.has(connection)) byConnection.set(connection, []);
    if (['RSET', 'MAIL', 'QUIT'].includes(command)) byConnection.get(connection)!.push(command);
  }
  return [...byConnection.values()];
}

test('12 messages for one mailbox: at most 3 connections, one AUTH and one token request each, RSET between messages', async (t) => {
  const h = await startHarness({ tls, start: false });
  try {
    for (let i = 0; i < 12; i += 1) await h.submit({ body: `page ${i}` });
    await h.worker.start();
    const received = await h.upstream.waitForMessages(12);
    const connections = h.upstream.connections.total;
    assert.ok(connections <= 3, `${connections} connections`);
    assert.equal(h.upstream.authAttempts.length, connections, 'one AUTH XOAUTH2 per connection');
    assert.ok(h.upstream.authAttempts.every((a) => a.accepted && a.token === 'tok-1'));
    assert.equal(h.tokens.requests, connections, 'a token per connection, not per message');
    for (const verbs of sessions(h.upstream)) {
      // MAIL, then RSET before every further MAIL on the same connection.
      const mails = verbs.filter((v) => v === 'MAIL').length;
      assert.deepEqual(verbs.filter((v) => v !== 'QUIT'), ['MAIL', ...Array.from({ length: mails - 1 }, () => ['RSET', 'MAIL']).flat()]);
    }
    // Byte for byte, every message once.
    const expected = [...h.submitted.values()].map(sha256).sort();
    assert.deepEqual(received.map((r) => r.sha256).sort(), expected);
    // The upstream has the bytes before the worker has removed them from the spool: wait for each delivery's record.
    for (const id of h.submitted.keys()) await h.waitForEvent('delivered', id);
    assert.deepEqual(await h.spool.list(), []);
    t.diagnostic(`12 messages over ${connections} connections: ${sessions(h.upstream).map((v) => v.filter((x) => x === 'MAIL').length).join(' + ')}`);
  } finally {
    await h.close();
  }
});

test('a message refused with 5xx or 4xx in the middle of a batch: dead-lettered or retried, the others go on the same connection', async () => {
  const h = await startHarness({
    tls,
    limits: { maxConnectionsPerMailbox: 1 },
    start: false,
    script: {
      data: (_m, n) => {
        if (n === 2) return { code: 554, message: '5.6.0 Corrupt message content' };
        if (n === 4) return { code: 451, message: '4.7.0 Temporary server error. Please try again later' };
        return undefined;
      },
    },
  });
  try {
    const ids: string[] = [];
    for (let i = 0; i < 5; i += 1) ids.push(await h.submit({ body: `page ${i}` }));
    await h.worker.start();
    const dead = await h.waitForEvent('dead', ids[1]!);
    assert.equal(dead.code, 'UPSTREAM_REJECTED');
    assert.match(dead.reply ?? '', /^554 5\.6\.0/);
    assert.equal((await h.waitForEvent('deferred', ids[3]!)).code, 'UPSTREAM_TEMPORARY');
    for (const id of [ids[0]!, ids[2]!, ids[4]!, ids[3]!]) await h.waitForEvent('delivered', id);
    assert.equal(h.upstream.connections.total, 1, 'neither refusal cost a new connection (the retry too went on it)');
    assert.equal(h.upstream.authAttempts.length, 1);
    const [verbs] = sessions(h.upstream);
    assert.deepEqual(verbs?.filter((v) => v !== 'QUIT'), ['MAIL', 'RSET', 'MAIL', 'RSET', 'MAIL', 'RSET', 'MAIL', 'RSET', 'MAIL', 'RSET', 'MAIL']);
    assert.equal((await h.spool.get(ids[1]!))?.state.status, 'dead');
    assert.deepEqual((await h.spool.list()).map((e) => e.id), []);
  } finally {
    await h.close();
  }
});

test('a connection dropped in the middle of a batch loses nothing: the message in flight is retried on a new connection', async () => {
  let upstream: ScriptedUpstream | undefined;
  const h = await startHarness({
    tls,
    limits: { maxConnectionsPerMailbox: 1 },
    start: false,
    script: {
      data: (_m, n) => {
        if (n !== 3) return undefined;
        upstream?.dropConnections(); // after the final dot, before any reply: the ambiguous case, retried
        return new Promise<undefined>(() => undefined);
      },
    },
  });
  upstream = h.upstream;
  try {
    const ids: string[] = [];
    for (let i = 0; i < 5; i += 1) ids.push(await h.submit({ body: `page ${i}` }));
    await h.worker.start();
    const deferred = await h.waitForEvent('deferred', ids[2]!);
    assert.equal(deferred.code, 'UPSTREAM_UNREACHABLE');
    for (const id of ids) await h.waitForEvent('delivered', id);
    const received = h.upstream.received.map((r) => r.sha256).sort();
    assert.deepEqual(received, [...h.submitted.values()].map(sha256).sort(), 'each message arrived (acknowledged) once');
    assert.equal(h.upstream.connections.total, 2, 'one new connection after the drop');
    assert.equal(h.upstream.authAttempts.length, 2);
  } finally {
    await h.close();
  }
});

test("Exchange's throttling replies (421 4.7.x) close the connection; the message is retried on a new one", async () => {
  const h = await startHarness({
    tls,
    limits: { maxConnectionsPerMailbox: 1 },
    start: false,
    script: { data: (_m, n) => (n === 2 ? { code: 421, message: '4.7.66 Error: too many messages in this connection, try again later' } : undefined) },
  });
  try {
    const ids: string[] = [];
    for (let i = 0; i < 4; i += 1) ids.push(await h.submit({ body: `page ${i}` }));
    await h.worker.start();
    assert.match((await h.waitForEvent('deferred', ids[1]!)).reply ?? '', /^421 4\.7\.66/);
    for (const id of ids) await h.waitForEvent('delivered', id);
    const [first, ...rest] = sessions(h.upstream);
    assert.deepEqual(first, ['MAIL', 'RSET', 'MAIL'], 'nothing more on the throttled connection (not even QUIT)');
    assert.equal(rest.length, 1);
    assert.equal(h.upstream.received.length, 4);
  } finally {
    await h.close();
  }
});

test('after which failures a connection carries the next message: an SMTP reply that does not end the session', () => {
  assert.equal(reusableAfter({ code: 'EMESSAGE', responseCode: 554, response: '554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException' }), true);
  assert.equal(reusableAfter({ code: 'EENVELOPE', responseCode: 550, response: '550 5.7.60 SMTP; Client does not have permissions to send as this sender' }), true);
  assert.equal(reusableAfter({ code: 'EENVELOPE', responseCode: 451, response: '451 4.7.1 Try again later' }), true);
  assert.equal(reusableAfter({ code: 'EMESSAGE', message: 'Message size larger than allowed 36700160' }), true, 'refused locally before MAIL FROM');
  assert.equal(reusableAfter({ code: 'EMESSAGE', responseCode: 421, response: '421 4.7.66 Too many messages' }), false);
  assert.equal(reusableAfter({ code: 'EENVELOPE', responseCode: 432, response: '432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded' }), false);
  assert.equal(reusableAfter({ code: 'ECONNECTION', message: 'Connection closed unexpectedly' }), false);
  assert.equal(reusableAfter({ code: 'ETIMEDOUT', message: 'Timeout' }), false);
  assert.equal(reusableAfter({ code: 'ESTREAM', message: 'ENOENT' }), false, 'a spool file that broke mid-DATA');
});

test('a connection whose token nears expiry is closed (QUIT) and the next message logs in anew with a fresh token', async () => {
  const tokens = new FakeTokens();
  tokens.lifetimeMs = 2_000;
  tokens.refreshAheadMs = 1_500; // the token service refreshes ahead of expiry
  const h = await startHarness({ tls, tokens, worker: { connections: { tokenMarginMs: 1_000 } } });
  try {
    const first = await h.submit({ body: 'first' });
    await h.waitForEvent('delivered', first);
    const second = await h.submit({ body: 'second, while the token is young' });
    await h.waitForEvent('delivered', second);
    assert.equal(h.upstream.connections.total, 1);
    await sleep(1_100); // tok-1 has < 1 s left now
    const third = await h.submit({ body: 'third' });
    await h.waitForEvent('delivered', third);
    assert.equal(h.upstream.connections.total, 2, 'a new connection for the ageing token');
    assert.deepEqual(h.upstream.authAttempts.map((a) => a.token), ['tok-1', 'tok-2']);
    assert.deepEqual(h.upstream.received.map((r) => r.token), ['tok-1', 'tok-1', 'tok-2']);
    assert.deepEqual(sessions(h.upstream)[0], ['MAIL', 'RSET', 'MAIL', 'QUIT']);
    assert.deepEqual(h.tokens.rejectedTokens, [], 'replaced ahead of time, never refused');
  } finally {
    await h.close();
  }
});

test('an idle connection is closed after the idle time; the next message opens a new one', async () => {
  const h = await startHarness({ tls, worker: { connections: { idleMs: 200 } } });
  try {
    await h.waitForEvent('delivered', await h.submit({ body: 'one' }));
    const deadline = Date.now() + 5_000;
    while (h.upstream.connections.open > 0 && Date.now() < deadline) await sleep(20);
    assert.equal(h.upstream.connections.open, 0, 'closed while idle');
    assert.deepEqual(sessions(h.upstream)[0], ['MAIL', 'QUIT']);
    await h.waitForEvent('delivered', await h.submit({ body: 'two' }));
    assert.equal(h.upstream.connections.total, 2);
  } finally {
    await h.close();
  }
});

test('an idle connection the server closed is noticed before the next message (socket close or RSET) and replaced, without an attempt counted', async () => {
  const h = await startHarness({ tls });
  try {
    await h.waitForEvent('delivered', await h.submit({ body: 'one' }));
    assert.equal(h.upstream.dropConnections(), 1);
    const id = await h.submit({ body: 'two' });
    const delivered = await h.waitForEvent('delivered', id);
    assert.equal(delivered.attempts, 1);
    assert.ok(!h.events.some((e) => e.name === 'deferred'));
    assert.equal(h.upstream.connections.total, 2);
    assert.deepEqual(await readFile(h.upstream.received[1]!.path), h.submitted.get(id));
  } finally {
    await h.close();
  }
});

test("an account whose token is revoked stops using its connections: the next message is held, nothing more is sent", async () => {
  const h = await startHarness({ tls });
  try {
    await h.waitForEvent('delivered', await h.submit({ body: 'one' }));
    h.tokens.setState('scanner', 'invalid');
    const held = await h.submit({ body: 'two' });
    assert.equal((await h.waitForEvent('held', held)).code, 'TOKEN_INVALID');
    assert.equal(h.upstream.received.length, 1);
    assert.deepEqual(sessions(h.upstream)[0], ['MAIL', 'QUIT']);
  } finally {
    await h.close();
  }
});
