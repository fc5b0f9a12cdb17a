/**
 * The POP3 front against a scripted upstream over real sockets: what the device sees, what reached the upstream
 * (AUTH XOAUTH2 in Microsoft's continuation form), the token source's counters, and the log.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePop3Command } from '../../src/pop3/pop3-front.js';
import type { LineClient } from '../support/peers/line-client.js';
import { FAX, MAILBOX, MFP, closedPort } from '../transport/support/relay-fixture.js';
import { closedByRelay, useFrontHarness } from '../transport/support/front-harness.js';
import type { ScriptedServer } from '../transport/support/scripted-mail-server.js';

const { world: worldOf, upstream, relay, device } = useFrontHarness('pop3');

async function ask(client: LineClient, line: string): Promise<string> {
  client.send(line);
  return client.readLine();
}

function xoauth2Of(server: ScriptedServer, connection = 0): { user: string; token: string } {
  const lines = server.lines[connection]!;
  const text = Buffer.from(lines[lines.indexOf('AUTH XOAUTH2') + 1]!, 'base64').toString('utf8');
  const [user, auth] = text.split('\x01');
  return { user: user!.slice('user='.length), token: auth!.slice('auth=Bearer '.length) };
}

const plain = (user: string, pass: string) => Buffer.from(`\0${user}\0${pass}`).toString('base64');

test('parsePop3Command: keyword of 3-4 letters, the argument kept byte for byte', () => {
  assert.deepEqual(parsePop3Command('user mfp'), { name: 'USER', argument: 'mfp' });
  assert.deepEqual(parsePop3Command('PASS  two  spaces '), { name: 'PASS', argument: ' two  spaces ' });
  assert.deepEqual(parsePop3Command('CAPA'), { name: 'CAPA', argument: '' });
  assert.equal(parsePop3Command('TOOLONG x'), null);
  assert.equal(parsePop3Command('\u0000\u0001'), null);
  assert.equal(parsePop3Command(''), null);
});

describe('POP3 front: pre-login dialogue', () => {
  test('greeting, CAPA, AUTH list, NOOP, APOP refused, commands before login, QUIT: upstream untouched', async () => {
    const server = await upstream();
    const { port, tokens } = await relay({ upstreamPort: server.port });
    const { client, greeting } = await device(port);
    assert.equal(greeting, '+OK xoauth2-relay POP3 ready');
    assert.equal(await ask(client, 'CAPA'), '+OK Capability list follows');
    assert.deepEqual(await client.pop3MultiLine(), ['USER', 'SASL PLAIN LOGIN', 'RESP-CODES', 'AUTH-RESP-CODE', 'TOP', 'UIDL', 'IMPLEMENTATION xoauth2-relay']);
    assert.equal(await ask(client, 'AUTH'), '+OK');
    assert.deepEqual(await client.pop3MultiLine(), ['PLAIN', 'LOGIN']);
    assert.equal(await ask(client, 'NOOP'), '+OK');
    assert.equal(await ask(client, 'APOP mfp c4c9334bac560ecc979e58001b3e22fb'), '-ERR APOP is not supported: use USER/PASS or AUTH PLAIN');
    assert.equal(await ask(client, 'STAT'), '-ERR Not logged in');
    assert.equal(await ask(client, 'PASS secret'), '-ERR Send USER first');
    assert.equal(await ask(client, 'STLS'), '-ERR STLS not available: this listener has no TLS');
    assert.equal(await ask(client, 'XYZZY'), '-ERR Unknown command');
    assert.equal(await ask(client, 'AUTH CRAM-MD5'), '-ERR Unsupported authentication mechanism: use PLAIN or LOGIN');
    assert.equal(await ask(client, 'QUIT'), '+OK xoauth2-relay signing off');
    await closedByRelay(client);
    assert.equal(server.connections, 0);
    assert.equal(tokens.accessCalls, 0);
  });
});

describe('POP3 front: USER/PASS and AUTH, then XOAUTH2 upstream and splice', () => {
  test('USER/PASS: +OK, XOAUTH2 after a continuation as Microsoft documents it, then bytes spliced', async () => {
    const server = await upstream();
    const { port, tokens } = await relay({ upstreamPort: server.port });
    const { client } = await device(port);
    assert.equal(await ask(client, `USER ${MFP.username}`), '+OK Send PASS');
    assert.equal(await ask(client, `PASS ${MFP.password}`), '+OK Logged in');
    const lines = server.lines[0]!;
    assert.equal(lines[0], 'AUTH XOAUTH2'); // no initial response: the continuation form
    assert.match(lines[1]!, /^[A-Za-z0-9+/]+=*$/);
    assert.deepEqual(xoauth2Of(server), { user: MAILBOX, token: tokens.issued[0] });
    assert.equal(await ask(client, 'STAT'), '+OK echo STAT');
    assert.equal(await ask(client, 'BLOB 100000'), '+OK blob follows');
    const body = await client.pop3MultiLine();
    assert.equal(body.join('').length, 100_000);
    assert.equal(await ask(client, 'QUIT'), '+OK scripted upstream signing off');
    await closedByRelay(client);
    assert.equal(tokens.rejectedCalls, 0);
  });

  test('PASS keeps the whole rest of the line: spaces, quotes, backslashes, non-ASCII', async () => {
    const server = await upstream();
    const { port } = await relay({ upstreamPort: server.port });
    const { client } = await device(port);
    assert.equal(await ask(client, `USER ${FAX.username}`), '+OK Send PASS');
    assert.equal(await ask(client, `PASS ${FAX.password}`), '+OK Logged in');
  });

  test('AUTH PLAIN with an initial response, with a continuation, cancelled with *, malformed', async () => {
    const server = await upstream();
    const { port } = await relay({ upstreamPort: server.port });

    const first = (await device(port)).client;
    assert.equal(await ask(first, `AUTH PLAIN ${plain(MFP.username, MFP.password)}`), '+OK Logged in');

    const second = (await device(port)).client;
    assert.equal(await ask(second, 'AUTH PLAIN'), '+ ');
    assert.equal(await ask(second, plain(FAX.username, FAX.password)), '+OK Logged in');

    const third = (await device(port)).client;
    assert.equal(await ask(third, 'auth plain'), '+ ');
    assert.equal(await ask(third, '*'), '-ERR Authentication cancelled');
    assert.equal(await ask(third, 'AUTH PLAIN %%%'), '-ERR Invalid SASL response: not a valid PLAIN response');
    assert.equal(await ask(third, 'AUTH PLAIN ='), '-ERR Invalid SASL response: not a valid PLAIN response');
    assert.equal(await ask(third, 'NOOP'), '+OK');
    assert.equal(server.connections, 2);
  });

  test('AUTH LOGIN: prompts for user name and password; the user name may come as initial response', async () => {
    const server = await upstream();
    const { port } = await relay({ upstreamPort: server.port });
    const b64 = (s: string) => Buffer.from(s).toString('base64');

    const first = (await device(port)).client;
    assert.equal(await ask(first, 'AUTH LOGIN'), '+ VXNlcm5hbWU6');
    assert.equal(await ask(first, b64(MFP.username)), '+ UGFzc3dvcmQ6');
    assert.equal(await ask(first, b64(MFP.password)), '+OK Logged in');

    const second = (await device(port)).client;
    assert.equal(await ask(second, `AUTH LOGIN ${b64(FAX.username)}`), '+ UGFzc3dvcmQ6');
    assert.equal(await ask(second, b64(FAX.password)), '+OK Logged in');
  });
});

describe('POP3 front: failures', () => {
  test('wrong password and unknown user: -ERR [AUTH], back to AUTHORIZATION, then the back-off', async () => {
    const server = await upstream();
    const { port, tokens } = await relay({ upstreamPort: server.port });
    const { client } = await device(port);
    assert.equal(await ask(client, `USER ${MFP.username}`), '+OK Send PASS');
    assert.equal(await ask(client, 'PASS wrong'), '-ERR [AUTH] Wrong user name or password');
    assert.equal(await ask(client, 'PASS again'), '-ERR Send USER first');
    assert.equal(await ask(client, `AUTH PLAIN ${plain('nobody', 'x')}`), '-ERR [AUTH] Wrong user name or password');
    await ask(client, `USER ${FAX.username}`);
    assert.equal(await ask(client, 'PASS wrong'), '-ERR [AUTH] Wrong user name or password');
    await ask(client, `USER ${FAX.username}`);
    assert.equal(await ask(client, 'PASS wrong'), '-ERR [AUTH] Wrong user name or password');
    await ask(client, `USER ${MFP.username}`);
    assert.equal(await ask(client, `PASS ${MFP.password}`), '-ERR [SYS/TEMP] Too many failed logins, try again later');
    assert.equal(server.connections, 0);
    assert.equal(tokens.accessCalls, 0);
  });

  test('the upstream refuses the first token with an error challenge: answered with an empty line, one refresh, success', async () => {
    const server = await upstream({ auth: (a) => (a.n === 1 ? 'challenge' : 'ok') });
    const { port, tokens } = await relay({ upstreamPort: server.port });
    const { client } = await device(port);
    await ask(client, `USER ${MFP.username}`);
    assert.equal(await ask(client, `PASS ${MFP.password}`), '+OK Logged in');
    assert.equal(tokens.rejectedCalls, 1);
    assert.equal(server.connections, 2);
    assert.equal(server.lines[0]![2], '');
    assert.deepEqual(server.attempts.map((a) => a.token), tokens.issued);
  });

  test('the upstream refuses twice: -ERR [SYS/TEMP], the log says what to check', async () => {
    const server = await upstream({ auth: () => 'no' });
    const { port, tokens } = await relay({ upstreamPort: server.port });
    const { client } = await device(port);
    await ask(client, `USER ${MFP.username}`);
    assert.equal(await ask(client, `PASS ${MFP.password}`), "-ERR [SYS/TEMP] Mail server refused the relay's login: ask the administrator");
    assert.equal(tokens.rejectedCalls, 1);
    assert.match(worldOf().logText(), /POP\.AccessAsUser\.All/);
  });

  test('the upstream refuses the session for another reason (-ERR [IN-USE]): -ERR [SYS/TEMP] busy, no refresh', async () => {
    const server = await upstream({ auth: () => 'limit' });
    const { port, tokens } = await relay({ upstreamPort: server.port });
    const { client } = await device(port);
    assert.equal(await ask(client, `AUTH PLAIN ${plain(MFP.username, MFP.password)}`), '-ERR [SYS/TEMP] Mail server busy, try again later');
    assert.equal(tokens.rejectedCalls, 0);
  });

  test('upstream down: -ERR [SYS/TEMP], the token source not asked', async () => {
    const { port, tokens } = await relay({ upstreamPort: await closedPort() });
    const { client } = await device(port);
    await ask(client, `USER ${MFP.username}`);
    assert.equal(await ask(client, `PASS ${MFP.password}`), '-ERR [SYS/TEMP] Mail server unreachable, try again later');
    assert.equal(tokens.accessCalls + tokens.rejectedCalls, 0);
  });

  test('token invalid: the catalogue reply, no refresh attempted', async () => {
    const server = await upstream();
    const { port, tokens } = await relay({ upstreamPort: server.port });
    tokens.failWith = 'TOKEN_INVALID';
    const { client } = await device(port);
    await ask(client, `USER ${MFP.username}`);
    assert.equal(await ask(client, `PASS ${MFP.password}`), '-ERR [SYS/TEMP] Relay mailbox token is invalid: ask the administrator to sign in again');
    tokens.failWith = 'TOKEN_REFRESH_FAILED';
    assert.equal(await ask(client, `AUTH PLAIN ${plain(MFP.username, MFP.password)}`), '-ERR [SYS/TEMP] Relay cannot reach the identity platform, try again later');
    assert.equal(tokens.rejectedCalls, 0);
    assert.equal(server.attempts.length, 0);
  });
});

describe('POP3 front: TLS on the device side', () => {
  test('starttls listener: STLS offered and USER/PASS/AUTH refused before it; after STLS a login works', async () => {
    const server = await upstream();
    const { port } = await relay({ upstreamPort: server.port, tls: 'starttls' });
    const { client } = await device(port);
    assert.equal(await ask(client, 'CAPA'), '+OK Capability list follows');
    assert.deepEqual(await client.pop3MultiLine(), ['STLS', 'RESP-CODES', 'AUTH-RESP-CODE', 'TOP', 'UIDL', 'IMPLEMENTATION xoauth2-relay']);
    assert.equal(await ask(client, `USER ${MFP.username}`), '-ERR [AUTH] Use STLS before logging in');
    assert.equal(await ask(client, `AUTH PLAIN ${plain(MFP.username, MFP.password)}`), '-ERR [AUTH] Use STLS before logging in');
    assert.equal(await ask(client, 'STLS'), '+OK Begin TLS negotiation now');
    await client.startTls();
    assert.equal(await ask(client, 'CAPA'), '+OK Capability list follows');
    assert.deepEqual(await client.pop3MultiLine(), ['USER', 'SASL PLAIN LOGIN', 'RESP-CODES', 'AUTH-RESP-CODE', 'TOP', 'UIDL', 'IMPLEMENTATION xoauth2-relay']);
    assert.equal(await ask(client, 'STLS'), '-ERR STLS not available: TLS is already active');
    await ask(client, `USER ${MFP.username}`);
    assert.equal(await ask(client, `PASS ${MFP.password}`), '+OK Logged in');
    assert.equal(await ask(client, 'STAT'), '+OK echo STAT');
  });

  test('implicit TLS listener (POP3S)', async () => {
    const server = await upstream();
    const { port } = await relay({ upstreamPort: server.port, tls: 'implicit' });
    const { client, greeting } = await device(port, { tls: true });
    assert.equal(greeting, '+OK xoauth2-relay POP3 ready');
    assert.equal(await ask(client, `AUTH PLAIN ${plain(MFP.username, MFP.password)}`), '+OK Logged in');
  });
});

describe('POP3 front: hostile input before login', () => {
  test('overlong line, garbage and a silent connection are closed; the upstream never sees them', async () => {
    const server = await upstream();
    const { port, tokens } = await relay({ upstreamPort: server.port, timeouts: { preAuthMs: 300 } });

    const long = (await device(port)).client;
    await long.write(`USER ${'u'.repeat(10_000)}\r\n`);
    assert.deepEqual(await closedByRelay(long), ['-ERR Line too long']);

    const garbage = (await device(port)).client;
    await garbage.write(Buffer.from(Array.from({ length: 4000 }, (_, i) => (i * 31) % 256))).catch(() => undefined);
    const seen = await closedByRelay(garbage);
    assert.equal(seen.at(-1), '-ERR Too many invalid commands');

    const silent = (await device(port)).client;
    assert.deepEqual(await closedByRelay(silent), ['-ERR Autologout: idle for too long']);

    assert.equal(server.connections, 0);
    assert.equal(tokens.accessCalls, 0);
    const ok = (await device(port)).client;
    assert.equal(await ask(ok, `AUTH PLAIN ${plain(MFP.username, MFP.password)}`), '+OK Logged in');
  });
});
