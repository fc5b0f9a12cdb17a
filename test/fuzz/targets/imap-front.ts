/**
 * The IMAP pre-auth front under generated input: sequences of plausible commands (every pre-login command, post-login
 * ones, literals synchronising and not, SASL continuations, `*`) mixed with raw bytes, split at random. Properties:
 * no fault escapes, every line the relay says is an IMAP response, its output is bounded, nothing reaches the
 * upstream, the session ends with the connection; afterwards a real device logs in and is spliced.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { LineClient } from '../../support/peers/line-client.js';
import { MFP } from '../../transport/support/relay-fixture.js';
import type { FuzzTarget } from '../fuzz-target.js';
import { checkFront, exchange, startFrontWorld } from './front-exchange.js';
import { chunked } from './generators.js';

const IMAP_LINE = /^(\* (OK|NO|BAD|BYE|CAPABILITY|ID)( |$)|\+( |$)|[\x21-\x7e]+ (OK|NO|BAD)( |$))/;

const atom = fc.stringMatching(/^[A-Za-z0-9._@-]{1,12}$/);
const quoted = fc.string({ maxLength: 20 }).map((s) => `"${s.replace(/[\\"]/g, '\\$&')}"`);
const literal = fc.tuple(fc.string({ maxLength: 16 }), fc.boolean()).map(([s, plus]) => `{${Buffer.byteLength(s)}${plus ? '+' : ''}}\r\n${s}`);
const hugeLiteral = fc.integer({ min: 65_000, max: 2 ** 31 }).map((n) => `{${n}}`);
const argument = fc.oneof(atom, quoted, literal, hugeLiteral, fc.constant('NIL'), fc.constant('("name" "scanner")'), fc.constant('('));
const name = fc.constantFrom('LOGIN', 'AUTHENTICATE', 'NOOP', 'CAPABILITY', 'ID', 'STARTTLS', 'LOGOUT', 'SELECT', 'APPEND', 'FETCH', 'login', 'XYZZY', '');
const command = fc.tuple(fc.oneof(atom, fc.constantFrom('*', '+', '')), name, fc.array(argument, { maxLength: 4 })).map(([tag, n, args]) => `${tag} ${n}${args.length ? ` ${args.join(' ')}` : ''}\r\n`);
const sasl = fc.oneof(fc.base64String({ maxLength: 40 }), fc.constantFrom('*', '=', 'AGZheABmYXg=')).map((s) => `${s}\r\n`);
const raw = fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString('latin1'));
const input = fc.array(fc.oneof({ weight: 6, arbitrary: command }, { weight: 2, arbitrary: sasl }, { weight: 1, arbitrary: raw }), { minLength: 1, maxLength: 12 });

export const imapFrontTarget: FuzzTarget<Buffer[]> = {
  name: 'imap-front',
  async setup() {
    const front = await startFrontWorld('imap');
    return {
      arbitrary: chunked(input.map((parts) => Buffer.from(parts.join(''), 'latin1'))),
      async check(chunks) {
        await checkFront(front, await exchange(front.relay.port, chunks), IMAP_LINE);
      },
      async afterwards() {
        const client = await LineClient.connect({ port: front.relay.port, timeoutMs: 5000 });
        try {
          assert.match(await client.readLine(), /^\* OK /);
          const answer = await client.imap('a1', `LOGIN ${MFP.username} ${MFP.password}`);
          assert.match(answer.at(-1)!, /^a1 OK /);
          assert.equal(front.server.connections, 1);
        } finally {
          client.close();
        }
      },
      stop: () => front.stop(),
    };
  },
};
