/**
 * The IMAP front against a scripted upstream: failures (device, token, upstream), TLS on the device side, hostile
 * input before login, and the session's lifetime (idle timeout, drain on close).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { LineClient } from '../support/peers/line-client.js';
import { FAX, MFP, closedPort, fakeTokens, startRelay, type RelayWorld } from '../transport/support/relay-fixture.js';
import { closedByRelay, useFrontHarness } from '../transport/support/front-harness.js';
import { upstreamCapabilities } from '../transport/support/scripted-mail-server.js';

const { world: worldOf, upstream, relay, device, cleanup } = useFrontHarness('imap');

describe('IMAP front: failures', () => {
  test('wrong password and unknown user: NO [AUTHENTICATIONFAILED], then the back-off; nothing reaches the upstream', async () => {
    const server = await upstream();
    const { port, tokens } = await relay({ upstreamPort: server.port });
    const { client } = await device(port);
    assert.deepEqual(await client.imap('a1', `LOGIN ${MFP.username} wrong`), ['a1 NO [AUTHENTICATIONFAILED] Wrong user name or password']);
    assert.deepEqual(await client.imap('a2', 'LOGIN nobody whatever'), ['a2 NO [AUTHENTICATIONFAILED] Wrong user name or password']);
    assert.deepEqual(await client.imap('a3', `LOGIN ${MFP.username} wrong-again`), ['a3 NO [AUTHENTICATIONFAILED] Wrong user name or password']);
    assert.deepEqual(await client.imap('a4', `LOGIN ${FAX.username} wrong`), ['a4 NO [AUTHENTICATIONFAILED] Wrong user name or password']);
    // freeFailures is 3: after the fourth failure the address is blocked, even with the right password.
    assert.deepEqual(await client.imap('a5', `LOGIN ${MFP.username} ${MFP.password}`), ['a5 NO [UNAVAILABLE] Too many failed logins, try again later']);
    assert.equal(server.connections, 0);
    assert.equal(tokens.accessCalls, 0);
    assert.match(worldOf().logText(), /device login refused: device sent a wrong user name or password.*user name \\"nobody\\"/);
  });

  test('the upstream refuses the first token with an error challenge: one tokenRejected, a new connection, success', async () => {
    const server = await upstream({ auth: (a) => (a.n === 1 ? 'challenge' : 'ok'), capabilitiesInOk: true });
    const { port, tokens } = await relay({ upstreamPort: server.port });
    const { client } = await device(port);
    assert.deepEqual(await client.imap('a1', `LOGIN ${MFP.username} ${MFP.password}`), [`a1 OK [CAPABILITY ${upstreamCapabilities}] Logged in`]);
    assert.equal(tokens.rejectedCalls, 1);
    assert.equal(server.connections, 2);
    // The error challenge was answered with an empty line (the scripted server checks it and answers NO).
    assert.deepEqual(server.lines[0]!.slice(1), ['']);
    assert.deepEqual(server.attempts.map((a) => a.token), tokens.issued);
    assert.notEqual(tokens.issued[0], tokens.issued[1]);
  });

  test('the upstream refuses a refreshed token too: NO [UNAVAILABLE], the operator told what to check', async () => {
    const server = await upstream({ auth: () => 'no' });
    const { port, tokens } = await relay({ upstreamPort: server.port });
    const { client } = await device(port);
    assert.deepEqual(await client.imap('a1', `LOGIN ${MFP.username} ${MFP.password}`), ["a1 NO [UNAVAILABLE] Mail server refused the relay's login: ask the administrator"]);
    assert.equal(tokens.rejectedCalls, 1);
    assert.equal(server.attempts.length, 2);
    assert.match(worldOf().logText(), /"level":"warn".*login failed upstream: the mail server refused the access token even after a refresh/);
  });

  test('the upstream refuses the session for another reason (NO [LIMIT]): NO [UNAVAILABLE] busy, the token is not refreshed', async () => {
    const server = await upstream({ auth: () => 'limit' });
    const { port, tokens } = await relay({ upstreamPort: server.port });
    const { client } = await device(port);
    assert.deepEqual(await client.imap('a1', `LOGIN ${MFP.username} ${MFP.password}`), ['a1 NO [UNAVAILABLE] Mail server busy, try again later']);
    assert.equal(tokens.rejectedCalls, 0);
    assert.equal(server.attempts.length, 1);
    assert.match(worldOf().logText(), /refused the session for a reason other than the token.*NO \[LIMIT\] Maximum number of connections/);
  });

  test('upstream down: NO [UNAVAILABLE], and the token source is not asked at all', async () => {
    const { port, tokens } = await relay({ upstreamPort: await closedPort() });
    const { client } = await device(port);
    assert.deepEqual(await client.imap('a1', `LOGIN ${MFP.username} ${MFP.password}`), ['a1 NO [UNAVAILABLE] Mail server unreachable, try again later']);
    assert.equal(tokens.accessCalls + tokens.rejectedCalls, 0);
    assert.match(worldOf().logText(), /connection refused \(nothing listens there/);
  });

  test('upstream greets with BYE or never greets: NO [UNAVAILABLE]', async () => {
    const busy = await upstream({ greeting: '* BYE Too busy' });
    const silent = await upstream({ greeting: null });
    for (const server of [busy, silent]) {
      const { port, tokens } = await relay({ upstreamPort: server.port, timeouts: { upstreamReplyMs: 300 } });
      const { client } = await device(port);
      assert.deepEqual(await client.imap('a1', `LOGIN ${MFP.username} ${MFP.password}`), ['a1 NO [UNAVAILABLE] Mail server unreachable, try again later']);
      assert.equal(tokens.accessCalls, 0);
    }
    assert.match(worldOf().logText(), /no reply within 300 ms/);
  });

  test('an untrusted upstream certificate: NO [UNAVAILABLE], the log names the certificate', async () => {
    const server = await upstream();
    const tokens = fakeTokens();
    const started = await startRelay('imap', { ...worldOf(), caCertPem: '' } as RelayWorld, { upstreamPort: server.port, tokens });
    cleanup(() => started.close());
    const { client } = await device(started.port);
    assert.deepEqual(await client.imap('a1', `LOGIN ${MFP.username} ${MFP.password}`), ['a1 NO [UNAVAILABLE] Mail server unreachable, try again later']);
    assert.match(worldOf().logText(), /TLS certificate is not trusted.*(UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED|UNABLE_TO_GET_ISSUER)/);
    assert.equal(tokens.accessCalls, 0);
  });

  test('token invalid or never acquired: the catalogue reply; nothing deleted, no retry', async () => {
    const server = await upstream();
    const { port, tokens } = await relay({ upstreamPort: server.port });
    const { client } = await device(port);
    tokens.failWith = 'TOKEN_INVALID';
    assert.deepEqual(await client.imap('a1', `LOGIN ${MFP.username} ${MFP.password}`), ['a1 NO [UNAVAILABLE] Relay mailbox token is invalid: ask the administrator to sign in again']);
    tokens.failWith = 'TOKEN_NOT_ACQUIRED';
    assert.deepEqual(await client.imap('a2', `LOGIN ${MFP.username} ${MFP.password}`), ['a2 NO [UNAVAILABLE] Relay has no mailbox token yet: ask the administrator to sign in']);
    assert.equal(tokens.rejectedCalls, 0);
    // The upstream was reached (greeting) but never saw a token.
    assert.equal(server.attempts.length, 0);
    assert.match(worldOf().logText(), /"level":"warn".*the token is no longer valid/);
  });
});

describe('IMAP front: TLS on the device side', () => {
  test('starttls listener: LOGINDISABLED and no AUTH= before STARTTLS, LOGIN refused, then TLS and a login', async () => {
    const server = await upstream({ capabilitiesInOk: true });
    const { port } = await relay({ upstreamPort: server.port, tls: 'starttls' });
    const { client, greeting } = await device(port);
    assert.equal(greeting, '* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL+ ID STARTTLS LOGINDISABLED] xoauth2-relay IMAP ready');
    assert.deepEqual(await client.imap('a1', `LOGIN ${MFP.username} ${MFP.password}`), ['a1 NO [PRIVACYREQUIRED] Use STARTTLS before logging in']);
    assert.deepEqual(await client.imap('a2', 'AUTHENTICATE PLAIN'), ['a2 NO [PRIVACYREQUIRED] Use STARTTLS before logging in']);
    assert.deepEqual(await client.imap('a3', 'STARTTLS'), ['a3 OK Begin TLS negotiation now']);
    await client.startTls();
    assert.ok(client.encrypted);
    assert.deepEqual(await client.imap('a4', 'CAPABILITY'), ['* CAPABILITY IMAP4rev1 SASL-IR LITERAL+ ID AUTH=PLAIN AUTH=LOGIN', 'a4 OK CAPABILITY completed']);
    assert.deepEqual(await client.imap('a5', 'STARTTLS'), ['a5 BAD STARTTLS not available: TLS is already active']);
    assert.deepEqual(await client.imap('a6', `LOGIN ${MFP.username} ${MFP.password}`), [`a6 OK [CAPABILITY ${upstreamCapabilities}] Logged in`]);
    assert.deepEqual(await client.imap('a7', 'NOOP'), ['* ECHO a7 NOOP', 'a7 OK upstream']);
    assert.equal(server.attempts.length, 1);
  });

  test('STARTTLS with a command pipelined behind it in plain text: the injected command is discarded', async () => {
    const server = await upstream({ capabilitiesInOk: true });
    const { port } = await relay({ upstreamPort: server.port, tls: 'starttls' });
    const { client } = await device(port);
    await client.write('a1 STARTTLS\r\nx1 CAPABILITY\r\n');
    assert.equal(await client.readLine(), 'a1 OK Begin TLS negotiation now');
    await client.startTls();
    assert.deepEqual(await client.imap('a2', 'NOOP'), ['a2 OK NOOP completed']);
    assert.match(worldOf().logText(), /discarded data sent before the TLS handshake/);
  });

  test('implicit TLS listener (IMAPS): greeting over TLS and a login', async () => {
    const server = await upstream({ capabilitiesInOk: true });
    const { port } = await relay({ upstreamPort: server.port, tls: 'implicit' });
    const { client, greeting } = await device(port, { tls: true });
    assert.match(greeting, /AUTH=PLAIN/);
    assert.doesNotMatch(greeting, /STARTTLS/);
    assert.deepEqual(await client.imap('a1', `LOGIN ${MFP.username} ${MFP.password}`), [`a1 OK [CAPABILITY ${upstreamCapabilities}] Logged in`]);
  });
});

describe('IMAP front: hostile input before login never crashes the relay and never reaches the upstream', () => {
  test('overlong line, huge literals, garbage, half-open connections; a normal login still works afterwards', async () => {
    const server = await upstream({ capabilitiesInOk: true });
    const { port, tokens } = await relay({ upstreamPort: server.port, timeouts: { preAuthMs: 400 } });

    const long = (await device(port)).client;
    await long.write(Buffer.alloc(20_000, 'a'));
    assert.deepEqual(await closedByRelay(long), ['* BYE Line too long']);

    const literal = (await device(port)).client;
    assert.deepEqual(await literal.imap('l1', 'LOGIN {999999999}'), ['l1 BAD [TOOBIG] Literal too large before login']);
    assert.deepEqual(await literal.imap('l2', 'NOOP'), ['l2 OK NOOP completed']);
    await literal.write('l3 LOGIN {999999999+}\r\n');
    assert.deepEqual(await closedByRelay(literal), ['l3 BAD [TOOBIG] Literal too large before login']);

    const garbage = (await device(port)).client;
    const bytes = Buffer.alloc(4000);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7919) % 256;
    await garbage.write(bytes).catch(() => undefined);
    const seen = await closedByRelay(garbage);
    assert.equal(seen.at(-1), '* BYE Too many invalid commands');

    const halfOpen = (await device(port)).client;
    await halfOpen.write('h1 LOGIN mfp'); // no line ending, then silence
    assert.deepEqual(await closedByRelay(halfOpen), ['* BYE Autologout: idle for too long']);

    // A raw socket that says nothing at all.
    const mute = connect({ port, host: '127.0.0.1' });
    mute.on('error', () => undefined);
    mute.resume();
    await new Promise((resolve) => mute.once('close', resolve));

    assert.equal(server.connections, 0);
    assert.equal(tokens.accessCalls, 0);
    const ok = (await device(port)).client;
    assert.deepEqual(await ok.imap('a1', `LOGIN ${MFP.username} ${MFP.password}`), [`a1 OK [CAPABILITY ${upstreamCapabilities}] Logged in`]);
    assert.match(worldOf().logText(), /LINE_TOO_LONG/);
  });

  test('connections per address are limited: the extra one gets BYE and is closed', async () => {
    const server = await upstream();
    const { port } = await relay({ upstreamPort: server.port, maxConnectionsPerAddress: 2 });
    const one = (await device(port)).client;
    const two = (await device(port)).client;
    const three = await device(port);
    assert.equal(three.greeting, '* BYE Too many connections from your address');
    assert.deepEqual(await closedByRelay(three.client), []);
    one.close();
    await sleep(100);
    const four = await device(port);
    assert.match(four.greeting, /^\* OK /);
    void two;
  });
});

describe('IMAP front: session lifetime', () => {
  test('a spliced session with no traffic is closed after idleMs, both sides', async () => {
    const server = await upstream({ capabilitiesInOk: true });
    const { port } = await relay({ upstreamPort: server.port, timeouts: { idleMs: 300 } });
    const { client } = await device(port);
    await client.imap('a1', `LOGIN ${MFP.username} ${MFP.password}`);
    const started = Date.now();
    await closedByRelay(client);
    assert.ok(Date.now() - started >= 250);
    await sleep(50);
    assert.equal(server.open, 0);
    assert.match(worldOf().logText(), /"end":"idle-timeout"/);
  });

  test('close(): a pre-login session is told BYE at once, a spliced one is cut after drainMs, the port closes', async () => {
    const server = await upstream({ capabilitiesInOk: true });
    const tokens = fakeTokens();
    const started = await startRelay('imap', worldOf(), { upstreamPort: server.port, tokens, drainMs: 300 });
    const waiting = (await device(started.port)).client;
    const spliced = (await device(started.port)).client;
    await spliced.imap('a1', `LOGIN ${MFP.username} ${MFP.password}`);
    assert.equal(started.listener.registry.count('imap'), 2);
    assert.deepEqual(started.listener.registry.list().map((s) => s.phase).sort(), ['pre-auth', 'spliced']);
    const closing = started.close();
    assert.deepEqual(await closedByRelay(waiting), ['* BYE Relay shutting down, try again later']);
    await closedByRelay(spliced);
    await closing;
    assert.equal(started.listener.registry.count(), 0);
    await assert.rejects(LineClient.connect({ port: started.port }), /ECONNREFUSED/);
  });
});
