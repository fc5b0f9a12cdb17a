/**
 * The token service with real msal-node against the sandbox identity simulator over HTTPS: no mocks.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { TokenServices } from '../../src/auth/token-services.js';
import type { TokenState } from '../../src/auth/token-state.js';
import { nextState, restartedServices, signIn, tokenWorld } from './support/token-world.js';
import { isRelayError } from '../../src/errors.js';
import { createPki } from '../../src/sandbox/pki.js';
import { SANDBOX_MAILBOX } from '../../src/sandbox/sandbox-config.js';
import { eventually, startSandboxEnv, type SandboxEnv } from '../support/sandbox-env.js';

const envs: SandboxEnv[] = [];
const secretsSeen = new Set<string>();
after(() => Promise.all(envs.map((e) => e.close())));


const world = (opts: Parameters<typeof tokenWorld>[1] = {}) => tokenWorld(envs, opts);

/** All refresh-token secrets in the decrypted MSAL cache of an account. */
async function storedRefreshTokens(services: TokenServices, env: SandboxEnv): Promise<string[]> {
  const { createEncryptedFileStore } = await import('../../src/auth/store/index.js');
  const store = createEncryptedFileStore({ stateDir: env.config.stateDir, key: Buffer.from('ab'.repeat(32), 'hex') });
  const text = await store.load('scanner');
  if (!text) return [];
  const cache = JSON.parse(text) as { RefreshToken?: Record<string, { secret: string }> };
  void services;
  return Object.values(cache.RefreshToken ?? {}).map((t) => t.secret);
}

test('device code: pending, then approved, gives acquired and a valid token', async () => {
  const { env, services } = await world();
  const service = services.get('scanner');
  assert.equal(service.state.state, 'not-acquired');
  await assert.rejects(services.accessTokenFor('scanner'), (err) => isRelayError(err, 'TOKEN_NOT_ACQUIRED'));

  const acquired = nextState(services, 'scanner', 'acquired');
  const prompt = await service.startDeviceCode();
  const waiting = service.state as TokenState;
  if (waiting.state !== 'waiting-authorization') assert.fail(`expected waiting-authorization, got ${waiting.state}`);
  assert.equal(waiting.userCode, prompt.userCode);
  assert.equal(prompt.verificationUri, env.sim.verificationUri);
  assert.ok(prompt.expiresAt.getTime() > Date.now() + 60_000);
  await new Promise((r) => setTimeout(r, 1500)); // at least one authorization_pending poll
  assert.equal(service.state.state, 'waiting-authorization');
  env.sim.approve(prompt.userCode, SANDBOX_MAILBOX);
  const state = await acquired;

  const token = await services.accessTokenFor('scanner');
  secretsSeen.add(token.token);
  const claims = decodeJwt(token.token);
  assert.equal(claims.upn, SANDBOX_MAILBOX);
  assert.equal(claims.aud, 'https://outlook.office.com');
  assert.match(String(claims.scp), /SMTP\.Send/);
  assert.equal(state.state === 'acquired' && state.expiresAt, token.expiresAt.toISOString());
  for (const rt of await storedRefreshTokens(services, env)) secretsSeen.add(rt);

  // The token file holds no token in plaintext (nor base64 of one).
  const dir = join(env.config.stateDir, 'tokens');
  for (const file of await readdir(dir)) {
    const raw = await readFile(join(dir, file), 'utf8');
    for (const secret of [token.token, ...(await storedRefreshTokens(services, env))]) {
      assert.ok(!raw.includes(secret) && !raw.includes(Buffer.from(secret).toString('base64')), 'token in plaintext on disk');
      assert.ok(!raw.includes(secret.slice(20, 60)), 'part of a token in plaintext on disk');
    }
  }
  await services.stop();
});

test('device code declined or expired: back to not-acquired with the reason', async () => {
  const { env, services } = await world({ sim: { deviceCodeLifetimeSec: 2 } });
  const service = services.get('scanner');
  const back = nextState(services, 'scanner', 'not-acquired');
  const prompt = await service.startDeviceCode();
  env.sim.decline(prompt.userCode);
  await back;
  assert.match(service.lastSignInFailure ?? '', /declined/);

  const again = nextState(services, 'scanner', 'not-acquired');
  await service.startDeviceCode();
  await again; // nobody approves within 2 s
  assert.match(service.lastSignInFailure ?? '', /expired/);
  await services.stop();
});

