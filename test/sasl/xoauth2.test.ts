import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildXOAuth2, parseXOAuth2 } from '../../src/sasl/xoauth2.js';

// Microsoft's published example (Authenticate an IMAP, POP or SMTP connection using OAuth).
const vector = {
  user: 'test@contoso.onmicrosoft.com',
  token: 'EwBAAl3BAAUFFpUAo7J3Ve0bjLBWZWCclRC3EoAA',
  encoded: 'dXNlcj10ZXN0QGNvbnRvc28ub25taWNyb3NvZnQuY29tAWF1dGg9QmVhcmVyIEV3QkFBbDNCQUFVRkZwVUFvN0ozVmUwYmpMQldaV0NjbFJDM0VvQUEBAQ==',
};

test('XOAUTH2 string matches Microsoft\'s test vector', () => {
  assert.equal(buildXOAuth2(vector.user, vector.token), vector.encoded);
});

test('XOAUTH2 parse inverts build and rejects malformed input', () => {
  assert.deepEqual(parseXOAuth2(vector.encoded), { user: vector.user, token: vector.token });
  assert.equal(parseXOAuth2(Buffer.from('user=a\x01auth=Bearer t').toString('base64')), null);
  assert.equal(parseXOAuth2(Buffer.from('auth=Bearer t\x01\x01').toString('base64')), null);
  assert.equal(parseXOAuth2('!!!'), null);
});
