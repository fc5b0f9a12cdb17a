import { test } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import {
  createPasswordVerifier,
  hashPassword,
  parsePasswordHash,
  passwordHashProblem,
  verifyPassword,
} from '../../src/auth/password-hash.js';
import { isRelayError } from '../../src/errors.js';

const PASSWORD = 'p@ss:wörd"\\ 🖨';

test('a hash has the documented shape and verifies its password only', async () => {
  const encoded = await hashPassword(PASSWORD);
  assert.match(encoded, /^scrypt\$32768\$8\$1\$[A-Za-z0-9+/]{22}==\$[A-Za-z0-9+/]{43}=$/);
  const parsed = parsePasswordHash(encoded);
  assert.deepEqual([parsed.N, parsed.r, parsed.p, parsed.salt.length, parsed.hash.length], [32768, 8, 1, 16, 32]);
  assert.equal(await verifyPassword(PASSWORD, encoded), true);
  assert.equal(await verifyPassword('p@ss:word"\\ 🖨', encoded), false);
  assert.equal(await verifyPassword(`${PASSWORD} `, encoded), false);
  assert.equal(await verifyPassword('', encoded), false);
  assert.notEqual(await hashPassword(PASSWORD), encoded, 'salted: the same password hashes differently');
});

test('hashes with other valid parameters and unpadded base64 verify', async () => {
  const encoded = await hashPassword('secret', { N: 16384, r: 8, p: 2 });
  assert.match(encoded, /^scrypt\$16384\$8\$2\$/);
  assert.equal(await verifyPassword('secret', encoded), true);
  assert.equal(await verifyPassword('secret', encoded.replace(/=/g, '')), true);
  assert.equal(passwordHashProblem(encoded), undefined);
});

test('malformed hashes get a reason that names the problem and never repeats the hash', async () => {
  const good = await hashPassword('x');
  const [, , , , salt, hash] = good.split('$') as string[];
  const cases: Array<[string, RegExp]> = [
    ['', /must look like scrypt\$32768\$8\$1\$<salt>\$<hash>/],
    ['hunter2', /6 fields/],
    [`bcrypt$32768$8$1$${salt}$${hash}`, /must start with scrypt\$/],
    [`scrypt$32768$8$1$${salt}`, /found 5/],
    [`scrypt$30000$8$1$${salt}$${hash}`, /N must be a power of two/],
    [`scrypt$1024$8$1$${salt}$${hash}`, /N must be a power of two from 16384/],
    [`scrypt$033554432$8$1$${salt}$${hash}`, /whole numbers/],
    [`scrypt$1048576$32$1$${salt}$${hash}`, /MiB/],
    [`scrypt$32768$0$1$${salt}$${hash}`, /whole numbers/],
    [`scrypt$32768$8$99$${salt}$${hash}`, /p must be from 1 to 16/],
    [`scrypt$32768$8$1.5$${salt}$${hash}`, /whole numbers/],
    [`scrypt$32768$8$1$$${hash}`, /salt must be base64/],
    [`scrypt$32768$8$1$c2FsdA==$${hash}`, /salt must be base64 of 16 to 64 bytes/],
    [`scrypt$32768$8$1$${salt}$not*base64`, /hash must be base64/],
    [`scrypt$32768$8$1$${salt}$${hash} x`, /hash must be base64/],
  ];
  for (const [encoded, reason] of cases) {
    const problem = passwordHashProblem(encoded);
    assert.ok(problem, `no problem found in ${encoded}`);
    assert.match(problem, reason, encoded);
    assert.ok(!problem.includes(hash!) && !problem.includes(salt!), 'the reason repeats the hash');
    assert.throws(() => parsePasswordHash(encoded), (err) => isRelayError(err, 'PASSWORD_HASH_INVALID') && err.detail === problem);
    await assert.rejects(verifyPassword('x', encoded), (err) => isRelayError(err, 'PASSWORD_HASH_INVALID'));
  }
  assert.equal(passwordHashProblem(good), undefined);
  await assert.rejects(hashPassword('x', { N: 1000, r: 8, p: 1 }), (err) => isRelayError(err, 'PASSWORD_HASH_INVALID'));
});

