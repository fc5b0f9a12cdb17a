/**
 * What the token service says about an account is what is true (issue "tokens tell the truth"), in one process
 * with real msal-node against the simulator: re-sign-in on a working account, Delete token racing a slow refresh,
 * a token file that cannot be opened, and how long callers wait while the identity platform is down.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, rm } from 'node:fs/promises';
import { createEncryptedFileStore, tokenFilePath } from '../../src/auth/store/index.js';
import { isRelayError } from '../../src/errors.js';
import { eventually, type SandboxEnv } from '../support/sandbox-env.js';
import { restartedServices, signIn, tokenWorld, TEST_STORE_KEY } from './support/token-world.js';

const envs: SandboxEnv[] = [];
after(() => Promise.all(envs.map((e) => e.close())));

test('a re-sign-in on an acquired account keeps it acquired while the code waits, and a declined or expired code ends only the attempt', async () => {
  const { env, services } = await tokenWorld(envs, { sim: { deviceCodeLifetimeSec: 2 } });
  await signIn(env, services);
  const service = services.get('scanner');
  const token = await services.accessTokenFor('scanner');

  const prompt = await service.startDeviceCode();
  const waiting = service.state;
  assert.equal(waiting.state, 'acquired');
  assert.equal(waiting.state === 'acquired' ? waiting.signIn?.userCode : null, prompt.userCode, 'the pending code is shown beside the state');
  assert.equal((await services.accessTokenFor('scanner')).token, token.token, 'the working token keeps serving');
  env.sim.decline(prompt.userCode);
  await prompt.done;
  assert.equal(service.state.state, 'acquired');
  assert.equal(service.state.state === 'acquired' ? service.state.signIn ?? null : 'x', null);
  assert.match(service.lastSignInFailure ?? '', /declined/);

  const expiring = await service.startDeviceCode();
  await expiring.done; // nobody approves within 2 s
  assert.equal(service.state.state, 'acquired');
  assert.match(service.lastSignInFailure ?? '', /expired/);
  assert.equal((await services.accessTokenFor('scanner')).token, token.token);
  await services.stop();

  // And across a restart: still acquired.
  const restarted = await restartedServices(env);
  assert.equal(restarted.get('scanner').state.state, 'acquired');
  await restarted.stop();
});

test('Delete token racing a slow refresh: the refresh result is discarded, the account stays not acquired', async () => {
  const { env, services } = await tokenWorld(envs);
  await signIn(env, services);
  const token = await services.accessTokenFor('scanner');
  env.sim.delayTokenAnswers(1500);
  const refreshing = services.tokenRejected('scanner', token.token);
  await new Promise((r) => setTimeout(r, 300)); // the request is at the platform now
  await services.get('scanner').logout();
  await assert.rejects(refreshing, (err) => isRelayError(err, 'TOKEN_NOT_ACQUIRED'));
  env.sim.delayTokenAnswers(0);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(services.get('scanner').state.state, 'not-acquired');
  const store = createEncryptedFileStore({ stateDir: env.config.stateDir, key: Buffer.from(TEST_STORE_KEY, 'hex') });
  assert.equal(await store.load('scanner'), null, 'nothing written back');
  await assert.rejects(services.accessTokenFor('scanner'), (err) => isRelayError(err, 'TOKEN_NOT_ACQUIRED'));
  await services.stop();
  const restarted = await restartedServices(env);
  assert.equal(restarted.get('scanner').state.state, 'not-acquired');
  await restarted.stop();
});

test('a token file sealed with another key or unreadable is that account\'s problem only: invalid with the reason, the others serve', async () => {
  const { env, services } = await tokenWorld(envs, {
    config: {
      accounts: { other: { tenantId: '3f1c2a77-5b8e-4d2a-9c61-0e4b7a9d2f10', clientId: 'c11e4700-0000-4000-8000-000000000001', mailbox: 'other@sandbox.test', flow: 'device-code' } },
    },
  });
  await signIn(env, services, 'scanner');
  await services.stop();
  // `other` gets a token file sealed with another key (a CLI shell with a different XOAUTH2_RELAY_KEY).
  const foreign = createEncryptedFileStore({ stateDir: env.config.stateDir, key: Buffer.alloc(32, 7) });
  await foreign.save('other', '{"Account":{}}');

  const restarted = await restartedServices(env, { watch: true });
  const other = restarted.get('other').state;
  assert.equal(other.state, 'invalid');
  assert.match(other.state === 'invalid' ? other.reason : '', /token store cannot be read: sealed with another key/);
  assert.equal(restarted.get('scanner').state.state, 'acquired');
  await restarted.accessTokenFor('scanner');

  // Not readable by this user (a root-run CLI wrote it 0600 root). Tests run as root, who reads any file, so
  // the file is replaced by a directory, which no user can read as a file (EISDIR instead of EACCES).
  await rm(tokenFilePath(env.config.stateDir, 'scanner'));
  await mkdir(tokenFilePath(env.config.stateDir, 'scanner'));
  await restarted.get('scanner').reloadFromDisk();
  const scanner = restarted.get('scanner').state;
  assert.equal(scanner.state, 'invalid');
  assert.match(scanner.state === 'invalid' ? scanner.reason : '', /token store cannot be read: not readable by this user/);
  await restarted.stop();
});

test('identity platform down: a token with life left is served at once; without one, the first caller waits at most maxWaitSeconds and the rest not at all', async () => {
  const { env, services } = await tokenWorld(envs, {
    sim: { accessTokenLifetimeSec: 302 },
    config: { identity: { tokens: { maxWaitSeconds: 1, retryInitialSeconds: 30, retryMaxSeconds: 60 } } },
  });
  await signIn(env, services);
  await services.accessTokenFor('scanner'); // 302 s is inside the margin: served, and refreshed behind
  await eventually(() => (env.sim.stats.byGrant.refresh_token ?? 0) >= 1, 5000, 'the refresh behind the first use');
  const fresh = await eventually(async () => {
    const t = await services.accessTokenFor('scanner');
    return t.expiresAt.getTime() - Date.now() > 300_500 ? t : null;
  }, 5000, 'the refreshed token');
  env.sim.delayTokenAnswers(20_000); // a platform that accepts connections and never answers
  let started = performance.now();
  assert.equal((await services.accessTokenFor('scanner')).token, fresh.token);
  const servedMs = performance.now() - started;
  assert.ok(servedMs < 50, `a token with more than 5 minutes left is served in ${servedMs.toFixed(1)} ms`);

  await new Promise((r) => setTimeout(r, 2500)); // now under the 5-minute floor: nothing usable in hand
  started = performance.now();
  await assert.rejects(services.accessTokenFor('scanner'), (err) => isRelayError(err, 'TOKEN_REFRESH_FAILED'));
  const firstWaitMs = performance.now() - started;
  assert.ok(firstWaitMs < 1500, `first caller waited ${firstWaitMs.toFixed(0)} ms (maxWaitSeconds 1)`);
  const waits: number[] = [];
  for (let i = 0; i < 20; i += 1) {
    const t0 = performance.now();
    await assert.rejects(services.accessTokenFor('scanner'), (err) => isRelayError(err, 'TOKEN_REFRESH_FAILED') && /has not answered for \d+ s/.test(err.message));
    waits.push(performance.now() - t0);
  }
  const worst = Math.max(...waits);
  assert.ok(worst < 100, `callers after the first waited at most ${worst.toFixed(0)} ms`);
  assert.equal(services.get('scanner').state.state, 'acquired', 'the account stays acquired: the refresh token is kept');
  console.log(`# identity platform not answering: valid token served in ${servedMs.toFixed(1)} ms; first caller without a usable token ${firstWaitMs.toFixed(0)} ms; next 20 callers ≤ ${worst.toFixed(1)} ms`);
  await services.stop();
});

test('identity platform failing fast (503): during the back-off no caller reaches the platform or waits', async () => {
  const { env, services } = await tokenWorld(envs, {
    sim: { accessTokenLifetimeSec: 302 },
    config: { identity: { tokens: { retryInitialSeconds: 30, retryMaxSeconds: 60 } } },
  });
  await signIn(env, services);
  await new Promise((r) => setTimeout(r, 2500)); // under the floor
  env.sim.setOutage('http503');
  await assert.rejects(services.accessTokenFor('scanner'), (err) => isRelayError(err, 'TOKEN_REFRESH_FAILED') && /HTTP 503/.test(err.message));
  const requests = env.sim.stats.tokenRequests;
  const t0 = performance.now();
  for (let i = 0; i < 50; i += 1) await assert.rejects(services.accessTokenFor('scanner'), (err) => isRelayError(err, 'TOKEN_REFRESH_FAILED'));
  const ms = performance.now() - t0;
  assert.equal(env.sim.stats.tokenRequests, requests, 'no request during the back-off');
  assert.ok(ms < 200, `50 callers answered in ${ms.toFixed(0)} ms`);
  env.sim.setOutage('none');
  await services.stop();
});
