import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodePlain, decodeSaslText, MAX_SASL_FIELD_BYTES } from '../../src/sasl/plain.js';

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');

test('RFC 4616 §4 examples decode', () => {
  assert.deepEqual(decodePlain(b64('\u0000tim\u0000tanstaaftanstaaf')), { authzid: '', username: 'tim', password: 'tanstaaftanstaaf' });
  assert.deepEqual(decodePlain(b64('Ursel\u0000Kurt\u0000xipj3plmq')), { authzid: 'Ursel', username: 'Kurt', password: 'xipj3plmq' });
  // What smtp-server's and swaks' documentation show for AUTH PLAIN.
  assert.deepEqual(decodePlain('AHVzZXJuYW1lAHBhc3N3b3Jk'), { authzid: '', username: 'username', password: 'password' });
});

test('passwords keep every character but NUL, exactly as sent', () => {
  const passwords = ['p@ss:wörd"\\ ', ' leading and trailing ', 'tab\there', 'line\r\nbreak', '\u007f\u0085', '\ufeffbom', '🖨️ 打印机', '$scrypt$=', 'x'];
  for (const password of passwords) {
    assert.deepEqual(decodePlain(b64(`\u0000printer@floor2\u0000${password}`)), { authzid: '', username: 'printer@floor2', password }, JSON.stringify(password));
  }
  assert.equal(decodePlain(b64(`\u0000user\u0000${'é'.repeat(MAX_SASL_FIELD_BYTES / 2)}`))?.password.length, MAX_SASL_FIELD_BYTES / 2);
});

test('user names may be UTF-8, e-mail addresses, or hold spaces', () => {
  for (const username of ['scanner@contoso.example', 'Jörg Drucker', 'ユーザー', 'a']) {
    assert.equal(decodePlain(b64(`\u0000${username}\u0000pw`))?.username, username);
  }
});

test('not strict base64 → null', () => {
  const good = b64('\u0000user\u0000password'); // AHVzZXIAcGFzc3dvcmQ=
  const cases: Array<[string, string]> = [
    ['', 'empty'],
    ['=', 'RFC 4954 empty response'],
    ['====', 'only padding'],
    ['!!!', 'not the alphabet'],
    [`${good} `, 'trailing space'],
    [` ${good}`, 'leading space'],
    [`${good}\r\n`, 'line ending'],
    [good.replace('c', ' c'), 'space inside'],
    [`${good}=`, 'too much padding'],
    [`${good}A`, 'data after padding'],
    [good.replace(/=$/, '=='), 'padding past the quantum'],
    ['AHVzZXIAcGFzc3dvcmR=', 'non-zero bits after the last byte'],
    [good.replace('c', '_'), 'URL-safe alphabet is not SASL\'s'],
    [good.replace('c', '\u0000'), 'NUL in the base64'],
    [`${good.slice(0, 4)}=${good.slice(5)}`, 'padding in the middle'],
  ];
  for (const [bad, why] of cases) assert.equal(decodePlain(bad), null, why);
  assert.deepEqual(decodePlain(good.replace(/=$/, '')), { authzid: '', username: 'user', password: 'password' }, 'missing padding is tolerated');
});

test('not exactly two NULs → null', () => {
  for (const text of ['userpassword', 'user\u0000password', '\u0000\u0000user\u0000password', '\u0000user\u0000pass\u0000word', '\u0000user\u0000password\u0000', 'a\u0000b\u0000c\u0000d', '\u0000', '\u0000\u0000\u0000']) {
    assert.equal(decodePlain(b64(text)), null, JSON.stringify(text));
  }
});

test('empty user name or password → null', () => {
  for (const text of ['\u0000\u0000password', 'authz\u0000\u0000password', '\u0000user\u0000', '\u0000\u0000']) {
    assert.equal(decodePlain(b64(text)), null, JSON.stringify(text));
  }
});

test('control characters in the user name or authzid → null', () => {
  for (const control of ['\r', '\n', '\t', '\u0001', '\u001b[31m', '\u007f', '\u0085', '\u009f']) {
    assert.equal(decodePlain(b64(`\u0000us${control}er\u0000pw`)), null, `user name with ${JSON.stringify(control)}`);
    assert.equal(decodePlain(b64(`ad${control}min\u0000user\u0000pw`)), null, `authzid with ${JSON.stringify(control)}`);
  }
  assert.equal(decodePlain(b64('\u0000user\r\n250 OK\u0000pw')), null, 'a forged log line in the user name');
});

test('invalid UTF-8 → null', () => {
  for (const bytes of [[0xff], [0xc3], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80]]) {
    const inUser = Buffer.concat([Buffer.from([0]), Buffer.from(bytes), Buffer.from('\u0000pw')]);
    const inPassword = Buffer.concat([Buffer.from('\u0000user\u0000'), Buffer.from(bytes)]);
    assert.equal(decodePlain(inUser.toString('base64')), null, `user ${bytes}`);
    assert.equal(decodePlain(inPassword.toString('base64')), null, `password ${bytes}`);
  }
});

test('very long input → null, quickly', () => {
  const long = 'x'.repeat(MAX_SASL_FIELD_BYTES + 1);
  assert.equal(decodePlain(b64(`\u0000${long}\u0000pw`)), null);
  assert.equal(decodePlain(b64(`${long}\u0000user\u0000pw`)), null);
  assert.equal(decodePlain(b64(`\u0000user\u0000${long}`)), null);
  const huge = 'A'.repeat(50 * 1024 * 1024);
  const start = performance.now();
  assert.equal(decodePlain(huge), null);
  assert.ok(performance.now() - start < 50, 'a huge input is refused before it is decoded');
  const max = 'u'.repeat(MAX_SASL_FIELD_BYTES);
  assert.deepEqual(decodePlain(b64(`${max}\u0000${max}\u0000${max}`)), { authzid: max, username: max, password: max });
});

test('decodeSaslText is the strict base64 and UTF-8 step', () => {
  assert.equal(decodeSaslText(''), '');
  assert.equal(decodeSaslText(b64('ä\u0000b')), 'ä\u0000b');
  assert.equal(decodeSaslText('QQ'), 'A');
  assert.equal(decodeSaslText('QQ='), null, 'padding that does not complete a quantum');
  assert.equal(decodeSaslText('Q'), null);
  assert.equal(decodeSaslText('QR=='), null);
});
