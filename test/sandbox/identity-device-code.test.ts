/**
 * Device authorization grant (RFC 8628) against the identity simulator, driven by real msal-node.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import { startIdentitySimulator, type IdentitySimulator } from '../../src/sandbox/identity/simulator.js';
import { tenantGuidFor, userObjectId } from '../../src/sandbox/identity/ids.js';
import { deviceCodeFlow, httpsRequest, publicApp, rejection, tenantGuid, tokenRequest, verifyAccessToken } from './support/identity-fixtures.js';

const deviceGrant = 'urn:ietf:params:oauth:grant-type:device_code';

describe('identity simulator: device code', () => {
  let sim: IdentitySimulator;
  before(async () => {
    sim = await startIdentitySimulator({ pollIntervalSec: 0.1 });
  });
  after(() => sim.close());

  it('keeps MSAL pending until approved on the device-login form, then issues a verifiable Outlook token', async () => {
    const app = publicApp(sim);
    const before = sim.stats;
    const result = await deviceCodeFlow(app, async (userCode) => {
      assert.match(userCode, /^[A-Z0-9]{9}$/);
      const pending = sim.pendingDeviceCodes().find((p) => p.userCode === userCode);
      assert.ok(pending, 'the code is listed as pending');
      assert.equal(pending.clientId, 'relay-public-client');
      assert.ok(pending.scopes.includes('https://outlook.office.com/SMTP.Send'));
      await new Promise((r) => setTimeout(r, 350)); // let MSAL poll a few times while pending
      const page = await httpsRequest(sim.verificationUri, { ca: sim.caCertPem });
      assert.equal(page.status, 200);
      assert.match(page.text, /name="user_code"/);
      // What a person types: lower case with a dash in the middle still matches (RFC 8628 §6.1).
      const typed = `${userCode.slice(0, 4).toLowerCase()}-${userCode.slice(4)}`;
      const done = await httpsRequest(sim.verificationUri, { ca: sim.caCertPem, form: { user_code: typed, upn: 'alice.smith@contoso.com', action: 'approve' } });
      assert.equal(done.status, 200);
      assert.match(done.text, /signed in as <b>alice\.smith@contoso\.com<\/b>/);
    });
    assert.ok(result);
    // msal-node sends grant_type=device_code, not the RFC 8628 URN.
    const polls = sim.stats.byGrant.device_code! - (before.byGrant.device_code ?? 0);
    assert.ok(polls >= 2, `MSAL polled while pending (${polls} polls)`);
    assert.equal(result.account?.username, 'alice.smith@contoso.com');
    assert.equal(result.account?.tenantId, tenantGuid);
    assert.equal(result.account?.homeAccountId, `${userObjectId('alice.smith@contoso.com')}.${tenantGuid}`);

    const claims = await verifyAccessToken(sim, tenantGuid, result.accessToken, 'https://outlook.office.com');
    assert.equal(claims.iss, `https://sts.windows.net/${tenantGuid}/`);
    assert.equal(claims.upn, 'alice.smith@contoso.com');
    assert.equal(claims.preferred_username, 'alice.smith@contoso.com');
    assert.equal(claims.unique_name, 'alice.smith@contoso.com');
    assert.equal(claims.tid, tenantGuid);
    assert.equal(claims.oid, userObjectId('alice.smith@contoso.com'));
    assert.equal(claims.appid, 'relay-public-client');
    assert.equal(claims.scp, 'SMTP.Send IMAP.AccessAsUser.All POP.AccessAsUser.All');
    assert.equal(claims.idtyp, 'user');
    assert.equal(claims.ver, '1.0');
    assert.equal(claims.exp! - claims.iat!, 3600);
    assert.ok(result.accessToken.length < 3072, `token is ${result.accessToken.length} bytes`);
    assert.equal(decodeJwt(result.idToken).aud, 'relay-public-client');
    assert.deepEqual(
      [...result.scopes].sort(),
      ['https://outlook.office.com/IMAP.AccessAsUser.All', 'https://outlook.office.com/POP.AccessAsUser.All', 'https://outlook.office.com/SMTP.Send'],
    );
    assert.equal((await app.getAllAccounts()).length, 1, 'MSAL cached the account');
  });

  it('approves through the JSON API, with a domain tenant mapped to a stable GUID', async () => {
    const app = publicApp(sim, 'contoso.com');
    const result = await deviceCodeFlow(app, async (userCode) => {
      const reply = await httpsRequest(`${sim.url}/sandbox/api/approve`, { ca: sim.caCertPem, json: { userCode, upn: 'printer@contoso.com' } });
      assert.equal(reply.status, 200);
      assert.equal(reply.json().status, 'approved');
    });
    const claims = await verifyAccessToken(sim, 'contoso.com', result!.accessToken, 'https://outlook.office.com');
    assert.equal(claims.tid, tenantGuidFor('contoso.com'));
    assert.equal(sim.issuer('contoso.com'), `https://sts.windows.net/${tenantGuidFor('contoso.com')}/`);
  });

  it("under 'organizations' issues the token in the mailbox's home tenant", async () => {
    const app = publicApp(sim, 'organizations');
    const result = await deviceCodeFlow(app, (userCode) => sim.approve(userCode, 'scanner@fabrikam.example'));
    const claims = decodeJwt(result!.accessToken);
    assert.equal(claims.tid, tenantGuidFor('fabrikam.example'));
    assert.equal(result!.account?.tenantId, tenantGuidFor('fabrikam.example'));
  });

  it('ends MSAL polling with authorization_declined when the person declines', async () => {
    const app = publicApp(sim);
    const err = await rejection(() => deviceCodeFlow(app, (userCode) => sim.decline(userCode)));
    // msal-node DeviceCodeClient turns every polling error except authorization_pending into
    // post_request_failed carrying only the `error` string (error_description and codes are dropped).
    assert.equal(err.errorCode, 'post_request_failed');
    assert.equal(err.errorMessage, 'authorization_declined');
    assert.throws(() => sim.approve('NOSUCHCODE', 'a@b.example'), /Unknown code/);
  });

  it('refuses a second approval and bad mailboxes with a readable error', async () => {
    const app = publicApp(sim);
    await deviceCodeFlow(app, async (userCode) => {
      const bad = await httpsRequest(`${sim.url}/sandbox/api/approve`, { ca: sim.caCertPem, json: { userCode, upn: 'not-a-mailbox' } });
      assert.equal(bad.status, 400);
      assert.equal(bad.json().error, 'invalid_user_code');
      const form = await httpsRequest(sim.verificationUri, { ca: sim.caCertPem, form: { user_code: 'ZZZZZZZZZ', upn: 'a@b.example', action: 'approve' } });
      assert.equal(form.status, 400);
      assert.match(form.text, /Unknown code/);
      sim.approve(userCode, 'bob@contoso.com');
      assert.throws(() => sim.approve(userCode, 'eve@contoso.com'), /already used/);
    });
  });

  it('rejects delegated requests for application permissions and for two resources', async () => {
    const devicecode = (scope: string) =>
      httpsRequest(`${sim.url}/${tenantGuid}/oauth2/v2.0/devicecode`, { ca: sim.caCertPem, form: { client_id: 'raw-client', scope } });
    const appOnly = await devicecode('https://outlook.office.com/SMTP.SendAsApp');
    assert.equal(appOnly.status, 400);
    assert.equal(appOnly.json().error, 'invalid_scope');
    const twoResources = await devicecode('https://outlook.office.com/SMTP.Send https://graph.microsoft.com/Mail.Send');
    assert.equal(twoResources.json().error, 'invalid_request');
    assert.deepEqual(twoResources.json().error_codes, [28000]);
  });
});

describe('identity simulator: device code on the wire', () => {
  let sim: IdentitySimulator;
  before(async () => {
    // A long interval, so "an immediate second poll is too fast" holds however slow the machine is.
    sim = await startIdentitySimulator({ pollIntervalSec: 2 });
  });
  after(() => sim.close());

  it('answers the RFC 8628 polling errors on the wire', async () => {
    const dc = await httpsRequest(`${sim.url}/${tenantGuid}/oauth2/v2.0/devicecode`, {
      ca: sim.caCertPem,
      form: { client_id: 'raw-client', scope: 'https://outlook.office.com/SMTP.Send offline_access' },
    });
    assert.equal(dc.status, 200);
    const code = dc.json<{ device_code: string; user_code: string; verification_uri: string; interval: number; expires_in: number; message: string }>();
    assert.equal(code.verification_uri, sim.verificationUri);
    assert.equal(code.interval, 2);
    assert.equal(code.expires_in, 900);
    assert.ok(code.message.includes(code.user_code));

    const poll = (deviceCode = code.device_code, clientId = 'raw-client') =>
      tokenRequest(sim, tenantGuid, { grant_type: deviceGrant, client_id: clientId, device_code: deviceCode });
    const first = await poll();
    assert.equal(first.status, 400);
    const body = first.json<{ error: string; error_description: string; error_codes: number[]; trace_id: string; correlation_id: string; timestamp: string }>();
    assert.equal(body.error, 'authorization_pending');
    assert.match(body.error_description, /^AADSTS70016: /);
    assert.deepEqual(body.error_codes, [70016]);
    assert.ok(body.trace_id && body.correlation_id && body.timestamp);
    assert.equal((await poll()).json().error, 'slow_down', 'an immediate second poll is too fast (< interval/2)');
    assert.equal((await poll('no-such-device-code')).json().error, 'bad_verification_code');
    assert.equal((await poll(code.device_code, 'another-client')).json().error, 'invalid_grant');

    sim.approve(code.user_code, 'carol@contoso.com');
    const ok = await poll();
    assert.equal(ok.status, 200);
    const tokens = ok.json<{ access_token: string; refresh_token?: string; id_token?: string; token_type: string }>();
    assert.equal(tokens.token_type, 'Bearer');
    assert.ok(tokens.refresh_token, 'offline_access gives a refresh token');
    assert.equal(tokens.id_token, undefined, 'no openid, no ID token');
    assert.equal((await poll()).json().error, 'invalid_grant', 'a device code is redeemed once');
  });
});

describe('identity simulator: device code expiry', () => {
  let sim: IdentitySimulator;
  before(async () => {
    sim = await startIdentitySimulator({ pollIntervalSec: 0.1, deviceCodeLifetimeSec: 0.5 });
  });
  after(() => sim.close());

  it('answers expired_token once the code outlives deviceCodeLifetimeSec', async () => {
    const dc = await httpsRequest(`${sim.url}/${tenantGuid}/oauth2/v2.0/devicecode`, {
      ca: sim.caCertPem,
      form: { client_id: 'raw-client', scope: 'https://outlook.office.com/SMTP.Send' },
    });
    const code = dc.json<{ device_code: string; user_code: string }>();
    await new Promise((r) => setTimeout(r, 600));
    const reply = await tokenRequest(sim, tenantGuid, { grant_type: deviceGrant, client_id: 'raw-client', device_code: code.device_code });
    assert.equal(reply.status, 400);
    assert.equal(reply.json().error, 'expired_token');
    assert.deepEqual(reply.json().error_codes, [70019]);
    assert.throws(() => sim.approve(code.user_code, 'late@contoso.com'), /expired/);
    assert.deepEqual(sim.pendingDeviceCodes(), []);
  });

  it('makes MSAL give up when nobody approves in time', async () => {
    const app = publicApp(sim);
    const err = await rejection(() => deviceCodeFlow(app, () => undefined));
    // Whichever comes first: the server's expired_token, or MSAL's own check of expires_in, which compares
    // whole seconds (DeviceCodeClient.continuePolling, TimeUtils.nowSeconds rounds).
    assert.ok(
      (err.errorCode === 'post_request_failed' && err.errorMessage === 'expired_token') || err.errorCode === 'device_code_expired',
      `unexpected ${String(err.errorCode)}: ${String(err.errorMessage)}`,
    );
  });
});
