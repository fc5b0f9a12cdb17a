/**
 * One test per row of the table in src/auth/identity-errors.ts, each through real msal-node against the simulator
 * answering exactly that: which answers make a working account *invalid*, which leave it *acquired* with its token
 * kept and retried, and which make it *not acquired*.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createEncryptedFileStore } from '../../src/auth/store/index.js';
import { isRelayError } from '../../src/errors.js';
import type { ScriptedTokenAnswer } from '../../src/sandbox/identity/simulator.js';
import { eventually, type SandboxEnv } from '../support/sandbox-env.js';
import { signIn, tokenWorld, TEST_STORE_KEY } from './support/token-world.js';

const envs: SandboxEnv[] = [];
after(() => Promise.all(envs.map((e) => e.close())));

const fast = { identity: { tokens: { retryInitialSeconds: 0.05, retryMaxSeconds: 0.1 } } };

const invalidating: Array<[string, ScriptedTokenAnswer, RegExp]> = [
  ['invalid_grant, refresh token revoked (AADSTS50173)', { status: 400, error: 'invalid_grant', aadsts: 50173 }, /revoked.*sign in again/],
  ['invalid_grant, expired after inactivity (AADSTS700082)', { status: 400, error: 'invalid_grant', aadsts: 700082 }, /90 days/],
  ['invalid_grant, password changed (AADSTS50055)', { status: 400, error: 'invalid_grant', aadsts: 50055 }, /password has expired/],
  ['invalid_grant, user disabled (AADSTS50057)', { status: 400, error: 'invalid_grant', aadsts: 50057 }, /disabled/],
  ['invalid_grant, consent withdrawn (AADSTS65001)', { status: 400, error: 'invalid_grant', aadsts: 65001 }, /consent/],
  ['interaction_required, sign-in frequency (AADSTS70043)', { status: 400, error: 'interaction_required', aadsts: 70043 }, /sign-in frequency/],
  ['invalid_grant, blocked by Conditional Access (AADSTS53003)', { status: 400, error: 'invalid_grant', aadsts: 53003 }, /Conditional Access.*browser or client-credentials/],
  ['invalid_client (AADSTS7000222)', { status: 401, error: 'invalid_client', aadsts: 7000222 }, /secret has expired/],
  ['unauthorized_client', { status: 400, error: 'unauthorized_client' }, /not allowed to use this flow/],
];

const passing: Array<[string, ScriptedTokenAnswer]> = [
  ['HTTP 500 carrying invalid_grant', { status: 500, error: 'invalid_grant', aadsts: 50173 }],
  ['HTTP 503 carrying invalid_request', { status: 503, error: 'invalid_request' }],
  ['HTTP 429 throttled', { status: 429, error: 'temporarily_unavailable' }],
  ['HTTP 502 with a proxy\'s HTML page', { status: 502, error: 'Bad gateway', html: true }],
  ['invalid_request with a known AADSTS number (90002)', { status: 400, error: 'invalid_request', aadsts: 90002 }],
  ['invalid_scope', { status: 400, error: 'invalid_scope', aadsts: 70011 }],
  ['an error the table does not know', { status: 400, error: 'something_new', aadsts: 9999999 }],
];

test('identity answers that make a token invalid: each turns the account invalid with its reason', async () => {
  const { env, services } = await tokenWorld(envs, { config: fast });
  const service = services.get('scanner');
  for (const [name, answer, reason] of invalidating) {
    if (service.state.state !== 'acquired') await signIn(env, services);
    const token = await services.accessTokenFor('scanner');
    env.sim.scriptTokenAnswer(answer);
    await assert.rejects(services.tokenRejected('scanner', token.token), (err) => isRelayError(err, 'TOKEN_INVALID'), name);
    env.sim.scriptTokenAnswer(null);
    const state = service.state;
    assert.equal(state.state, 'invalid', name);
    assert.match(state.state === 'invalid' ? state.reason : '', reason, name);
  }
  await services.stop();
});

test('passing identity answers (5xx whatever the body, 429, HTML pages, invalid_request, invalid_scope, unknown) keep the token', async () => {
  const { env, services } = await tokenWorld(envs, { config: fast });
  await signIn(env, services);
  const service = services.get('scanner');
  const store = createEncryptedFileStore({ stateDir: env.config.stateDir, key: Buffer.from(TEST_STORE_KEY, 'hex') });
  for (const [name, answer] of passing) {
    const token = await services.accessTokenFor('scanner');
    env.sim.scriptTokenAnswer(answer);
    await assert.rejects(services.tokenRejected('scanner', token.token), (err) => isRelayError(err, 'TOKEN_REFRESH_FAILED'), name);
    assert.equal(service.state.state, 'acquired', name);
    assert.ok(await store.load('scanner'), `${name}: the stored token is still there`);
    env.sim.scriptTokenAnswer(null);
    // The retry timer (back-off) gets a new token by itself once the platform answers normally again.
    await eventually(() => services.accessTokenFor('scanner'), 5000, `${name}: recovery`);
  }
  assert.doesNotMatch(env.logText(), /"msg":"token is invalid/);
  await services.stop();
});

test('network failures (connection reset, refused) keep the token, and the reason names the host and the cause', async () => {
  const { env, services } = await tokenWorld(envs, { config: fast });
  await signIn(env, services);
  const token = await services.accessTokenFor('scanner');
  env.sim.setOutage('reset');
  await assert.rejects(services.tokenRejected('scanner', token.token), (err) => isRelayError(err, 'TOKEN_REFRESH_FAILED') && /127\.0\.0\.1:\d+\) could not be reached: the connection was cut/.test(err.message) && /stored token is kept/.test(err.message));
  assert.equal(services.get('scanner').state.state, 'acquired');
  env.sim.setOutage('none');
  await eventually(() => services.accessTokenFor('scanner'), 5000, 'recovery');
  await services.stop();
});

test('no token stored (another process deleted it): not acquired, never invalid', async () => {
  const { env, services } = await tokenWorld(envs);
  await signIn(env, services);
  const token = await services.accessTokenFor('scanner');
  const store = createEncryptedFileStore({ stateDir: env.config.stateDir, key: Buffer.from(TEST_STORE_KEY, 'hex') });
  await store.remove('scanner');
  const seen: string[] = [];
  services.get('scanner').on('state', (s) => seen.push(s.state));
  await assert.rejects(services.tokenRejected('scanner', token.token), (err) => isRelayError(err, 'TOKEN_NOT_ACQUIRED'));
  assert.equal(services.get('scanner').state.state, 'not-acquired');
  assert.ok(!seen.includes('invalid'), `states seen: ${seen.join(', ')}`);
  await services.stop();
});

test('a device-code sign-in refused by Conditional Access (AADSTS53003 while polling) says so and points at the other flows', async () => {
  const { env, services } = await tokenWorld(envs);
  const service = services.get('scanner');
  const prompt = await service.startDeviceCode();
  // The person signs in, and the tenant's policy refuses the device code flow: the platform answers the next poll so.
  env.sim.scriptTokenAnswer({ status: 400, error: 'invalid_grant', aadsts: 53003 });
  await prompt.done;
  env.sim.scriptTokenAnswer(null);
  assert.match(service.lastSignInFailure ?? '', /Conditional Access.*flow: browser or client-credentials/);
  const state = service.state;
  assert.equal(state.state, 'invalid');
  await services.stop();
});
