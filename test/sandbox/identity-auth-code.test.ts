/**
 * Authorization code grant with PKCE (RFC 6749 §4.1, RFC 7636): msal-node builds the URL and redeems the code,
 * the test plays the browser on the simulator's sign-in page.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import { CryptoProvider, type PublicClientApplication } from '@azure/msal-node';
import { startIdentitySimulator, type IdentitySimulator } from '../../src/sandbox/identity/simulator.js';
import { cachedRefreshTokens, httpsRequest, outlookScopes, publicApp, rejection, tenantGuid, tokenRequest, verifyAccessToken } from './support/identity-fixtures.js';

const redirectUri = 'http://localhost:53682/redirect';
const pkce = new CryptoProvider();

/** Opens the sign-in page at `authUrl`, submits it as `upn` (or declines), returns the redirect target. */
async function browserSignIn(sim: IdentitySimulator, authUrl: string, upn: string | null): Promise<URL> {
  const page = await httpsRequest(authUrl, { ca: sim.caCertPem });
  assert.equal(page.status, 200, page.text);
  const requestId = /name="request" value="([^"]+)"/.exec(page.text)?.[1];
  assert.ok(requestId, 'the sign-in form carries the pending request');
  // The form has no action: a browser posts it back to the page's own URL.
  const answer = await httpsRequest(authUrl, { ca: sim.caCertPem, form: upn === null ? { request: requestId, action: 'decline' } : { request: requestId, upn, action: 'approve' } });
  assert.equal(answer.status, 302, answer.text);
  return new URL(String(answer.headers.location));
}

async function authorizationUrl(app: PublicClientApplication, extra: { loginHint?: string; nonce?: string } = {}) {
  const { verifier, challenge } = await pkce.generatePkceCodes();
  const url = await app.getAuthCodeUrl({ scopes: outlookScopes, redirectUri, codeChallenge: challenge, codeChallengeMethod: 'S256', state: 'state-42', ...extra });
  return { url, verifier };
}

