/**
 * The IMAP front against a scripted upstream over real sockets, the pre-login dialogue and the logins: what the
 * device sees byte by byte, what reached the upstream (and that nothing did before a verified login), the token
 * source's counters, and the log.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FAX, MAILBOX, MFP } from '../transport/support/relay-fixture.js';
import { closedByRelay, useFrontHarness } from '../transport/support/front-harness.js';
import { upstreamCapabilities, type ScriptedServer } from '../transport/support/scripted-mail-server.js';

const { world: worldOf, upstream, relay, device } = useFrontHarness('imap');

function xoauth2Of(server: ScriptedServer, connection = 0): { user: string; token: string } {
  const line = server.lines[connection]!.find((l) => l.startsWith('A1 AUTHENTICATE XOAUTH2 '))!;
  const text = Buffer.from(line.split(' ')[3]!, 'base64').toString('utf8');
  const [user, auth] = text.split('\x01');
  return { user: user!.slice('user='.length), token: auth!.slice('auth=Bearer '.length) };
}

describe('IMAP front: pre-login dialogue', () => {
  test('greeting, CAPABILITY, NOOP, ID, unknown and post-login commands, LOGOUT: answered by the relay, upstream untouched', async () => {
    const server = await upstream();
    const { port, tokens } = await relay({ upstreamPort: server.port });
    const { client, greeting } = await device(port);
    assert.equal(greeting, '* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL+ ID AUTH=PLAIN AUTH=LOGIN] xoauth2-relay IMAP ready');
    assert.deepEqual(await client.imap('c1', 'CAPABILITY'), ['* CAPABILITY IMAP4rev1 SASL-IR LITERAL+ ID AUTH=PLAIN AUTH=LOGIN', 'c1 OK CAPABILITY completed']);
    assert.deepEqual(await client.imap('c2', 'noop'), ['c2 OK NOOP completed']);
    assert.deepEqual(await client.imap('c3', 'ID ("name" "Scanner 9000" "version" "1.2")'), ['* ID NIL', 'c3 OK ID completed']);
    assert.deepEqual(await client.imap('c4', 'ID NIL'), ['* ID NIL', 'c4 OK ID completed']);
    assert.deepEqual(await client.imap('c5', 'SELECT INBOX'), ['c5 BAD SELECT not allowed before login']);
    assert.deepEqual(await client.imap('c6', 'FROBNICATE'), ['c6 BAD Unknown command']);
    assert.deepEqual(await client.imap('c7', 'STARTTLS'), ['c7 BAD STARTTLS not available: this listener has no TLS']);
    assert.deepEqual(await client.imap('c8', 'CAPABILITY extra'), ['c8 BAD CAPABILITY takes no arguments']);
    assert.deepEqual(await client.imap('c9', 'LOGOUT'), ['* BYE xoauth2-relay logging out', 'c9 OK LOGOUT completed']);
    await closedByRelay(client);
    assert.equal(server.connections, 0);
    assert.equal(tokens.accessCalls, 0);
  });

  test('syntax errors: BAD with the tag when there is one, * BAD otherwise', async () => {
    const server = await upstream();
    const { port } = await relay({ upstreamPort: server.port });
    const { client } = await device(port);
    client.send('+plus NOOP');
    assert.equal(await client.readLine(), '* BAD Invalid tag');
    client.send('');
    assert.equal(await client.readLine(), '* BAD Empty command line');
    client.send('t1');
    assert.equal(await client.readLine(), 't1 BAD Missing command');
    assert.deepEqual(await client.imap('t2', 'LOGIN "unterminated'), ['t2 BAD Unterminated quoted string']);
    assert.deepEqual(await client.imap('t3', 'LOGIN "a\\x" b'), ['t3 BAD Invalid escape in a quoted string (only \\" and \\\\)']);
    assert.deepEqual(await client.imap('t4', 'LOGIN onlyuser'), ['t4 BAD LOGIN takes a user name and a password']);
    assert.deepEqual(await client.imap('t5', 'ID (("a")'), ['t5 BAD Unbalanced parenthesis']);
    assert.equal(server.connections, 0);
  });
});

describe('IMAP front: LOGIN and AUTHENTICATE, then XOAUTH2 upstream and splice', () => {
  test('LOGIN with atoms: tagged OK with the upstream capabilities, XOAUTH2 as Microsoft documents it, then bytes spliced', async () => {
    const server = await upstream();
    const { port, tokens } = await relay({ upstreamPort: server.port });
    const { client } = await device(port);
    assert.deepEqual(await client.imap('a1', `LOGIN ${MFP.username} ${MFP.password}`), [`a1 OK [CAPABILITY ${upstreamCapabilities}] Logged in`]);
    // Exchange's OK carries no capabilities: the relay asked with A2 CAPABILITY.
    assert.deepEqual(server.lines[0], [server.lines[0]![0], 'A2 CAPABILITY']);
    assert.deepEqual(xoauth2Of(server), { user: MAILBOX, token: tokens.issued[0] });
    assert.match(server.lines[0]![0]!, /^A1 AUTHENTICATE XOAUTH2 [A-Za-z0-9+/]+=*$/);
    // From here on the upstream answers: the relay neither parses nor rewrites.
    assert.deepEqual(await client.imap('b1', 'SELECT INBOX'), ['* ECHO b1 SELECT INBOX', 'b1 OK upstream']);
    assert.deepEqual(await client.imap('b2', 'NOOP'), ['* ECHO b2 NOOP', 'b2 OK upstream']);
    assert.deepEqual(await client.imap('b3', 'LOGOUT'), ['* BYE scripted upstream logging out', 'b3 OK LOGOUT completed.']);
    await closedByRelay(client);
    assert.equal(tokens.accessCalls, 1);
    assert.equal(tokens.rejectedCalls, 0);
    assert.match(worldOf().logText(), /device logged in: session spliced to the mail server/);
  });

  test('capabilities from the tagged OK (Dovecot style): no extra CAPABILITY upstream', async () => {
    const server = await upstream({ capabilitiesInOk: true });
    const { port } = await relay({ upstreamPort: server.port });
    const { client } = await device(port);
    assert.deepEqual(await client.imap('a1', `LOGIN ${MFP.username} ${MFP.password}`), [`a1 OK [CAPABILITY ${upstreamCapabilities}] Logged in`]);
    assert.equal(server.lines[0]!.length, 1);
  });

  test('LOGIN with quoted strings and escapes: a password with a quote, a backslash, a space and non-ASCII', async () => {
    const server = await upstream({ capabilitiesInOk: true });
    const { port } = await relay({ upstreamPort: server.port });
    const { client } = await device(port);
    const quoted = `"${FAX.password.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
    assert.deepEqual(await client.imap('a1', `LOGIN "${FAX.username}" ${quoted}`), [`a1 OK [CAPABILITY ${upstreamCapabilities}] Logged in`]);
  });

  test('LOGIN with synchronising literals: "+ Ready" before each, byte counts in UTF-8', async () => {
    const server = await upstream({ capabilitiesInOk: true });
    const { port } = await relay({ upstreamPort: server.port });
    const { client } = await device(port);
    const pass = Buffer.from(FAX.password, 'utf8');
    client.send(`a1 LOGIN {${FAX.username.length}}`);
    assert.equal(await client.readLine(), '+ Ready for literal data');
    client.send(`${FAX.username} {${pass.length}}`);
    assert.equal(await client.readLine(), '+ Ready for literal data');
    await client.write(Buffer.concat([pass, Buffer.from('\r\n')]));
    assert.equal(await client.readLine(), `a1 OK [CAPABILITY ${upstreamCapabilities}] Logged in`);
  });

  test('LOGIN with non-synchronising literals {n+} (LITERAL+): no continuation, all in one write', async () => {
    const server = await upstream({ capabilitiesInOk: true });
    const { port } = await relay({ upstreamPort: server.port });
    const { client } = await device(port);
    const pass = Buffer.from(FAX.password, 'utf8');
    await client.write(Buffer.concat([Buffer.from(`a1 LOGIN {${FAX.username.length}+}\r\n${FAX.username} {${pass.length}+}\r\n`), pass, Buffer.from('\r\n')]));
    assert.equal(await client.readLine(), `a1 OK [CAPABILITY ${upstreamCapabilities}] Logged in`);
  });

  test('AUTHENTICATE PLAIN with SASL-IR, with a continuation, and cancelled with *', async () => {
    const server = await upstream({ capabilitiesInOk: true });
    const { port } = await relay({ upstreamPort: server.port });
    const plain = Buffer.from(`\0${MFP.username}\0${MFP.password}`).toString('base64');

    const first = (await device(port)).client;
    assert.deepEqual(await first.imap('a1', `AUTHENTICATE PLAIN ${plain}`), [`a1 OK [CAPABILITY ${upstreamCapabilities}] Logged in`]);

    const second = (await device(port)).client;
    const seen: string[] = [];
    const reply = await second.imap('a2', 'authenticate plain', (line) => (seen.push(line), plain));
    assert.deepEqual(seen, ['+ ']);
    assert.deepEqual(reply, ['+ ', `a2 OK [CAPABILITY ${upstreamCapabilities}] Logged in`]);

    const third = (await device(port)).client;
    assert.deepEqual(await third.imap('a3', 'AUTHENTICATE PLAIN', () => '*'), ['+ ', 'a3 BAD Authentication cancelled']);
    assert.deepEqual(await third.imap('a4', 'AUTHENTICATE PLAIN bm90IHBsYWlu'), ['a4 BAD Invalid SASL response: not a valid PLAIN response']);
    assert.deepEqual(await third.imap('a5', 'AUTHENTICATE CRAM-MD5'), ['a5 NO Unsupported authentication mechanism: use PLAIN or LOGIN']);
    assert.deepEqual(await third.imap('a6', 'NOOP'), ['a6 OK NOOP completed']);
    assert.equal(server.connections, 2);
  });

  test('AUTHENTICATE LOGIN: user name and password prompts', async () => {
    const server = await upstream({ capabilitiesInOk: true });
    const { port } = await relay({ upstreamPort: server.port });
    const { client } = await device(port);
    const answers = [Buffer.from(MFP.username).toString('base64'), Buffer.from(MFP.password).toString('base64')];
    const reply = await client.imap('a1', 'AUTHENTICATE LOGIN', () => answers.shift()!);
    assert.deepEqual(reply, ['+ VXNlcm5hbWU6', '+ UGFzc3dvcmQ6', `a1 OK [CAPABILITY ${upstreamCapabilities}] Logged in`]);
  });

  test('commands pipelined after LOGIN reach the upstream after the splice, in order', async () => {
    const server = await upstream({ capabilitiesInOk: true });
    const { port } = await relay({ upstreamPort: server.port });
    const { client } = await device(port);
    await client.write(`a1 LOGIN ${MFP.username} ${MFP.password}\r\nb1 NOOP\r\n`);
    assert.equal(await client.readLine(), `a1 OK [CAPABILITY ${upstreamCapabilities}] Logged in`);
    assert.equal(await client.readLine(), '* ECHO b1 NOOP');
    assert.equal(await client.readLine(), 'b1 OK upstream');
  });
});

