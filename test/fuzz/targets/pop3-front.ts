/**
 * The POP3 pre-auth front under generated input: USER/PASS, AUTH with and without initial responses, continuations,
 * `*`, APOP, STLS, transaction commands before login, raw bytes; split at random. Same properties as the IMAP
 * front; afterwards a real device logs in.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { LineClient } from '../../support/peers/line-client.js';
import { MFP } from '../../transport/support/relay-fixture.js';
import type { FuzzTarget } from '../fuzz-target.js';
import { checkFront, exchange, startFrontWorld } from './front-exchange.js';
import { chunked } from './generators.js';

// Status lines, continuations, and the lines of CAPA and a bare AUTH's mechanism list (capital words, ".").
const POP3_LINE = /^(\+OK( |$)|-ERR( |$)|\+ |\.$|[A-Z][A-Za-z0-9 ._=/-]*$)/;

const word = fc.stringMatching(/^[A-Za-z0-9._@ -]{0,16}$/);
const name = fc.constantFrom('USER', 'PASS', 'AUTH', 'APOP', 'STLS', 'CAPA', 'NOOP', 'QUIT', 'STAT', 'RETR', 'user', 'XX', 'TOOLONG');
const command = fc.tuple(name, fc.option(fc.oneof(word, fc.constantFrom('PLAIN', 'LOGIN', 'PLAIN =', 'LOGIN dXNlcg==', 'XOAUTH2 x'))))
  .map(([n, arg]) => `${n}${arg === null ? '' : ` ${arg}`}\r\n`);
const sasl = fc.oneof(fc.base64String({ maxLength: 40 }), fc.constantFrom('*', '=')).map((s) => `${s}\r\n`);
const raw = fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString('latin1'));
const input = fc.array(fc.oneof({ weight: 6, arbitrary: command }, { weight: 2, arbitrary: sasl }, { weight: 1, arbitrary: raw }), { minLength: 1, maxLength: 12 });

export const pop3FrontTarget: FuzzTarget<Buffer[]> = {
  name: 'pop3-front',
  async setup() {
    const front = await startFrontWorld('pop3');
    return {
      arbitrary: chunked(input.map((parts) => Buffer.from(parts.join(''), 'latin1'))),
      async check(chunks) {
        await checkFront(front, await exchange(front.relay.port, chunks), POP3_LINE);
      },
      async afterwards() {
        const client = await LineClient.connect({ port: front.relay.port, timeoutMs: 5000 });
        try {
          assert.match(await client.readLine(), /^\+OK /);
          client.send(`USER ${MFP.username}`);
          assert.equal(await client.readLine(), '+OK Send PASS');
          client.send(`PASS ${MFP.password}`);
          assert.equal(await client.readLine(), '+OK Logged in');
          assert.equal(front.server.connections, 1);
        } finally {
          client.close();
        }
      },
      stop: () => front.stop(),
    };
  },
};