test('a token inside the refresh margin is served at once while one refresh runs behind it; the rotated refresh token is persisted', async () => {
  // 602 s lifetime: inside the 600 s refresh margin after two seconds, but far from the 5-minute floor.
  const { env, services } = await world({ sim: { accessTokenLifetimeSec: 602 } });
  await signIn(env, services);
  const first = await services.accessTokenFor('scanner');
  const refreshBefore = await storedRefreshTokens(services, env);
  const requestsBefore = env.sim.stats.byGrant.refresh_token ?? 0;
  await new Promise((r) => setTimeout(r, 2500));
  const started = performance.now();
  const second = await services.accessTokenFor('scanner');
  const waitedMs = performance.now() - started;
  assert.equal(second.token, first.token, 'the still-valid token is served, not waited for');
  assert.ok(waitedMs < 50, `served in ${waitedMs.toFixed(1)} ms`);
  const third = await eventually(async () => {
    const t = await services.accessTokenFor('scanner');
    assert.notEqual(t.token, first.token);
    return t;
  }, 5000, 'the refresh behind');
  secretsSeen.add(first.token).add(third.token);
  assert.equal((env.sim.stats.byGrant.refresh_token ?? 0) - requestsBefore, 1);
  const refreshAfter = await storedRefreshTokens(services, env);
  for (const rt of [...refreshBefore, ...refreshAfter]) secretsSeen.add(rt);
  assert.equal(refreshAfter.length, 1);
  assert.ok(!refreshBefore.includes(refreshAfter[0]!), 'the rotated refresh token replaced the old one on disk');
  await services.stop();
});

test('a token with less than 5 minutes left is never handed out: the caller waits for the refresh', async () => {
  const { env, services } = await world({ sim: { accessTokenLifetimeSec: 302 } });
  await signIn(env, services);
  const first = await services.accessTokenFor('scanner');
  const requestsBefore = env.sim.stats.byGrant.refresh_token ?? 0;
  await new Promise((r) => setTimeout(r, 2500));
  const second = await services.accessTokenFor('scanner');
  secretsSeen.add(first.token).add(second.token);
  assert.notEqual(second.token, first.token);
  assert.ok(second.expiresAt.getTime() - Date.now() > 295_000);
  // 302 s is inside the 10-minute margin from the start, so a refresh already ran behind the first call.
  assert.ok((env.sim.stats.byGrant.refresh_token ?? 0) - requestsBefore >= 1);
  await services.stop();
});

test('revoked refresh token: the account turns invalid with a reason in words', async () => {
  const { env, services } = await world({ sim: { accessTokenLifetimeSec: 602 } });
  await signIn(env, services);
  secretsSeen.add((await services.accessTokenFor('scanner')).token);
  env.sim.revokeRefreshTokens(SANDBOX_MAILBOX);
  const invalid = nextState(services, 'scanner', 'invalid');
  await new Promise((r) => setTimeout(r, 2500));
  // Still valid for almost 10 minutes: served, and the refresh behind it meets the revocation.
  secretsSeen.add((await services.accessTokenFor('scanner')).token);
  const state = await invalid;
  await assert.rejects(services.accessTokenFor('scanner'), (err) => isRelayError(err, 'TOKEN_INVALID'));
  assert.match(state.state === 'invalid' ? state.reason : '', /revoked.*sign in again/);
  // Invalid stays invalid without hammering the platform.
  const before = env.sim.stats.tokenRequests;
  await assert.rejects(services.accessTokenFor('scanner'), (err) => isRelayError(err, 'TOKEN_INVALID'));
  assert.equal(env.sim.stats.tokenRequests, before);
  // A new sign-in makes it acquired again.
  await signIn(env, services);
  secretsSeen.add((await services.accessTokenFor('scanner')).token);
  await services.stop();
});

