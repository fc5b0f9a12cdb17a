/**
 * The SASL codecs (PLAIN, LOGIN, XOAUTH2) as pure functions: any string in, never a throw; what they accept
 * decodes back to what was encoded; nothing they return breaks their own rules (no control character in a user
 * name, no NUL in a password, fields within the size limit).
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeLoginField } from '../../../src/sasl/login.js';
import { decodePlain, MAX_SASL_FIELD_BYTES } from '../../../src/sasl/plain.js';
import { buildXOAuth2, parseXOAuth2 } from '../../../src/sasl/xoauth2.js';
import type { FuzzTarget } from '../fuzz-target.js';

type Input =
  | { kind: 'raw'; text: string }
  | { kind: 'plain'; authzid: string; user: string; password: string }
  | { kind: 'xoauth2'; user: string; token: string };

const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
// A lone surrogate has no UTF-8 form: encoding replaces it, so it cannot come back as it was.
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const text = fc.string({ unit: 'binary', maxLength: 80 });
const input: fc.Arbitrary<Input> = fc.oneof(
  fc.oneof(text, fc.base64String({ maxLength: 200 }), fc.uint8Array({ maxLength: 120 }).map((b) => Buffer.from(b).toString('base64'))).map((t) => ({ kind: 'raw' as const, text: t })),
  fc.record({ kind: fc.constant('plain' as const), authzid: fc.oneof(fc.constant(''), text), user: text, password: text }),
  fc.record({ kind: fc.constant('xoauth2' as const), user: fc.string({ maxLength: 40 }), token: fc.string({ maxLength: 80 }) }),
);

function checkRaw(t: string): void {
  const plain = decodePlain(t);
  if (plain) {
    assert.ok(plain.username !== '' && plain.password !== '');
    assert.ok(!CONTROL.test(plain.username) && !CONTROL.test(plain.authzid), 'a control character in an identity');
    for (const f of [plain.authzid, plain.username, plain.password]) assert.ok(Buffer.byteLength(f) <= MAX_SASL_FIELD_BYTES);
  }
  const user = decodeLoginField(t, 'username');
  if (user !== null) assert.ok(!CONTROL.test(user));
  const password = decodeLoginField(t, 'password');
  if (password !== null) assert.ok(!password.includes('\u0000') && password !== '');
  parseXOAuth2(t);
}

function checkOne(i: Input): void {
  if (i.kind === 'raw') return checkRaw(i.text);
  if (i.kind === 'plain') {
    const encoded = Buffer.from(`${i.authzid}\u0000${i.user}\u0000${i.password}`, 'utf8').toString('base64');
    const decoded = decodePlain(encoded);
    const fields = [i.authzid, i.user, i.password];
    const wellFormed = fields.every((f) => !f.includes('\u0000') && !LONE_SURROGATE.test(f) && Buffer.byteLength(f) <= MAX_SASL_FIELD_BYTES);
    const acceptable = wellFormed && i.user !== '' && i.password !== '' && !CONTROL.test(i.user) && !CONTROL.test(i.authzid);
    if (acceptable) assert.deepEqual(decoded, { authzid: i.authzid, username: i.user, password: i.password });
    else checkRaw(encoded);
    return;
  }
  const parsed = parseXOAuth2(buildXOAuth2(i.user, i.token));
  if (i.user !== '' && i.token !== '' && !(i.user + i.token).includes('\u0001') && !LONE_SURROGATE.test(i.user + i.token)) assert.deepEqual(parsed, { user: i.user, token: i.token });
}

export const saslCodecsTarget: FuzzTarget<Input> = {
  name: 'sasl-codecs',
  async setup() {
    return { arbitrary: input, check: checkOne, stop: async () => undefined };
  },
};
