/**
 * Client credentials (RFC 6749 §4.4) with a secret and with a certificate assertion (RFC 7523), against the
 * identity simulator, driven by msal-node's ConfidentialClientApplication.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey } from 'node:crypto';
import { SignJWT } from 'jose';
import { certificateThumbprints, createPki, type IssuedCertificate } from '../../src/sandbox/pki.js';
import { servicePrincipalObjectId } from '../../src/sandbox/identity/ids.js';
import { startIdentitySimulator, type IdentitySimulator } from '../../src/sandbox/identity/simulator.js';
import { cachedRefreshTokens, confidentialApp, rejection, tenantGuid, tokenRequest, verifyAccessToken } from './support/identity-fixtures.js';

const exchange = 'https://outlook.office365.com';
const scopes = [`${exchange}/.default`];
const assertionType = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

describe('identity simulator: client credentials', () => {
  let sim: IdentitySimulator;
  let cert: IssuedCertificate;
  let strangerCert: IssuedCertificate;
  before(async () => {
    const pki = await createPki('identity test CA');
    sim = await startIdentitySimulator({ pki });
    [cert, strangerCert] = await Promise.all([pki.issueClientCertificate('relay-daemon'), pki.issueClientCertificate('stranger')]);
    sim.registerClientSecret('relay-daemon', 'correct horse battery staple');
    sim.registerClientCertificate('relay-daemon', cert.certPem);
  });
  after(() => sim.close());

  it('issues an app-only Exchange token for a client secret', async () => {
    const app = confidentialApp(sim, 'relay-daemon', { clientSecret: 'correct horse battery staple' });
    const result = await app.acquireTokenByClientCredential({ scopes });
    assert.ok(result);
    const claims = await verifyAccessToken(sim, tenantGuid, result.accessToken, exchange);
    assert.deepEqual(claims.roles, ['SMTP.SendAsApp', 'IMAP.AccessAsApp', 'POP.AccessAsApp']);
    assert.equal(claims.idtyp, 'app');
    assert.equal(claims.appid, 'relay-daemon');
    assert.equal(claims.appidacr, '1');
    assert.equal(claims.oid, servicePrincipalObjectId(tenantGuid, 'relay-daemon'));
    assert.equal(claims.upn, undefined);
    assert.equal(claims.scp, undefined);
    assert.deepEqual(cachedRefreshTokens(app), [], 'no refresh token for client credentials');

    const requests = sim.stats.tokenRequests;
    const again = await app.acquireTokenByClientCredential({ scopes });
    assert.equal(again?.fromCache, true);
    assert.equal(sim.stats.tokenRequests, requests);
  });

  it('answers invalid_client (401) for a wrong secret and for an unknown client', async () => {
    const wrong = await rejection(() => confidentialApp(sim, 'relay-daemon', { clientSecret: 'wrong' }).acquireTokenByClientCredential({ scopes }));
    assert.equal(wrong.errorCode, 'invalid_client');
    assert.match(wrong.message, /AADSTS7000215/);
    const unknown = await rejection(() => confidentialApp(sim, 'nobody', { clientSecret: 'x' }).acquireTokenByClientCredential({ scopes }));
    assert.equal(unknown.errorCode, 'invalid_client');
    assert.match(unknown.message, /AADSTS700016/);
    const raw = await tokenRequest(sim, tenantGuid, { grant_type: 'client_credentials', client_id: 'relay-daemon', client_secret: 'wrong', scope: scopes[0]! });
    assert.equal(raw.status, 401);
    const missing = await tokenRequest(sim, tenantGuid, { grant_type: 'client_credentials', client_id: 'relay-daemon', scope: scopes[0]! });
    assert.equal(missing.status, 401);
    assert.deepEqual(missing.json().error_codes, [7000218]);
  });

  it('issues a token for a certificate assertion with x5t#S256 (PS256), x5t (RS256) and x5c', async () => {
    const { sha1, sha256 } = certificateThumbprints(cert.certPem);
    const variants = [
      { thumbprintSha256: sha256, privateKey: cert.keyPem },
      { thumbprint: sha1, privateKey: cert.keyPem },
      { thumbprintSha256: sha256, privateKey: cert.keyPem, x5c: cert.certPem },
    ];
    for (const clientCertificate of variants) {
      const result = await confidentialApp(sim, 'relay-daemon', { clientCertificate }).acquireTokenByClientCredential({ scopes });
      const claims = await verifyAccessToken(sim, tenantGuid, result!.accessToken, exchange);
      assert.equal(claims.appidacr, '2', 'certificate credential');
      assert.equal(claims.idtyp, 'app');
    }
  });

  it('answers invalid_client for an unregistered certificate', async () => {
    const clientCertificate = { thumbprintSha256: certificateThumbprints(strangerCert.certPem).sha256, privateKey: strangerCert.keyPem };
    const err = await rejection(() => confidentialApp(sim, 'relay-daemon', { clientCertificate }).acquireTokenByClientCredential({ scopes }));
    assert.equal(err.errorCode, 'invalid_client');
    assert.match(err.message, /AADSTS700027/);
  });

  it('checks the assertion signature, audience, lifetime and subject', async () => {
    const tokenEndpoint = `${sim.url}/${tenantGuid}/oauth2/v2.0/token`;
    const x5tS256 = Buffer.from(certificateThumbprints(cert.certPem).sha256, 'hex').toString('base64url');
    const assertion = (claims: Record<string, unknown>, key = cert.keyPem) => {
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({ aud: tokenEndpoint, iss: 'relay-daemon', sub: 'relay-daemon', jti: crypto.randomUUID(), nbf: now, exp: now + 600, ...claims })
        .setProtectedHeader({ alg: 'RS256', 'x5t#S256': x5tS256 })
        .sign(createPrivateKey(key));
    };
    const send = async (jwt: string) =>
      tokenRequest(sim, tenantGuid, { grant_type: 'client_credentials', client_id: 'relay-daemon', scope: scopes[0]!, client_assertion_type: assertionType, client_assertion: jwt });

    assert.equal((await send(await assertion({}))).status, 200);
    const cases: Array<[string, Promise<string>, number]> = [
      ['wrong audience', assertion({ aud: 'https://elsewhere.example/token' }), 700027],
      ['expired', assertion({ nbf: 1_000_000, exp: 1_000_600 }), 700024],
      ['other subject', assertion({ sub: 'someone-else' }), 700021],
      ['signed by another key', assertion({}, strangerCert.keyPem), 700027],
    ];
    for (const [name, jwt, code] of cases) {
      const reply = await send(await jwt);
      assert.equal(reply.status, 401, name);
      assert.equal(reply.json().error, 'invalid_client', name);
      assert.deepEqual(reply.json().error_codes, [code], name);
    }
    const wrongType = await tokenRequest(sim, tenantGuid, {
      grant_type: 'client_credentials', client_id: 'relay-daemon', scope: scopes[0]!, client_assertion_type: 'saml', client_assertion: await assertion({}),
    });
    assert.equal(wrongType.json().error, 'invalid_request');
  });

  it('requires a tenant and a /.default scope', async () => {
    const common = await rejection(() =>
      confidentialApp(sim, 'relay-daemon', { clientSecret: 'correct horse battery staple' }, 'common').acquireTokenByClientCredential({ scopes }),
    );
    // msal-node refuses before sending anything (ConfidentialClientApplication.acquireTokenByClientCredential) ...
    assert.equal(common.errorCode, 'missing_tenant_id_error');
    // ... and the endpoint refuses too, for clients that do send it.
    const raw = await tokenRequest(sim, 'organizations', {
      grant_type: 'client_credentials', client_id: 'relay-daemon', client_secret: 'correct horse battery staple', scope: scopes[0]!,
    });
    assert.equal(raw.status, 400);
    assert.deepEqual(raw.json().error_codes, [50059]);
    const notDefault = await tokenRequest(sim, tenantGuid, {
      grant_type: 'client_credentials', client_id: 'relay-daemon', client_secret: 'correct horse battery staple', scope: `${exchange}/SMTP.SendAsApp`,
    });
    assert.equal(notDefault.json().error, 'invalid_scope');
    assert.deepEqual(notDefault.json().error_codes, [1002012]);
  });
});