test('identity platform unreachable: the token is kept, still acquired, retried, nothing deleted', async () => {
  const { env, services } = await world({ sim: { accessTokenLifetimeSec: 3600 }, config: { identity: { tokens: { retryInitialSeconds: 0.2, retryMaxSeconds: 0.5 } } } });
  await signIn(env, services);
  const token = await services.accessTokenFor('scanner');
  secretsSeen.add(token.token);
  for (const mode of ['http503', 'reset'] as const) {
    env.sim.setOutage(mode);
    // Upstream rejected the token: a forced refresh is needed, the platform is down.
    await assert.rejects(services.tokenRejected('scanner', (await services.accessTokenFor('scanner').catch(() => token)).token), (err) => isRelayError(err, 'TOKEN_REFRESH_FAILED'));
    assert.equal(services.get('scanner').state.state, 'acquired');
    assert.ok((await storedRefreshTokens(services, env)).length === 1, 'refresh token still stored');
    env.sim.setOutage('none');
    // The retry timer refreshes on its own once the platform is back.
    const refreshed = await eventually(() => services.accessTokenFor('scanner'), 5000, 'refresh after outage');
    secretsSeen.add(refreshed.token);
  }
  await services.stop();
});

test('a restarted process finds its token and serves it without asking the platform', async () => {
  const { env, services } = await world();
  await signIn(env, services);
  secretsSeen.add((await services.accessTokenFor('scanner')).token);
  await services.stop();
  const restarted = await restartedServices(env);
  assert.equal(restarted.get('scanner').state.state, 'acquired');
  const before = env.sim.stats.tokenRequests;
  secretsSeen.add((await restarted.accessTokenFor('scanner')).token);
  assert.equal(env.sim.stats.tokenRequests - before, 0, 'no token request after a start or a sign-in while the token has plenty of life');
  await restarted.stop();
});

test('1,000 concurrent callers on a cold account whose token is under the floor cause one token request; logout empties the store', async () => {
  const { env, services } = await world({ sim: { accessTokenLifetimeSec: 302 } });
  await signIn(env, services);
  secretsSeen.add((await services.accessTokenFor('scanner')).token);
  await services.stop();
  await new Promise((r) => setTimeout(r, 2500)); // now under the 5-minute floor
  const cold = await restartedServices(env);
  const before = env.sim.stats.tokenRequests;
  const tokens = await Promise.all(Array.from({ length: 1000 }, () => cold.accessTokenFor('scanner')));
  assert.equal(env.sim.stats.tokenRequests - before, 1);
  assert.equal(new Set(tokens.map((t) => t.token)).size, 1);
  secretsSeen.add(tokens[0]!.token);

  await cold.get('scanner').logout();
  assert.equal(cold.get('scanner').state.state, 'not-acquired');
  assert.deepEqual(await storedRefreshTokens(cold, env), []);
  await assert.rejects(cold.accessTokenFor('scanner'), (err) => isRelayError(err, 'TOKEN_NOT_ACQUIRED'));
  await cold.stop();
});

