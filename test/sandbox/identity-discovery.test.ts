/**
 * Discovery documents, JWKS, routing and request accounting of the identity simulator.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import { ConfidentialClientApplication } from '@azure/msal-node';
import { startIdentitySimulator, type IdentitySimulator } from '../../src/sandbox/identity/simulator.js';
import { tenantGuidFor } from '../../src/sandbox/identity/ids.js';
import { httpsRequest, tenantGuid, verifyAccessToken } from './support/identity-fixtures.js';
import { HttpsNetworkClient } from './support/msal-network.js';

describe('identity simulator: discovery and routing', () => {
  let sim: IdentitySimulator;
  const get = (path: string) => httpsRequest(`${sim.url}${path}`, { ca: sim.caCertPem });
  before(async () => {
    sim = await startIdentitySimulator();
  });
  after(() => sim.close());

  it('serves an OpenID configuration with GUID-based endpoints for GUID and domain tenants', async () => {
    assert.match(sim.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(sim.hostPort, sim.url.slice('https://'.length));
    for (const [tenant, guid] of [[tenantGuid, tenantGuid], ['contoso.com', tenantGuidFor('contoso.com')]] as const) {
      const reply = await get(`/${tenant}/v2.0/.well-known/openid-configuration`);
      assert.equal(reply.status, 200);
      const doc = reply.json<Record<string, string>>();
      assert.equal(doc.issuer, `${sim.url}/${guid}/v2.0`);
      assert.equal(doc.token_endpoint, `${sim.url}/${guid}/oauth2/v2.0/token`);
      assert.equal(doc.authorization_endpoint, `${sim.url}/${guid}/oauth2/v2.0/authorize`);
      assert.equal(doc.device_authorization_endpoint, `${sim.url}/${guid}/oauth2/v2.0/devicecode`);
      assert.equal(doc.jwks_uri, `${sim.url}/${guid}/discovery/v2.0/keys`);
      assert.ok(doc.end_session_endpoint);
    }
    assert.equal(tenantGuidFor('Contoso.COM'), tenantGuidFor('contoso.com'), 'domain mapping ignores case');
    const common = (await get('/common/v2.0/.well-known/openid-configuration')).json<Record<string, string>>();
    assert.equal(common.issuer, `${sim.url}/{tenantid}/v2.0`);
    assert.equal(common.token_endpoint, `${sim.url}/common/oauth2/v2.0/token`);
  });

  it('serves instance discovery and a JWKS holding the signing key', async () => {
    const instance = (await get(`/common/discovery/instance?api-version=1.1&authorization_endpoint=${encodeURIComponent(`${sim.url}/contoso.com/oauth2/v2.0/authorize`)}`)).json<{
      tenant_discovery_endpoint: string;
      metadata: Array<{ preferred_network: string; preferred_cache: string; aliases: string[] }>;
    }>();
    assert.equal(instance.tenant_discovery_endpoint, `${sim.url}/contoso.com/v2.0/.well-known/openid-configuration`);
    assert.deepEqual(instance.metadata, [{ preferred_network: sim.hostPort, preferred_cache: sim.hostPort, aliases: [sim.hostPort] }]);

    const jwks = (await get(`/${tenantGuid}/discovery/v2.0/keys`)).json<{ keys: Array<Record<string, string>> }>();
    assert.equal(jwks.keys.length, 1);
    const [key] = jwks.keys;
    assert.equal(key!.kid, sim.signingKey.kid);
    assert.equal(key!.use, 'sig');
    assert.equal(key!.alg, 'RS256');
    assert.equal(key!.kty, 'RSA');
    const fromJwk = createPublicKey({ key: key as never, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
    assert.equal(fromJwk, sim.signingKey.publicKeyPem);
  });

  it('works with MSAL given cloudDiscoveryMetadata and authorityMetadata from its own endpoints', async () => {
    sim.registerClientSecret('discovery-app', 's3cret');
    const cloudDiscoveryMetadata = (await get('/common/discovery/instance')).text;
    const authorityMetadata = (await get(`/${tenantGuid}/v2.0/.well-known/openid-configuration`)).text;
    const app = new ConfidentialClientApplication({
      auth: { clientId: 'discovery-app', clientSecret: 's3cret', authority: `${sim.url}/${tenantGuid}`, cloudDiscoveryMetadata, authorityMetadata },
      system: { networkClient: new HttpsNetworkClient({ ca: sim.caCertPem }) },
    });
    const requests = sim.stats.requests;
    const result = await app.acquireTokenByClientCredential({ scopes: ['https://outlook.office365.com/.default'] });
    assert.equal(sim.stats.requests, requests + 1, 'only the token request: no discovery');
    await verifyAccessToken(sim, tenantGuid, result!.accessToken, 'https://outlook.office365.com');
  });

  it('answers unknown paths with 404 JSON, wrong methods with 405, unknown tenants with AADSTS90002', async () => {
    const unknown = await get('/nowhere');
    assert.equal(unknown.status, 404);
    assert.equal(unknown.json().error, 'not_found');
    assert.equal((await get(`/${tenantGuid}/oauth2/v2.0/nothing`)).status, 404);
    assert.equal((await get('/')).status, 404);
    const wrongMethod = await get(`/${tenantGuid}/oauth2/v2.0/token`);
    assert.equal(wrongMethod.status, 405);
    assert.equal(wrongMethod.headers.allow, 'POST');
    const badTenant = await get('/not_a_tenant/v2.0/.well-known/openid-configuration');
    assert.equal(badTenant.status, 400);
    assert.deepEqual(badTenant.json().error_codes, [90002]);
    const jsonBody = await httpsRequest(`${sim.url}/${tenantGuid}/oauth2/v2.0/token`, { ca: sim.caCertPem, json: { grant_type: 'client_credentials' } });
    assert.equal(jsonBody.status, 400);
    assert.equal(jsonBody.json().error, 'invalid_request');
    assert.equal((await get('/sandbox/api/nothing')).status, 404);
    const pending = await get('/sandbox/api/pending');
    assert.deepEqual(pending.json(), { pending: [] });
  });

  it('counts requests, token requests and grant types', async () => {
    const before = sim.stats;
    await get(`/${tenantGuid}/discovery/v2.0/keys`);
    await httpsRequest(`${sim.url}/${tenantGuid}/oauth2/v2.0/token`, { ca: sim.caCertPem, form: { grant_type: 'client_credentials', client_id: 'nobody', client_secret: 'x', scope: 'https://outlook.office365.com/.default' } });
    await httpsRequest(`${sim.url}/${tenantGuid}/oauth2/v2.0/token`, { ca: sim.caCertPem, form: { client_id: 'nobody' } });
    const after = sim.stats;
    assert.equal(after.requests, before.requests + 3);
    assert.equal(after.tokenRequests, before.tokenRequests + 2);
    assert.equal(after.byGrant.client_credentials, (before.byGrant.client_credentials ?? 0) + 1);
    assert.equal(after.byGrant['(none)'], (before.byGrant['(none)'] ?? 0) + 1);
    after.byGrant.client_credentials = 999;
    assert.notEqual(sim.stats.byGrant.client_credentials, 999, 'stats is a snapshot');
  });
});
