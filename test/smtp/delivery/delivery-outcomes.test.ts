import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { freePorts } from '../../support/peers/free-port.js';
import { createUpstreamTls, startScriptedUpstream, type UpstreamTls } from '../../support/scripted-upstream.js';
import { FakeTokens } from './fake-tokens.js';
import { mailboxes, startHarness } from './harness.js';

let tls: UpstreamTls;
before(async () => {
  tls = await createUpstreamTls();
});

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

test('a queued message is delivered over STARTTLS with XOAUTH2 as the mailbox, byte for byte, and leaves the spool', async () => {
  const h = await startHarness({ tls });
  try {
    const id = await h.submit({ rcptTo: ['alice@contoso.example', 'bob@fabrikam.example'], body: 'one page' });
    const bytes = h.submitted.get(id)!;
    const delivered = await h.waitForEvent('delivered', id);
    const [received] = h.upstream.received;
    assert.equal(received?.user, mailboxes.scanner);
    assert.equal(received?.token, 'tok-1');
    assert.equal(received?.from, mailboxes.scanner);
    assert.deepEqual(received?.to, ['alice@contoso.example', 'bob@fabrikam.example']);
    assert.equal(received?.sha256, sha256(bytes));
    assert.match(delivered.reply ?? '', /^250 /);
    assert.equal(delivered.account, 'scanner');
    assert.ok(delivered.latencyMs >= 0);
    assert.deepEqual(await h.spool.list(), []);
    assert.deepEqual(await h.spool.listDead(), []);
  } finally {
    await h.close();
  }
});

for (const refusal of ['a 535 reply', 'an Exchange-style 334 challenge, then 535'] as const) {
  test(`token refused with ${refusal} → one tokenRejected, a fresh token, delivered at once`, async () => {
    const h = await startHarness({
      tls,
      script: { auth: ({ token }) => (token !== 'tok-1' ? 'ok' : refusal === 'a 535 reply' ? { code: 535, message: '5.7.3 Authentication unsuccessful' } : 'challenge') },
    });
    try {
      const id = await h.submit();
      await h.waitForEvent('delivered', id);
      assert.deepEqual(h.tokens.rejectedTokens, ['tok-1'], 'exactly one forced refresh, through the token service');
      assert.equal(h.upstream.received[0]?.token, 'tok-2');
      assert.ok(!h.events.some((e) => e.name === 'deferred'), 'no back-off in between');
      // nodemailer itself never fetched a token: every token the upstream saw came from the fake.
      assert.ok(h.upstream.authAttempts.every((a) => /^tok-\d$/.test(a.token)));
    } finally {
      await h.close();
    }
  });
}

test('a second 535 after the refresh defers the message (the token service decides about invalid), no loop', async () => {
  const h = await startHarness({ tls, script: { auth: () => ({ code: 535, message: '5.7.3 Authentication unsuccessful' }) } });
  try {
    const id = await h.submit();
    const deferred = await h.waitForEvent('deferred', id);
    assert.equal(deferred.code, 'UPSTREAM_TOKEN_REJECTED');
    assert.match(deferred.reply ?? '', /535 5\.7\.3/);
    assert.deepEqual(h.tokens.rejectedTokens, ['tok-1']);
    const queued = await h.spool.get(id);
    assert.equal(queued?.state.status, 'deferred');
    assert.equal(queued?.state.attempts, 1);
  } finally {
    await h.close();
  }
});

test('535 5.7.139 (SMTP AUTH disabled for the tenant) is dead at once with the PowerShell fix, no refresh', async () => {
  const h = await startHarness({ tls, script: { auth: () => ({ code: 535, message: '5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant.' }) } });
  try {
    const id = await h.submit();
    const dead = await h.waitForEvent('dead', id);
    assert.equal(dead.code, 'UPSTREAM_SMTP_AUTH_DISABLED');
    assert.deepEqual(h.tokens.rejectedTokens, []);
    const [letter] = await h.spool.listDead();
    assert.match(letter?.state.lastReason ?? '', /Set-TransportConfig -SmtpClientAuthenticationDisabled \$false/);
  } finally {
    await h.close();
  }
});

