/**
 * The server side of PLAIN and LOGIN exchanges, protocol-free: initial responses, continuations, `=`, `*`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runSaslExchange, type SaslChallenge } from '../../src/transport/sasl-exchange.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');

/** A client that answers the challenges in order and records them. */
function client(answers: Array<string | null>): { challenge: SaslChallenge; asked: string[] } {
  const asked: string[] = [];
  return { asked, challenge: async (c) => (asked.push(c), answers.shift() ?? null) };
}

test('PLAIN with an initial response asks nothing', async () => {
  const c = client([]);
  assert.deepEqual(await runSaslExchange('PLAIN', b64('\0mfp\0pw'), c.challenge), { outcome: 'credentials', username: 'mfp', password: 'pw' });
  assert.deepEqual(c.asked, []);
});

test('PLAIN without one: an empty challenge, then the response; authzid equal to the user is fine', async () => {
  const c = client([b64('mfp\0mfp\0pw')]);
  assert.deepEqual(await runSaslExchange('PLAIN', undefined, c.challenge), { outcome: 'credentials', username: 'mfp', password: 'pw' });
  assert.deepEqual(c.asked, ['']);
});

test('PLAIN: * cancels, a closed connection is reported, malformed and foreign authzid are refused', async () => {
  assert.deepEqual(await runSaslExchange('PLAIN', undefined, client(['*']).challenge), { outcome: 'cancelled' });
  assert.deepEqual(await runSaslExchange('PLAIN', undefined, client([null]).challenge), { outcome: 'closed' });
  assert.equal((await runSaslExchange('PLAIN', '=', client([]).challenge)).outcome, 'malformed');
  assert.equal((await runSaslExchange('PLAIN', 'not base64!', client([]).challenge)).outcome, 'malformed');
  assert.deepEqual(await runSaslExchange('PLAIN', b64('admin\0mfp\0pw'), client([]).challenge), { outcome: 'malformed', reason: 'authorization identity not supported' });
});

test('LOGIN: both prompts, or the user name as initial response; * at either prompt cancels', async () => {
  const c = client([b64('mfp'), b64('pw')]);
  assert.deepEqual(await runSaslExchange('LOGIN', undefined, c.challenge), { outcome: 'credentials', username: 'mfp', password: 'pw' });
  assert.deepEqual(c.asked, ['VXNlcm5hbWU6', 'UGFzc3dvcmQ6']);
  const ir = client([b64('pw')]);
  assert.deepEqual(await runSaslExchange('LOGIN', b64('mfp'), ir.challenge), { outcome: 'credentials', username: 'mfp', password: 'pw' });
  assert.deepEqual(ir.asked, ['UGFzc3dvcmQ6']);
  assert.deepEqual(await runSaslExchange('LOGIN', '=', client([b64('mfp'), '*']).challenge), { outcome: 'cancelled' });
  assert.equal((await runSaslExchange('LOGIN', undefined, client([b64('bad\u0001name'), b64('pw')]).challenge)).outcome, 'malformed');
});
