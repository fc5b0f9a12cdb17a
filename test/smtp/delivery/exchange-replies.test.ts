import { test } from 'node:test';
import assert from 'node:assert/strict';
import { catalogue } from '../../../src/errors.js';
import { isTokenRejection, permanentFailureCode, replyClass, replyCode } from '../../../src/smtp/delivery/exchange-replies.js';
import { outcomeOfError, outcomeOfSuccess, outcomeOfTokenError } from '../../../src/smtp/delivery/send-outcome.js';
import { RelayError } from '../../../src/errors.js';

test('Exchange replies of docs/exchange-online.md §6 get the advice that fits', () => {
  const table: Array<[string, keyof typeof catalogue]> = [
    ['535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information.', 'UPSTREAM_SMTP_AUTH_DISABLED'],
    ['550 5.7.30 Basic authentication is not supported for Client Submission.', 'UPSTREAM_BASIC_AUTH_REFUSED'],
    ['530 5.7.57 Client not authenticated to send mail', 'UPSTREAM_NOT_AUTHENTICATED'],
    // Seen in the field when the tenant toggle is off: the embedded 5.7.139 is the real cause.
    ['530 5.7.57 Client not authenticated to send mail. Error: 535 5.7.139 Authentication unsuccessful', 'UPSTREAM_SMTP_AUTH_DISABLED'],
    ['550 5.7.60 SMTP; Client does not have permissions to send as this sender', 'UPSTREAM_SEND_AS_DENIED'],
    ['554 5.2.0 STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied; Failed to process message', 'UPSTREAM_SEND_AS_DENIED'],
    ['554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException; Failed to process message', 'UPSTREAM_QUOTA_EXCEEDED'],
    ['552 5.3.4 Message size exceeds fixed maximum message size', 'UPSTREAM_MESSAGE_TOO_LARGE'],
    ['554 5.2.270 Message too large', 'UPSTREAM_MESSAGE_TOO_LARGE'],
    ['550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup', 'UPSTREAM_RECIPIENT_REJECTED'],
    ['550 5.1.1 User unknown', 'UPSTREAM_RECIPIENT_REJECTED'],
    ['554 5.6.0 Corrupt message content', 'UPSTREAM_REJECTED'],
  ];
  for (const [reply, code] of table) assert.equal(permanentFailureCode(reply), code, reply);
  assert.match(catalogue.UPSTREAM_SMTP_AUTH_DISABLED.message, /Set-CASMailbox/);
  assert.match(catalogue.UPSTREAM_SEND_AS_DENIED.message, /senderPolicy \(auto/);
  assert.equal(permanentFailureCode('501 5.5.127 Invalid XOAUTH2 auth data - Token will expire soon'), 'UPSTREAM_TOKEN_EXPIRES_SOON');
  assert.equal(permanentFailureCode('550 5.7.54 SMTP; Unable to relay recipient in non-accepted domain'), 'UPSTREAM_EXTERNAL_RECIPIENT');
});

test('only a 535 that a fresh token may cure is a token rejection', () => {
  assert.equal(isTokenRejection('535 5.7.3 Authentication unsuccessful'), true);
  assert.equal(isTokenRejection('535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant.'), false);
  assert.equal(isTokenRejection('550 5.7.3 no'), false);
  assert.equal(isTokenRejection('501 5.5.127 Invalid XOAUTH2 auth data - Token will expire soon'), true, 'HVE: a fresh token cures it');
  assert.equal(replyCode('451 4.7.0 x'), 451);
  assert.equal(replyCode('not a reply'), null);
  assert.equal(replyCode(undefined), null);
  assert.deepEqual([250, 354, 421, 432, 554, 600].map(replyClass), ['success', null, 'temporary', 'temporary', 'permanent', null]);
});

test('nodemailer errors become outcomes: 4xx and trouble below SMTP are temporary, 5xx permanent, unknown never permanent', () => {
  assert.deepEqual(outcomeOfError({ code: 'EAUTH', response: '535 5.7.3 Authentication unsuccessful', responseCode: 535 }), { kind: 'token-rejected', reply: '535 5.7.3 Authentication unsuccessful' });
  assert.equal(outcomeOfError({ code: 'EAUTH', response: '535 5.7.139 SmtpClientAuthentication is disabled', responseCode: 535 }).kind, 'permanent');
  assert.deepEqual(outcomeOfError({ code: 'EENVELOPE', response: '432 4.3.2 Concurrent connections limit exceeded', responseCode: 432, command: 'MAIL FROM' }), { kind: 'temporary', code: 'UPSTREAM_TEMPORARY', reply: '432 4.3.2 Concurrent connections limit exceeded' });
  assert.equal(outcomeOfError({ code: 'EMESSAGE', message: 'Message size larger than allowed 36700160' }).kind, 'permanent');
  assert.deepEqual(outcomeOfError({ code: 'ECONNECTION', message: 'connect ECONNREFUSED 127.0.0.1:587' }), { kind: 'temporary', code: 'UPSTREAM_UNREACHABLE', reply: 'connect ECONNREFUSED 127.0.0.1:587' });
  assert.equal((outcomeOfError({ code: 'ETLS', message: 'unable to verify the first certificate' }) as { code: string }).code, 'UPSTREAM_TLS_FAILED');
  assert.equal(outcomeOfError(new Error('something odd')).kind, 'temporary');
  assert.equal(outcomeOfError(undefined).kind, 'temporary');
  const refused = outcomeOfError({ code: 'EENVELOPE', rejectedErrors: [{ recipient: 'a@x', response: '550 5.1.1 unknown' }, { recipient: 'b@x', response: '452 4.5.3 too many' }, { recipient: 'c@x' }] });
  assert.deepEqual(refused, { kind: 'recipients-refused', rejected: [{ address: 'a@x', reply: '550 5.1.1 unknown', permanent: true }, { address: 'b@x', reply: '452 4.5.3 too many', permanent: false }, { address: 'c@x', reply: '', permanent: false }] });
  assert.deepEqual(outcomeOfSuccess({ response: '250 2.0.0 OK', rejectedErrors: undefined }), { kind: 'delivered', reply: '250 2.0.0 OK', rejected: [] });
});

test('token service errors: no token or invalid → held; refresh trouble → deferred', () => {
  assert.equal(outcomeOfTokenError(new RelayError('TOKEN_NOT_ACQUIRED')).kind, 'token-unavailable');
  assert.equal(outcomeOfTokenError(new RelayError('TOKEN_INVALID', 'AADSTS70043')).kind, 'token-unavailable');
  assert.equal(outcomeOfTokenError(new RelayError('UNKNOWN_ACCOUNT')).kind, 'token-unavailable');
  assert.deepEqual(outcomeOfTokenError(new RelayError('TOKEN_REFRESH_FAILED')).kind, 'temporary');
  assert.deepEqual(outcomeOfTokenError(new Error('bug')), { kind: 'temporary', code: 'INTERNAL', reply: 'bug' });
});