test('451 → deferred with back-off, then delivered on the next attempt', async () => {
  const h = await startHarness({ tls, script: { data: (_m, n) => (n === 1 ? { code: 451, message: '4.7.0 Temporary server error. Please try again later' } : undefined) } });
  try {
    const id = await h.submit();
    const deferred = await h.waitForEvent('deferred', id);
    const deferredAt = Date.now();
    assert.equal(deferred.code, 'UPSTREAM_TEMPORARY');
    assert.match(deferred.reply ?? '', /^451 4\.7\.0/);
    const state = (await h.spool.get(id))?.state;
    assert.equal(state?.status, 'deferred');
    assert.match(state?.lastReason ?? '', /temporary failure/);
    await h.waitForEvent('delivered', id);
    assert.ok(Date.now() - deferredAt >= 60, 'waited retryInitialSeconds (0.1 s, jitter ±25 %)');
    assert.equal(h.upstream.received.length, 1);
  } finally {
    await h.close();
  }
});

test('550 5.7.60 (SendAsDenied) → dead, with the reply and what to do', async () => {
  const h = await startHarness({ tls, script: { mailFrom: () => ({ code: 550, message: '5.7.60 SMTP; Client does not have permissions to send as this sender' }) } });
  try {
    const id = await h.submit();
    const dead = await h.waitForEvent('dead', id);
    assert.equal(dead.code, 'UPSTREAM_SEND_AS_DENIED');
    const letter = await h.spool.get(id);
    assert.equal(letter?.state.status, 'dead');
    assert.match(letter?.state.lastReply ?? '', /^550 5\.7\.60/);
    assert.match(letter?.state.lastReason ?? '', /default senderPolicy \(auto\)/);
    assert.match(letter?.state.lastReason ?? '', /Add-RecipientPermission -Identity \S+ -Trustee \S+ -AccessRights SendAs/);
    assert.deepEqual(await readFile(h.spool.messagePath(id, 'dead')), h.submitted.get(id));
    assert.deepEqual(await h.spool.list(), []);
  } finally {
    await h.close();
  }
});

test('554 5.2.0 SubmissionQuotaExceeded after DATA → dead with the quota advice', async () => {
  const h = await startHarness({ tls, script: { data: () => ({ code: 554, message: '5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException' }) } });
  try {
    const dead = await h.waitForEvent('dead', await h.submit());
    assert.equal(dead.code, 'UPSTREAM_QUOTA_EXCEEDED');
  } finally {
    await h.close();
  }
});

test('some recipients refused: the others get it, 5xx ones go to dead/ as a copy, 4xx ones stay queued and go later', async () => {
  let greylisted = true;
  const h = await startHarness({
    tls,
    script: {
      rcptTo: (address) => {
        if (address.startsWith('nobody@')) return { code: 550, message: '5.1.1 RESOLVER.ADR.RecipNotFound; not found' };
        if (address.startsWith('later@') && greylisted) return { code: 451, message: '4.7.1 Try again later' };
        return undefined;
      },
    },
  });
  try {
    const id = await h.submit({ rcptTo: ['alice@contoso.example', 'nobody@contoso.example', 'later@fabrikam.example'] });
    await h.waitForEvent('delivered', id);
    await h.waitForEvent('deferred', id);
    assert.deepEqual(h.upstream.received[0]?.to, ['alice@contoso.example']);
    const [copy] = await h.spool.listDead();
    assert.deepEqual(copy?.rcptTo, ['nobody@contoso.example']);
    assert.equal(copy?.splitFrom, id);
    assert.equal(copy?.state.lastCode, 'UPSTREAM_RECIPIENT_REJECTED');
    assert.ok(h.events.some((e) => e.name === 'dead' && e.event.id === copy?.id));
    assert.deepEqual((await h.spool.get(id))?.rcptTo, ['later@fabrikam.example']);

    greylisted = false;
    await h.upstream.waitForMessages(2);
    assert.deepEqual(h.upstream.received[1]?.to, ['later@fabrikam.example']);
    await waitUntil(async () => (await h.spool.list()).length === 0);
  } finally {
    await h.close();
  }
});

test('every recipient refused with 5xx → the whole message is dead', async () => {
  const h = await startHarness({ tls, script: { rcptTo: () => ({ code: 550, message: '5.1.10 RESOLVER.ADR.RecipientNotFound' }) } });
  try {
    const id = await h.submit({ rcptTo: ['a@contoso.example', 'b@contoso.example'] });
    const dead = await h.waitForEvent('dead', id);
    assert.equal(dead.code, 'UPSTREAM_RECIPIENT_REJECTED');
    assert.deepEqual((await h.spool.get(id))?.rcptTo, ['a@contoso.example', 'b@contoso.example']);
    assert.equal(h.upstream.received.length, 0);
  } finally {
    await h.close();
  }
});

