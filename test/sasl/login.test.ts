import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeLoginField, LOGIN_PASSWORD_PROMPT, LOGIN_USERNAME_PROMPT } from '../../src/sasl/login.js';
import { MAX_SASL_FIELD_BYTES } from '../../src/sasl/plain.js';

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');

test('the prompts are base64 of "Username:" and "Password:"', () => {
  assert.equal(LOGIN_USERNAME_PROMPT, b64('Username:'));
  assert.equal(LOGIN_PASSWORD_PROMPT, b64('Password:'));
});

test('answers decode as sent', () => {
  assert.equal(decodeLoginField('dXNlcm5hbWU=', 'username'), 'username');
  assert.equal(decodeLoginField('cGFzc3dvcmQ=', 'password'), 'password');
  assert.equal(decodeLoginField(b64('scanner@contoso.example'), 'username'), 'scanner@contoso.example');
  for (const password of ['p@ss:wörd"\\ ', ' spaces ', 'tab\tand\r\nnewline', '\u0001\u007f\u0085', '\ufeff', '🖨️ 打印机', '*']) {
    assert.equal(decodeLoginField(b64(password), 'password'), password, JSON.stringify(password));
  }
});

test('hostile or malformed answers → null', () => {
  const cases: Array<[string, 'username' | 'password', string]> = [
    ['', 'username', 'empty'],
    ['', 'password', 'empty'],
    ['=', 'password', 'RFC 4954 empty response'],
    ['*', 'username', 'cancel is the caller\'s job, not base64'],
    ['!!!!', 'username', 'not base64'],
    [`${b64('user')} `, 'username', 'trailing space'],
    [`${b64('user')}\r\n`, 'username', 'line ending'],
    ['dXNlcm5hbWV=', 'username', 'stray bits'],
    ['dXNlcm5hbWU_', 'username', 'URL-safe alphabet'],
    [b64('us\u0000er'), 'username', 'NUL'],
    [b64('pass\u0000word'), 'password', 'NUL'],
    [b64('user\r\nMAIL FROM:<x>'), 'username', 'CRLF'],
    [b64('\u001b[2Juser'), 'username', 'escape'],
    [b64('us\u0085er'), 'username', 'C1 NEL'],
    [b64('\u007f'), 'username', 'DEL'],
    [Buffer.from([0xff, 0xfe]).toString('base64'), 'password', 'invalid UTF-8'],
    [Buffer.from([0xed, 0xb2, 0x80]).toString('base64'), 'password', 'UTF-8 surrogate'],
    [b64('x'.repeat(MAX_SASL_FIELD_BYTES + 1)), 'username', 'too long'],
    [b64('x'.repeat(MAX_SASL_FIELD_BYTES + 1)), 'password', 'too long'],
    ['A'.repeat(10 * 1024 * 1024), 'password', 'huge'],
  ];
  for (const [input, field, why] of cases) {
    assert.equal(decodeLoginField(input, field), null, `${field}: ${why}`);
  }
  assert.equal(decodeLoginField(b64('x'.repeat(MAX_SASL_FIELD_BYTES)), 'password')?.length, MAX_SASL_FIELD_BYTES);
});
