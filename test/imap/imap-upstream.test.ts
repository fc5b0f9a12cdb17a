/**
 * Which upstream refusals mean "the token was refused" (refresh once and retry) and which do not (never refresh:
 * a connection limit must not turn into a storm of token refreshes).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { imapRefusal } from '../../src/imap/imap-upstream.js';
import { pop3Refusal } from '../../src/pop3/pop3-upstream.js';
import { decodeErrorChallenge } from '../../src/transport/upstream-login.js';

test('IMAP: no code (Exchange) or AUTHENTICATIONFAILED / AUTHORIZATIONFAILED / EXPIRED is the token; others are not', () => {
  for (const line of ['A1 NO AUTHENTICATE failed.', 'A1 NO [AUTHENTICATIONFAILED] Authentication failed.', 'A1 NO [EXPIRED] Token expired', 'A1 NO [AuthorizationFailed] x']) {
    assert.equal(imapRefusal(line, '').code, 'UPSTREAM_AUTH_REJECTED', line);
  }
  for (const line of ['A1 NO [LIMIT] Maximum number of connections from user+IP exceeded', 'A1 NO [UNAVAILABLE] Try later', 'A1 NO [SERVERBUG] oops', 'A1 NO [INUSE] busy']) {
    assert.equal(imapRefusal(line, '').code, 'UPSTREAM_SESSION_REFUSED', line);
  }
  assert.match(imapRefusal('A1 NO AUTHENTICATE failed.', '{"status":"401"}').detail!, /A1 NO AUTHENTICATE failed\. \{"status":"401"\}/);
});

test('POP3: no code (Exchange) or [AUTH] is the token; IN-USE, LOGIN-DELAY, SYS/TEMP, SYS/PERM are not', () => {
  for (const line of ['-ERR Authentication failure: unknown user name or bad password.', '-ERR [AUTH] Authentication failed.']) {
    assert.equal(pop3Refusal(line, '').code, 'UPSTREAM_AUTH_REJECTED', line);
  }
  for (const line of ['-ERR [IN-USE] locked', '-ERR [LOGIN-DELAY] wait', '-ERR [SYS/TEMP] Maximum number of connections', '-ERR [SYS/PERM] disabled']) {
    assert.equal(pop3Refusal(line, '').code, 'UPSTREAM_SESSION_REFUSED', line);
  }
});

test('the XOAUTH2 error challenge is decoded for the log, printable only', () => {
  const json = '{"status":"401","schemes":"bearer","scope":"https://outlook.office.com/"}';
  assert.equal(decodeErrorChallenge(`+ ${Buffer.from(json).toString('base64')}`), json);
  assert.equal(decodeErrorChallenge(`+ ${Buffer.from('a\u0000\nb').toString('base64')}`), 'ab');
});
