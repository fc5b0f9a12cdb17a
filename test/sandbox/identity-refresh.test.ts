/**
 * Refresh tokens (RFC 6749 §6): rotation on every use, the old token staying valid, revocation, lifetimes,
 * and how msal-node's cache reacts, against the identity simulator.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJwt, errors as joseErrors } from 'jose';
import type { AccountInfo, PublicClientApplication } from '@azure/msal-node';
import { startIdentitySimulator, type IdentitySimulator } from '../../src/sandbox/identity/simulator.js';
import { cachedRefreshTokens, deviceCodeFlow, publicApp, rejection, tenantGuid, tokenRequest, verifyAccessToken } from './support/identity-fixtures.js';

const smtp = ['https://outlook.office.com/SMTP.Send'];

async function signIn(sim: IdentitySimulator, upn: string): Promise<{ app: PublicClientApplication; account: AccountInfo }> {
  const app = publicApp(sim);
  const result = await deviceCodeFlow(app, (userCode) => sim.approve(userCode, upn));
  assert.ok(result?.account);
  return { app, account: result.account };
}

describe('identity simulator: refresh tokens', () => {
  let sim: IdentitySimulator;
  before(async () => {
    sim = await startIdentitySimulator({ pollIntervalSec: 0.05 });
  });
  after(() => sim.close());

  it('rotates the refresh token on every use and keeps the previous one valid', async () => {
    const { app, account } = await signIn(sim, 'alice@contoso.com');
    const [rt1] = cachedRefreshTokens(app);
    assert.ok(rt1);

    const beforeSilent = sim.stats.tokenRequests;
    const cached = await app.acquireTokenSilent({ account, scopes: smtp });
    assert.equal(sim.stats.tokenRequests, beforeSilent, 'a fresh cached token needs no request');
    assert.equal(cached.fromCache, true);

    const refreshed = await app.acquireTokenSilent({ account, scopes: smtp, forceRefresh: true });
    assert.equal(refreshed.fromCache, false);
    assert.notEqual(refreshed.accessToken, cached.accessToken);
    const rts = cachedRefreshTokens(app);
    assert.equal(rts.length, 1);
    assert.notEqual(rts[0], rt1, 'MSAL cached the rotated refresh token');
    // One sign-in serves all consented Outlook scopes, as Entra's scp does.
    const claims = await verifyAccessToken(sim, tenantGuid, refreshed.accessToken, 'https://outlook.office.com');
    assert.equal(claims.scp, 'SMTP.Send IMAP.AccessAsUser.All POP.AccessAsUser.All');

    // The previous refresh token still works (Entra does not revoke on rotation) and rotates again.
    const again = await tokenRequest(sim, tenantGuid, {
      grant_type: 'refresh_token',
      client_id: 'relay-public-client',
      refresh_token: rt1,
      scope: 'https://outlook.office.com/IMAP.AccessAsUser.All openid offline_access',
      client_info: '1',
    });
    assert.equal(again.status, 200);
    const body = again.json<{ refresh_token: string; id_token: string; client_info: string; scope: string }>();
    assert.ok(body.refresh_token && body.refresh_token !== rt1 && body.refresh_token !== rts[0]);
    assert.equal(decodeJwt(body.id_token).preferred_username, 'alice@contoso.com');
    assert.deepEqual(JSON.parse(Buffer.from(body.client_info, 'base64url').toString()), { uid: account.localAccountId, utid: tenantGuid });
    assert.ok(sim.stats.byGrant.refresh_token! >= 2);
  });

  it('answers invalid_grant (AADSTS50173) for every refresh token of a revoked user, not for others', async () => {
    const alice = await signIn(sim, 'alice.revoked@contoso.com');
    const bob = await signIn(sim, 'bob@contoso.com');
    sim.revokeRefreshTokens('Alice.Revoked@contoso.com');

    const err = await rejection(() => alice.app.acquireTokenSilent({ account: alice.account, scopes: smtp, forceRefresh: true }));
    // msal-common makes an InteractionRequiredAuthError only for a suberror or interaction_required-like codes
    // (isInteractionRequiredError): a bare invalid_grant stays a ServerError. Branch on errorCode.
    assert.equal(err.name, 'ServerError');
    assert.equal(err.errorCode, 'invalid_grant');
    assert.match(err.message, /AADSTS50173/);
    // Without a `bad_token` suberror MSAL keeps the dead refresh token in its cache: the product decides.
    assert.equal(cachedRefreshTokens(alice.app).length, 1);

    const stillFine = await bob.app.acquireTokenSilent({ account: bob.account, scopes: smtp, forceRefresh: true });
    assert.equal(decodeJwt(stillFine.accessToken).upn, 'bob@contoso.com');

    // Signing in again after a revocation works.
    const fresh = await signIn(sim, 'alice.revoked@contoso.com');
    await fresh.app.acquireTokenSilent({ account: fresh.account, scopes: smtp, forceRefresh: true });

    sim.revokeRefreshTokens();
    const all = await rejection(() => bob.app.acquireTokenSilent({ account: bob.account, scopes: smtp, forceRefresh: true }));
    assert.equal(all.errorCode, 'invalid_grant');
  });

  it('refuses a refresh token for another client, an unknown one, and scopes never consented', async () => {
    const { app } = await signIn(sim, 'dave@contoso.com');
    const [rt] = cachedRefreshTokens(app);
    const refresh = (form: Record<string, string>) => tokenRequest(sim, tenantGuid, { grant_type: 'refresh_token', client_id: 'relay-public-client', refresh_token: rt!, ...form });

    const otherClient = await refresh({ client_id: 'someone-else', scope: smtp[0]! });
    assert.equal(otherClient.json().error, 'invalid_grant');
    const unknown = await refresh({ refresh_token: 'garbage', scope: smtp[0]! });
    assert.equal(unknown.json().error, 'invalid_grant');
    const graph = await refresh({ scope: 'https://graph.microsoft.com/Mail.Send' });
    assert.equal(graph.json().error, 'invalid_grant');
    assert.equal(graph.json().suberror, 'consent_required');
    const missing = await tokenRequest(sim, tenantGuid, { grant_type: 'refresh_token', client_id: 'relay-public-client' });
    assert.equal(missing.json().error, 'invalid_request');
    const unsupported = await tokenRequest(sim, tenantGuid, { grant_type: 'password', client_id: 'relay-public-client' });
    assert.equal(unsupported.json().error, 'unsupported_grant_type');
  });
});

describe('identity simulator: token lifetimes', () => {
  it('lets a test make MSAL keep an access token the JWT says has expired (reportedExpiresInSec)', async () => {
    const sim = await startIdentitySimulator({ pollIntervalSec: 0.05, accessTokenLifetimeSec: 1, reportedExpiresInSec: 3600 });
    try {
      const { app, account } = await signIn(sim, 'erin@contoso.com');
      const first = await app.acquireTokenSilent({ account, scopes: smtp });
      await new Promise((r) => setTimeout(r, 1100));
      const stale = await app.acquireTokenSilent({ account, scopes: smtp });
      assert.equal(stale.fromCache, true);
      assert.equal(stale.accessToken, first.accessToken);
      await assert.rejects(verifyAccessToken(sim, tenantGuid, stale.accessToken, 'https://outlook.office.com'), joseErrors.JWTExpired);
      const renewed = await app.acquireTokenSilent({ account, scopes: smtp, forceRefresh: true });
      await verifyAccessToken(sim, tenantGuid, renewed.accessToken, 'https://outlook.office.com');
    } finally {
      await sim.close();
    }
  });

  it('shows MSAL refreshing on every silent call when tokens live less than 300 s', async () => {
    const sim = await startIdentitySimulator({ pollIntervalSec: 0.05, accessTokenLifetimeSec: 299 });
    try {
      const { app, account } = await signIn(sim, 'frank@contoso.com');
      const before = sim.stats.byGrant.refresh_token ?? 0;
      const result = await app.acquireTokenSilent({ account, scopes: smtp });
      // msal-common treats a token as expired 300 s before expires_in (DEFAULT_TOKEN_RENEWAL_OFFSET_SEC,
      // TimeUtils.isTokenExpired: now + 300 > expiresOn, in whole seconds).
      assert.equal(result.fromCache, false);
      assert.equal(sim.stats.byGrant.refresh_token, before + 1);
    } finally {
      await sim.close();
    }
  });

  it('answers invalid_grant (AADSTS700082) for a refresh token past refreshTokenLifetimeSec', async () => {
    const sim = await startIdentitySimulator({ pollIntervalSec: 0.05, refreshTokenLifetimeSec: 0.5 });
    try {
      const { app, account } = await signIn(sim, 'grace@contoso.com');
      await new Promise((r) => setTimeout(r, 600));
      const err = await rejection(() => app.acquireTokenSilent({ account, scopes: smtp, forceRefresh: true }));
      assert.equal(err.errorCode, 'invalid_grant');
      assert.match(err.message, /AADSTS700082/);
    } finally {
      await sim.close();
    }
  });
});