describe('identity simulator: authorization code + PKCE', () => {
  let sim: IdentitySimulator;
  before(async () => {
    sim = await startIdentitySimulator();
  });
  after(() => sim.close());

  it('signs in on the page, redirects with code and state, and MSAL redeems the code', async () => {
    const app = publicApp(sim);
    const { url, verifier } = await authorizationUrl(app, { loginHint: 'alice@contoso.com' });
    assert.ok(url.startsWith(`${sim.url}/${tenantGuid}/oauth2/v2.0/authorize?`));
    const page = await httpsRequest(url, { ca: sim.caCertPem });
    assert.match(page.text, /value="alice@contoso\.com"/, 'login_hint pre-fills the mailbox');

    const back = await browserSignIn(sim, url, 'alice@contoso.com');
    assert.equal(`${back.origin}${back.pathname}`, redirectUri);
    assert.equal(back.searchParams.get('state'), 'state-42');
    assert.ok(back.searchParams.get('client_info'));
    const code = back.searchParams.get('code')!;

    const result = await app.acquireTokenByCode({ code, scopes: outlookScopes, redirectUri, codeVerifier: verifier });
    assert.equal(result.account?.username, 'alice@contoso.com');
    const claims = await verifyAccessToken(sim, tenantGuid, result.accessToken, 'https://outlook.office.com');
    assert.equal(claims.upn, 'alice@contoso.com');
    assert.equal(claims.scp, 'SMTP.Send IMAP.AccessAsUser.All POP.AccessAsUser.All');
    assert.equal(cachedRefreshTokens(app).length, 1);
    const silent = await app.acquireTokenSilent({ account: result.account!, scopes: outlookScopes.slice(0, 1), forceRefresh: true });
    assert.equal(decodeJwt(silent.accessToken).upn, 'alice@contoso.com');
  });

  it('puts the nonce of the request in the ID token', async () => {
    const app = publicApp(sim);
    const { url, verifier } = await authorizationUrl(app, { nonce: 'nonce-7' });
    const code = (await browserSignIn(sim, url, 'bob@contoso.com')).searchParams.get('code')!;
    const result = await app.acquireTokenByCode({ code, scopes: outlookScopes, redirectUri, codeVerifier: verifier, nonce: 'nonce-7' });
    assert.equal(result.idTokenClaims && (result.idTokenClaims as { nonce?: string }).nonce, 'nonce-7');
  });

  it('refuses a replayed code and revokes what the first redemption issued (RFC 6749 §4.1.2)', async () => {
    const app = publicApp(sim);
    const { url, verifier } = await authorizationUrl(app);
    const code = (await browserSignIn(sim, url, 'carol@contoso.com')).searchParams.get('code')!;
    const first = await app.acquireTokenByCode({ code, scopes: outlookScopes, redirectUri, codeVerifier: verifier });
    const replay = await rejection(() => publicApp(sim).acquireTokenByCode({ code, scopes: outlookScopes, redirectUri, codeVerifier: verifier }));
    assert.equal(replay.errorCode, 'invalid_grant');
    assert.match(replay.message, /AADSTS54005/);
    const revoked = await rejection(() => app.acquireTokenSilent({ account: first.account!, scopes: outlookScopes.slice(0, 1), forceRefresh: true }));
    assert.equal(revoked.errorCode, 'invalid_grant');
  });

  it('checks code_verifier, redirect_uri and client_id at redemption', async () => {
    const app = publicApp(sim);
    const { url, verifier } = await authorizationUrl(app);
    const code = (await browserSignIn(sim, url, 'dave@contoso.com')).searchParams.get('code')!;
    const redeem = (form: Record<string, string>) =>
      tokenRequest(sim, tenantGuid, { grant_type: 'authorization_code', client_id: 'relay-public-client', code, redirect_uri: redirectUri, code_verifier: verifier, scope: outlookScopes.join(' '), ...form });
    const badVerifier = await redeem({ code_verifier: 'x'.repeat(43) });
    assert.equal(badVerifier.json().error, 'invalid_grant');
    assert.deepEqual(badVerifier.json().error_codes, [501481]);
    assert.equal((await redeem({ code_verifier: '' })).json().error, 'invalid_grant');
    assert.equal((await redeem({ redirect_uri: 'http://localhost:1/other' })).json().error, 'invalid_grant');
    assert.equal((await redeem({ client_id: 'another-app' })).json().error, 'invalid_grant');
    assert.equal((await redeem({})).status, 200, 'failed attempts did not use up the code');
  });

  it('sends errors back to the redirect URI: declined, no PKCE, prompt=none', async () => {
    const app = publicApp(sim);
    const { url } = await authorizationUrl(app);
    const declined = await browserSignIn(sim, url, null);
    assert.equal(declined.searchParams.get('error'), 'access_denied');
    assert.equal(declined.searchParams.get('state'), 'state-42');

    const noPkce = new URL(url);
    noPkce.searchParams.delete('code_challenge');
    const reply = await httpsRequest(noPkce.toString(), { ca: sim.caCertPem });
    assert.equal(reply.status, 302);
    assert.equal(new URL(String(reply.headers.location)).searchParams.get('error'), 'invalid_request');

    const silent = new URL(url);
    silent.searchParams.set('prompt', 'none');
    const none = await httpsRequest(silent.toString(), { ca: sim.caCertPem });
    assert.equal(new URL(String(none.headers.location)).searchParams.get('error'), 'login_required');
  });

  it('shows an error page instead of redirecting when client_id or redirect_uri is missing', async () => {
    const app = publicApp(sim);
    const { url } = await authorizationUrl(app);
    for (const param of ['client_id', 'redirect_uri']) {
      const broken = new URL(url);
      broken.searchParams.delete(param);
      const reply = await httpsRequest(broken.toString(), { ca: sim.caCertPem });
      assert.equal(reply.status, 400);
      assert.equal(reply.headers.location, undefined);
      assert.match(String(reply.headers['content-type']), /text\/html/);
    }
    const stale = await httpsRequest(url, { ca: sim.caCertPem, form: { request: 'no-such-request', upn: 'a@b.example', action: 'approve' } });
    assert.equal(stale.status, 400);
  });
});
