/** Token services on real msal-node against the sandbox identity simulator, and the person who signs in. */
import assert from 'node:assert/strict';
import { TokenServices } from '../../../src/auth/token-services.js';
import type { TokenState } from '../../../src/auth/token-state.js';
import { SANDBOX_MAILBOX } from '../../../src/sandbox/sandbox-config.js';
import { startSandboxEnv, type SandboxEnv } from '../../support/sandbox-env.js';

export const TEST_STORE_KEY = 'ab'.repeat(32);
export const keyEnv = (): NodeJS.ProcessEnv => ({ ...process.env, XOAUTH2_RELAY_KEY: TEST_STORE_KEY });

export async function tokenWorld(envs: SandboxEnv[], opts: Parameters<typeof startSandboxEnv>[0] = {}): Promise<{ env: SandboxEnv; services: TokenServices }> {
  const env = await startSandboxEnv({ sim: { pollIntervalSec: 1, ...opts.sim }, config: opts.config });
  envs.push(env);
  const services = await TokenServices.create(env.config, env.logger, keyEnv());
  await services.start();
  return { env, services };
}

/** A new process's token services on the same state directory and key (what a restart or a CLI command gets). */
export async function restartedServices(env: SandboxEnv, opts: { watch?: boolean } = {}): Promise<TokenServices> {
  const services = await TokenServices.create(env.config, env.logger, keyEnv());
  await services.start(opts);
  return services;
}

/** Resolves with the next state of that name the account reaches. */
export function nextState(services: TokenServices, account: string, wanted: TokenState['state']): Promise<TokenState> {
  return new Promise((resolve) => {
    const s = services.get(account);
    const on = (state: TokenState) => {
      if (state.state === wanted) {
        s.off('state', on);
        resolve(state);
      }
    };
    s.on('state', on);
  });
}

/** Device-code sign-in approved by the mailbox owner at once. */
export async function signIn(env: SandboxEnv, services: TokenServices, account = 'scanner'): Promise<void> {
  const service = services.get(account);
  const wasAcquired = service.state.state === 'acquired';
  const acquired = new Promise<void>((resolve) => {
    const on = (state: TokenState) => {
      if (state.state === 'acquired' && !state.signIn) {
        service.off('state', on);
        resolve();
      }
    };
    service.on('state', on);
  });
  const prompt = await service.startDeviceCode();
  assert.equal(service.state.state, wasAcquired ? 'acquired' : 'waiting-authorization');
  env.sim.approve(prompt.userCode, SANDBOX_MAILBOX);
  await acquired;
}