test('client credentials with a secret file and with a certificate', async () => {
  const pki = await createPki();
  const cert = await pki.issueClientCertificate('xoauth2-relay test app');
  const secret = 'sandbox-secret-value-0123456789';
  secretsSeen.add(secret);
  const probe = await startSandboxEnv();
  envs.push(probe);
  const dir = probe.dir;
  await writeFile(join(dir, 'secret'), `${secret}\n`, { mode: 0o600 });
  await writeFile(join(dir, 'app.crt'), cert.certPem);
  await writeFile(join(dir, 'app.key'), cert.keyPem, { mode: 0o600 });
  const app = (clientId: string, extra: Record<string, unknown>) => ({ mailbox: 'scanner@sandbox.test', tenantId: 'contoso.com', clientId, flow: 'client-credentials', ...extra });
  const { env, services } = await world({
    config: {
      accounts: {
        bysecret: app('a0000000-0000-4000-8000-000000000001', { clientSecretFile: join(dir, 'secret') }),
        bycert: app('a0000000-0000-4000-8000-000000000002', { certificateFile: join(dir, 'app.crt'), privateKeyFile: join(dir, 'app.key') }),
        wrong: app('a0000000-0000-4000-8000-000000000003', { clientSecretFile: join(dir, 'secret') }),
      },
    },
  });
  env.sim.registerClientSecret('a0000000-0000-4000-8000-000000000001', secret);
  env.sim.registerClientCertificate('a0000000-0000-4000-8000-000000000002', cert.certPem);
  env.sim.registerClientSecret('a0000000-0000-4000-8000-000000000003', 'a-different-secret');
  for (const name of ['bysecret', 'bycert']) {
    const token = await services.get(name).acquireAppOnly();
    secretsSeen.add(token.token);
    const claims = decodeJwt(token.token);
    assert.equal(claims.aud, 'https://outlook.office365.com');
    assert.equal(claims.idtyp, 'app');
    assert.ok(Array.isArray(claims.roles) && claims.roles.includes('SMTP.SendAsApp'));
    assert.equal(services.get(name).state.state, 'acquired');
  }
  await Promise.all(services.all().map((s) => s.flush()));
  const restarted = await restartedServices(env);
  assert.equal(restarted.get('bysecret').state.state, 'acquired', 'a restarted process finds the app-only token');
  await restarted.stop();
  await assert.rejects(services.get('wrong').acquireAppOnly(), (err) => isRelayError(err, 'TOKEN_INVALID'));
  const state = services.get('wrong').state;
  assert.match(state.state === 'invalid' ? state.reason : '', /secret/);
  await services.stop();
});


/** Plays the admin's browser: opens the sign-in page, signs in, and follows the form_post back to MSAL's loopback. */
async function browserSignIn(env: SandboxEnv, url: string, upn: string): Promise<void> {
  const https = await import('node:https');
  const request = (target: string, body?: string) =>
    new Promise<string>((resolve, reject) => {
      const req = https.request(target, { method: body === undefined ? 'GET' : 'POST', ca: env.sim.caCertPem, headers: body === undefined ? {} : { 'content-type': 'application/x-www-form-urlencoded' } }, (res) => {
        let text = '';
        res.on('data', (d) => (text += String(d)));
        res.on('end', () => resolve(text));
      });
      req.on('error', reject);
      req.end(body);
    });
  const page = await request(url);
  const requestId = /name="request" value="([^"]+)"/.exec(page)?.[1];
  assert.ok(requestId, 'sign-in page has a request id');
  const posted = await request(url, new URLSearchParams({ request: requestId, upn, action: 'approve' }).toString());
  const action = /<form method="post" action="([^"]+)"/.exec(posted)?.[1]?.replaceAll('&amp;', '&');
  assert.ok(action?.startsWith('http://localhost:'), `form_post back to the loopback redirect, got ${action}`);
  const fields = new URLSearchParams([...posted.matchAll(/name="([^"]+)" value="([^"]*)"/g)].map((m): [string, string] => [m[1]!, m[2]!.replaceAll('&amp;', '&')]));
  const back = await fetch(action!, { method: 'POST', body: fields });
  assert.equal(back.status, 200);
  assert.match(await back.text(), /Signed in/);
}

test('browser sign-in (PKCE, loopback redirect) gives acquired', async () => {
  const { env, services } = await world({ config: { accounts: { scanner: { flow: 'browser' } } } });
  const service = services.get('scanner');
  let shown = '';
  const token = await service.startBrowser(async (url) => {
    shown = url;
    assert.equal(service.state.state, 'waiting-authorization');
    void browserSignIn(env, url, SANDBOX_MAILBOX);
  });
  secretsSeen.add(token.token);
  assert.match(shown, /code_challenge_method=S256/);
  assert.match(shown, /login_hint=scanner%40sandbox\.test/);
  assert.equal(service.state.state, 'acquired');
  assert.equal(decodeJwt(token.token).upn, SANDBOX_MAILBOX);
  await services.stop();
});

test('logs at the most verbose level contain no token, secret or password (run last, over every test\'s log)', async () => {
  const text = envs.map((e) => e.logText()).join('');
  assert.ok(text.includes('access token refreshed'), 'expected trace-level log output from the token service');
  assert.ok(secretsSeen.size >= 5);
  for (const secret of secretsSeen) assert.ok(!text.includes(secret), `a secret (${secret.slice(0, 6)}…) appeared in the log`);
});
