/**
 * Outage modes of the identity simulator, and what msal-node does with them: an outage must never cost the
 * cached refresh token, and MSAL's own throttling after a 5xx is something the token service has to know.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PublicClientApplication } from '@azure/msal-node';
import { startIdentitySimulator, type IdentitySimulator } from '../../src/sandbox/identity/simulator.js';
import { cachedRefreshTokens, confidentialApp, deviceCodeFlow, httpsRequest, msalConfig, publicApp, rejection, tenantGuid } from './support/identity-fixtures.js';

const smtp = ['https://outlook.office.com/SMTP.Send'];
const exchangeDefault = ['https://outlook.office365.com/.default'];

describe('identity simulator: outages', () => {
  let sim: IdentitySimulator;
  before(async () => {
    sim = await startIdentitySimulator({ pollIntervalSec: 0.05 });
    sim.registerClientSecret('outage-daemon', 'secret');
  });
  after(() => sim.close());

  it("'http503' answers every platform endpoint with 503 temporarily_unavailable; /sandbox/api stays up", async () => {
    sim.setOutage('http503');
    try {
      for (const path of [`/${tenantGuid}/v2.0/.well-known/openid-configuration`, `/${tenantGuid}/discovery/v2.0/keys`]) {
        const reply = await httpsRequest(`${sim.url}${path}`, { ca: sim.caCertPem });
        assert.equal(reply.status, 503);
        assert.equal(reply.json().error, 'temporarily_unavailable');
      }
      const token = await httpsRequest(`${sim.url}/${tenantGuid}/oauth2/v2.0/token`, { ca: sim.caCertPem, form: { grant_type: 'refresh_token' } });
      assert.equal(token.status, 503);
      assert.deepEqual(token.json().error_codes, [90033]);
      assert.equal((await httpsRequest(`${sim.url}/sandbox/api/pending`, { ca: sim.caCertPem })).status, 200);
    } finally {
      sim.setOutage('none');
    }
  });

  it("'http503' during a refresh keeps MSAL's refresh token, and MSAL then throttles that request for 60 s", async () => {
    const app = publicApp(sim);
    const signedIn = await deviceCodeFlow(app, (userCode) => sim.approve(userCode, 'alice@contoso.com'));
    const account = signedIn!.account!;
    const [rt] = cachedRefreshTokens(app);

    sim.setOutage('http503');
    const failed = await rejection(() => app.acquireTokenSilent({ account, scopes: smtp, forceRefresh: true }));
    assert.equal(failed.name, 'ServerError');
    assert.equal(failed.errorCode, 'temporarily_unavailable');
    assert.deepEqual(cachedRefreshTokens(app), [rt], 'an outage never deletes the refresh token');
    sim.setOutage('none');

    // msal-common ThrottlingUtils.postProcess: after a 429/5xx the same request (same client, authority,
    // scopes, account) is refused client-side for Retry-After or 60 s (DEFAULT_THROTTLE_TIME_SECONDS), even
    // once the platform is back. Nothing reaches the server. The throttled ServerError's errorCode is the
    // AADSTS number(s) of the remembered response, not its `error` (ThrottlingUtils.preProcess).
    const requests = sim.stats.requests;
    const tokenRequests = sim.stats.tokenRequests;
    const throttled = await rejection(() => app.acquireTokenSilent({ account, scopes: smtp, forceRefresh: true }));
    assert.equal(throttled.name, 'ServerError');
    assert.equal(throttled.errorCode, '90033');
    assert.equal(sim.stats.requests, requests, 'MSAL did not send the request');

    // The throttle entry is not part of the serialized cache: a new application instance over the same cache
    // goes through.
    const fresh = new PublicClientApplication(msalConfig(sim, tenantGuid, 'relay-public-client'));
    fresh.getTokenCache().deserialize(app.getTokenCache().serialize());
    const [freshAccount] = await fresh.getAllAccounts();
    const renewed = await fresh.acquireTokenSilent({ account: freshAccount!, scopes: smtp, forceRefresh: true });
    assert.equal(renewed.fromCache, false);
    assert.equal(sim.stats.tokenRequests, tokenRequests + 1);
  });

  it("'reset' destroys connections: MSAL reports a network error, then recovers when the outage ends", async () => {
    const warm = confidentialApp(sim, 'outage-daemon', { clientSecret: 'secret' });
    await warm.acquireTokenByClientCredential({ scopes: exchangeDefault }); // discovery done and cached
    const cold = confidentialApp(sim, 'outage-daemon', { clientSecret: 'secret' });
    sim.setOutage('reset');
    const raw = await rejection(() => httpsRequest(`${sim.url}/${tenantGuid}/discovery/v2.0/keys`, { ca: sim.caCertPem }));
    assert.match(raw.message, /socket hang up|ECONNRESET/);
    const failed = await rejection(() => warm.acquireTokenByClientCredential({ scopes: exchangeDefault, skipCache: true }));
    assert.equal(failed.errorCode, 'network_error');
    // An application that has not discovered the authority yet fails earlier, with a different code.
    const undiscovered = await rejection(() => cold.acquireTokenByClientCredential({ scopes: exchangeDefault }));
    assert.equal(undiscovered.errorCode, 'endpoints_resolution_error');
    sim.setOutage('none');
    // A network failure is not a 5xx response: MSAL does not throttle, the next calls go through.
    assert.ok((await warm.acquireTokenByClientCredential({ scopes: exchangeDefault, skipCache: true }))?.accessToken);
    assert.ok((await cold.acquireTokenByClientCredential({ scopes: exchangeDefault }))?.accessToken);
  });
});