test('upstream down (closed port) → deferred; delivered once it listens again', async () => {
  const [port] = await freePorts(1);
  const h = await startHarness({ tls, upstreamPort: port! });
  try {
    const id = await h.submit();
    const deferred = await h.waitForEvent('deferred', id);
    assert.equal(deferred.code, 'UPSTREAM_UNREACHABLE');
    assert.match(deferred.reply ?? '', /ECONNREFUSED/);
    const comeback = await startScriptedUpstream({ dir: h.stateDir, tls, port: port! });
    try {
      await h.waitForEvent('delivered', id);
      assert.equal(comeback.received.length, 1);
    } finally {
      await comeback.stop();
    }
  } finally {
    await h.close();
  }
});

test('an upstream certificate that does not chain to a trusted CA is refused: deferred, nothing sent', async () => {
  const h = await startHarness({ tls, trustUpstream: false });
  try {
    const deferred = await h.waitForEvent('deferred', await h.submit());
    assert.equal(deferred.code, 'UPSTREAM_TLS_FAILED');
    assert.equal(h.upstream.authAttempts.length, 0, 'no token left the relay');
  } finally {
    await h.close();
  }
});

test('token not acquired → held without counting an attempt; delivered when the account becomes acquired', async () => {
  const tokens = new FakeTokens('not-acquired');
  const h = await startHarness({ tls, tokens });
  try {
    const id = await h.submit();
    const held = await h.waitForEvent('held', id);
    assert.equal(held.code, 'TOKEN_NOT_ACQUIRED');
    const state = (await h.spool.get(id))?.state;
    assert.equal(state?.status, 'held');
    assert.equal(state?.attempts, 0);
    await new Promise((r) => setTimeout(r, 500)); // rescans come and go: a held message stays held
    assert.equal(h.upstream.connections.total, 0);
    assert.equal(h.events.filter((e) => e.name === 'held').length, 1);

    tokens.setState('scanner', 'acquired');
    await h.waitForEvent('delivered', id);
  } finally {
    await h.close();
  }
});

test('token refresh failing (network) → deferred, not held', async () => {
  const tokens = new FakeTokens();
  tokens.refreshFails = true;
  const h = await startHarness({ tls, tokens });
  try {
    const id = await h.submit();
    const deferred = await h.waitForEvent('deferred', id);
    assert.equal(deferred.code, 'TOKEN_REFRESH_FAILED');
    tokens.refreshFails = false;
    await h.waitForEvent('delivered', id);
  } finally {
    await h.close();
  }
});

test('older than maxAgeHours → dead with "undeliverable for N hours: <last reason>"', async () => {
  let offsetMs = 0;
  const h = await startHarness({ tls, limits: { maxAgeHours: 1 }, worker: { now: () => Date.now() + offsetMs }, script: { data: () => ({ code: 451, message: '4.3.2 System not accepting network messages' }) } });
  try {
    const id = await h.submit();
    await h.waitForEvent('deferred', id);
    offsetMs = 2 * 3_600_000;
    const dead = await h.waitForEvent('dead', id);
    assert.equal(dead.code, 'DELIVERY_EXPIRED');
    const letter = await h.spool.get(id);
    assert.match(letter?.state.lastReason ?? '', /^undeliverable for 1 hours: Exchange answered with a temporary failure/);
    assert.match(letter?.state.lastReply ?? '', /^451 4\.3\.2/);
  } finally {
    await h.close();
  }
});

test('a held message also expires after maxAgeHours', async () => {
  let offsetMs = 0;
  const h = await startHarness({ tls, tokens: new FakeTokens('invalid'), limits: { maxAgeHours: 1 }, worker: { now: () => Date.now() + offsetMs } });
  try {
    const id = await h.submit();
    assert.equal((await h.waitForEvent('held', id)).code, 'TOKEN_INVALID');
    offsetMs = 3_600_000;
    await h.waitForEvent('dead', id);
    assert.match((await h.spool.get(id))?.state.lastReason ?? '', /^undeliverable for 1 hours: the token is no longer valid/);
  } finally {
    await h.close();
  }
});

test('lines starting with dots arrive unchanged (nodemailer dot-stuffs, the server un-stuffs)', async () => {
  const h = await startHarness({ tls });
  try {
    const id = await h.submit({ body: '.leading dot\r\n..two dots\r\nend' });
    await h.waitForEvent('delivered', id);
    const got = await readFile(h.upstream.received[0]!.path);
    assert.deepEqual(got, h.submitted.get(id));
    assert.match(got.toString(), /\r\n\.leading dot\r\n\.\.two dots\r\n/);
  } finally {
    await h.close();
  }
});

async function waitUntil(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
