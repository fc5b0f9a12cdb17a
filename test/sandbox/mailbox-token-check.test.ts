/**
 * Sandbox mailbox, access-token checks (pure apart from signature verification): what Exchange Online
 * accepts and refuses, and that a refusal's reason never carries the token.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { SignJWT, UnsecuredJWT } from 'jose';
import { buildXOAuth2 } from '../../src/sasl/xoauth2.js';
import { createAccessTokenChecker, type AccessTokenChecker, type MailProtocol } from '../../src/sandbox/mailbox/token-check.js';
import {
  APP_AUDIENCE, DELEGATED_AUDIENCE, ISSUER, KID, appClaims, createSigner, signToken, userClaims, type TestSigner,
} from './mailbox-fixtures.js';

const USER = 'scanner@sandbox.test';
let signer: TestSigner;
let checker: AccessTokenChecker;

before(async () => {
  signer = await createSigner();
  checker = await createAccessTokenChecker({
    publicKeyPem: signer.publicKeyPem, kid: KID, issuers: [ISSUER], audiences: [DELEGATED_AUDIENCE, APP_AUDIENCE],
  });
});

async function verdictFor(claims: Record<string, unknown>, protocol: MailProtocol = 'smtp', user = USER, opts: { expiresInSec?: number; kid?: string } = {}) {
  const token = await signToken(signer, { claims, ...opts });
  const verdict = await checker.checkXOAuth2(buildXOAuth2(user, token), protocol);
  if (!verdict.accepted) assert.ok(!verdict.reason.includes(token.split('.')[2]!), 'the reason never holds the token');
  return verdict;
}

async function assertRefused(promise: ReturnType<typeof verdictFor>, reasonPattern: RegExp): Promise<void> {
  const verdict = await promise;
  assert.equal(verdict.accepted, false);
  if (!verdict.accepted) assert.match(verdict.reason, reasonPattern);
}

test('a delegated token opens its own mailbox for each protocol whose scope it carries (user= case-insensitive)', async () => {
  for (const protocol of ['smtp', 'pop3', 'imap'] as const) {
    const verdict = await verdictFor(userClaims(USER), protocol, 'Scanner@Sandbox.TEST');
    assert.ok(verdict.accepted);
    const { expiresAt, ...rest } = verdict.principal;
    assert.deepEqual(rest, { mailbox: USER, kind: 'user', subject: USER });
    assert.ok(expiresAt > Date.now() / 1000, 'the token\'s exp is carried for the HVE check');
  }
  const onlyPreferred = await verdictFor({ ...userClaims(USER), upn: undefined });
  assert.equal(onlyPreferred.accepted, true, 'preferred_username stands in for a missing upn');
});

test('each protocol needs its own scope', async () => {
  await assertRefused(verdictFor(userClaims(USER, { scp: 'IMAP.AccessAsUser.All POP.AccessAsUser.All' }), 'smtp'), /SMTP\.Send/);
  await assertRefused(verdictFor(userClaims(USER, { scp: 'SMTP.Send IMAP.AccessAsUser.All' }), 'pop3'), /POP\.AccessAsUser\.All/);
  await assertRefused(verdictFor(userClaims(USER, { scp: 'SMTP.Send POP.AccessAsUser.All' }), 'imap'), /IMAP\.AccessAsUser\.All/);
  await assertRefused(verdictFor(userClaims(USER, { scp: 'SMTP.SendX' }), 'smtp'), /SMTP\.Send/);
});

test('a delegated token opens only its user\'s mailbox', async () => {
  await assertRefused(verdictFor(userClaims('alice@sandbox.test')), /not for scanner@sandbox\.test/);
  await assertRefused(verdictFor({ aud: DELEGATED_AUDIENCE, scp: 'SMTP.Send' }), /neither upn nor preferred_username/);
});

test('an app token opens any mailbox with the protocol\'s role, and nothing without it', async () => {
  const roles = { smtp: 'SMTP.SendAsApp', pop3: 'POP.AccessAsApp', imap: 'IMAP.AccessAsApp' } as const;
  for (const [protocol, role] of Object.entries(roles) as Array<[MailProtocol, string]>) {
    const verdict = await verdictFor(appClaims([role]), protocol, 'whoever@sandbox.test');
    assert.equal(verdict.accepted, true, protocol);
    if (verdict.accepted) assert.equal(verdict.principal.kind, 'app');
    await assertRefused(verdictFor(appClaims(Object.values(roles).filter((r) => r !== role)), protocol), new RegExp(role));
  }
  await assertRefused(verdictFor(appClaims(['SMTP.SendAsApp'], { scp: 'SMTP.Send', roles: 'SMTP.SendAsApp' })), /role/);
});

test('lifetime: expired beyond a few seconds is refused; not yet valid is refused; exp is required', async () => {
  assert.equal((await verdictFor(userClaims(USER), 'smtp', USER, { expiresInSec: -2 })).accepted, true, 'within tolerance');
  await assertRefused(verdictFor(userClaims(USER), 'smtp', USER, { expiresInSec: -30 }), /ERR_JWT_EXPIRED/);
  await assertRefused(verdictFor(userClaims(USER, { nbf: Math.floor(Date.now() / 1000) + 600 })), /nbf/);
  await assertRefused(verdictFor(userClaims(USER, { exp: undefined })), /exp/);
});

test('issuer, audience, key id and signature must all match the simulator\'s', async () => {
  await assertRefused(verdictFor(userClaims(USER, { iss: 'https://sts.windows.net/other/' })), /iss/);
  await assertRefused(verdictFor(userClaims(USER, { aud: 'https://graph.microsoft.com' })), /aud/);
  await assertRefused(verdictFor(userClaims(USER), 'smtp', USER, { kid: 'another-key' }), /signing key id/);
  const stranger = await createSigner();
  const forged = await signToken(signer, { claims: userClaims(USER), signer: stranger });
  const verdict = await checker.checkCredentials(USER, forged, 'smtp');
  assert.equal(verdict.accepted, false);
  if (!verdict.accepted) assert.match(verdict.reason, /signature/);
});

test('algorithm confusion: unsigned and HMAC tokens are refused', async () => {
  const unsigned = new UnsecuredJWT(userClaims(USER)).setIssuer(ISSUER).setExpirationTime('1h').encode();
  const hmac = await new SignJWT(userClaims(USER)).setProtectedHeader({ alg: 'HS256', kid: KID }).setIssuer(ISSUER).setExpirationTime('1h')
    .sign(new TextEncoder().encode(signer.publicKeyPem));
  for (const token of [unsigned, hmac]) {
    assert.equal((await checker.checkCredentials(USER, token, 'smtp')).accepted, false);
  }
});

test('malformed XOAUTH2 responses and user names are refused without throwing', async () => {
  const token = await signToken(signer, { claims: userClaims(USER) });
  for (const response of ['', '!!!', Buffer.from('user=x\x01\x01').toString('base64'), Buffer.from(`auth=Bearer ${token}\x01\x01`).toString('base64')]) {
    assert.equal((await checker.checkXOAuth2(response, 'pop3')).accepted, false, JSON.stringify(response));
  }
  assert.equal((await checker.checkCredentials(`${USER}\r\nX-Injected: 1`, token, 'smtp')).accepted, false);
  assert.equal((await checker.checkCredentials(USER, 'x'.repeat(100_000), 'smtp')).accepted, false);
  assert.equal((await checker.checkCredentials(USER, 'a.b.c', 'smtp')).accepted, false);
});
