/**
 * The IMAP front decides on LOGIN and AUTHENTICATE before it invites anything: a synchronising literal (`{n}`)
 * gets its `+` only when the command may run now, so a device on a `starttls` listener is never asked to send
 * its password in clear text only to be told PRIVACYREQUIRED (RFC 9051 §7.5: the tagged answer replaces the
 * continuation, and the client then sends neither the literal nor the rest of the line).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FailureThrottle } from '../../src/auth/failure-throttle.js';
import { MFP } from '../transport/support/relay-fixture.js';
import { useFrontHarness } from '../transport/support/front-harness.js';

const { upstream, relay, device } = useFrontHarness('imap');

describe('IMAP front: no invitation to send a secret it will refuse', () => {
  test('LOGIN {n} before STARTTLS: NO [PRIVACYREQUIRED] at once, no "+", and the session goes on', async () => {
    const server = await upstream();
    const { port } = await relay({ upstreamPort: server.port, tls: 'starttls' });
    const { client } = await device(port);
    client.send(`a1 LOGIN {${MFP.username.length}}`);
    assert.equal(await client.readLine(), 'a1 NO [PRIVACYREQUIRED] Use STARTTLS before logging in');
    // The next line is the next command's answer: nothing was read as a literal.
    assert.deepEqual(await client.imap('a2', 'NOOP'), ['a2 OK NOOP completed']);
    assert.equal(server.connections, 0);
  });

  test('after STARTTLS the same LOGIN {n} is invited and logs in', async () => {
    const server = await upstream({ capabilitiesInOk: true });
    const { port } = await relay({ upstreamPort: server.port, tls: 'starttls' });
    const { client } = await device(port);
    assert.deepEqual(await client.imap('s1', 'STARTTLS'), ['s1 OK Begin TLS negotiation now']);
    await client.startTls();
    client.send(`a1 LOGIN {${MFP.username.length}}`);
    assert.equal(await client.readLine(), '+ Ready for literal data');
    client.send(`${MFP.username} ${MFP.password}`);
    assert.match(await client.readLine(), /^a1 OK /);
  });

  test('a command not allowed before login gets BAD instead of "+": SELECT {5}, an unknown command {3}', async () => {
    const server = await upstream();
    const { port } = await relay({ upstreamPort: server.port });
    const { client } = await device(port);
    client.send('b1 SELECT {5}');
    assert.equal(await client.readLine(), 'b1 BAD SELECT not allowed before login');
    client.send('b2 FROB {3}');
    assert.equal(await client.readLine(), 'b2 BAD Unknown command');
    assert.deepEqual(await client.imap('b3', 'NOOP'), ['b3 OK NOOP completed']);
  });

  test('an address under back-off is refused before the literal and before the SASL continuation', async () => {
    const server = await upstream();
    const throttle = new FailureThrottle({ freeFailures: 0, baseBlockMs: 60_000 });
    throttle.failed('127.0.0.1');
    const { port } = await relay({ upstreamPort: server.port, throttle });
    const { client } = await device(port);
    client.send('c1 LOGIN {3}');
    assert.equal(await client.readLine(), 'c1 NO [UNAVAILABLE] Too many failed logins, try again later');
    assert.deepEqual(await client.imap('c2', 'AUTHENTICATE PLAIN'), ['c2 NO [UNAVAILABLE] Too many failed logins, try again later']);
    assert.equal(server.connections, 0);
  });
});