async function timed<T>(run: () => Promise<T>): Promise<{ result: T; ms: number }> {
  const start = performance.now();
  const result = await run();
  return { result, ms: performance.now() - start };
}

test('the verifier answers a repeated correct login from its cache, fast', async () => {
  const encoded = await hashPassword(PASSWORD);
  const verifier = createPasswordVerifier();
  const first = await timed(() => verifier.verify('mfp', PASSWORD, encoded));
  const second = await timed(() => verifier.verify('mfp', PASSWORD, encoded));
  assert.equal(first.result, true);
  assert.equal(second.result, true);
  assert.ok(first.ms >= 10, `first check took ${first.ms} ms: scrypt should take longer`);
  assert.ok(second.ms < 5, `cached check took ${second.ms} ms`);
});

test('a wrong password after a success is still refused, at full cost every time', async () => {
  const encoded = await hashPassword(PASSWORD);
  const verifier = createPasswordVerifier();
  assert.equal(await verifier.verify('mfp', PASSWORD, encoded), true);
  for (const wrong of ['', 'p@ss:wörd', `${PASSWORD}x`, PASSWORD.toUpperCase()]) {
    for (let attempt = 0; attempt < 2; attempt++) {
      const { result, ms } = await timed(() => verifier.verify('mfp', wrong, encoded));
      assert.equal(result, false);
      assert.ok(ms >= 10, `wrong password answered in ${ms} ms: it must pay the full scrypt`);
    }
  }
  // The right password under another user name is not in the cache either.
  const other = await timed(() => verifier.verify('other-mfp', PASSWORD, encoded));
  assert.equal(other.result, true);
  assert.ok(other.ms >= 10);
});

test('a changed hash invalidates the cached success', async () => {
  const verifier = createPasswordVerifier();
  const oldHash = await hashPassword(PASSWORD);
  assert.equal(await verifier.verify('mfp', PASSWORD, oldHash), true);
  const newHash = await hashPassword('the new password');
  assert.equal(await verifier.verify('mfp', PASSWORD, newHash), false);
  assert.equal(await verifier.verify('mfp', 'the new password', newHash), true);
});

test('cached successes expire after the TTL and the oldest go first when full', async () => {
  let now = 0;
  const verifier = createPasswordVerifier({ ttlMs: 1000, maxEntries: 2, now: () => now });
  const encoded = await hashPassword(PASSWORD);
  await verifier.verify('a', PASSWORD, encoded);
  now = 999;
  assert.ok((await timed(() => verifier.verify('a', PASSWORD, encoded))).ms < 5, 'still cached');
  now = 1000;
  assert.ok((await timed(() => verifier.verify('a', PASSWORD, encoded))).ms >= 10, 'expired');
  await verifier.verify('b', PASSWORD, encoded);
  await verifier.verify('a', PASSWORD, encoded); // 'a' is now the most recently used
  await verifier.verify('c', PASSWORD, encoded); // evicts 'b'
  assert.ok((await timed(() => verifier.verify('a', PASSWORD, encoded))).ms < 5);
  assert.ok((await timed(() => verifier.verify('b', PASSWORD, encoded))).ms >= 10);
});

test('an unknown user is refused after the same scrypt work as a wrong password', async () => {
  const verifier = createPasswordVerifier();
  const { result, ms } = await timed(() => verifier.verify('nobody', PASSWORD, undefined));
  assert.equal(result, false);
  assert.ok(ms >= 10, `unknown user answered in ${ms} ms`);
});

test('overlapping identical checks share one scrypt and all get the answer', async () => {
  const verifier = createPasswordVerifier();
  const encoded = await hashPassword(PASSWORD);
  const results = await Promise.all([
    ...Array.from({ length: 3 }, () => verifier.verify('mfp', PASSWORD, encoded)),
    ...Array.from({ length: 3 }, () => verifier.verify('mfp', 'wrong', encoded)),
  ]);
  assert.deepEqual(results, [true, true, true, false, false, false]);
});
