/**
 * `xoauth2-relay login <account> [--browser]`: gets the account's token now. Device code (default for
 * device-code accounts): prints the code and link, waits for the sign-in. Browser: prints the sign-in link
 * and waits for the redirect to this host. Client credentials: requests the app token.
 */
import { TokenServices } from '../auth/token-services.js';
import type { TokenService } from '../auth/token-service.js';
import type { TokenState } from '../auth/token-state.js';
import { commandContext, type GlobalOptions } from './context.js';
import { exitCodes } from './exit-codes.js';

const say = (text: string) => process.stdout.write(`${text}\n`);

export async function loginCommand(account: string, opts: GlobalOptions & { browser?: boolean }): Promise<number> {
  const { loaded, logger } = commandContext(opts);
  const services = await TokenServices.create(loaded.config, logger);
  try {
    const service = services.get(account);
    await service.start();
    if (service.flow === 'client-credentials') {
      const token = await service.acquireAppOnly();
      say(`${account}: acquired (app-only token for ${service.mailbox}, valid until ${token.expiresAt.toISOString()})`);
      return exitCodes.ok;
    }
    if (opts.browser || service.flow === 'browser') return await browserLogin(service);
    return await deviceCodeLogin(service);
  } finally {
    await services.stop();
  }
}

async function deviceCodeLogin(service: TokenService): Promise<number> {
  const prompt = await service.startDeviceCode();
  const minutes = Math.round((prompt.expiresAt.getTime() - Date.now()) / 60_000);
  say(`To sign in ${service.name}, open ${prompt.verificationUri}`);
  say(`and enter the code ${prompt.userCode}  (sign in as ${service.mailbox}; the code expires in ${minutes} minutes)`);
  say('Waiting for the sign-in...');
  await prompt.done;
  return finish(service, service.state);
}

async function browserLogin(service: TokenService): Promise<number> {
  const settled = service.startBrowser(async (url) => {
    say(`To sign in ${service.name}, open this link in a browser on this machine and sign in as ${service.mailbox}:`);
    say(url);
    say('Waiting for the sign-in...');
  });
  await settled.catch(() => undefined);
  return finish(service, service.state);
}

async function finish(service: TokenService, state: TokenState): Promise<number> {
  await service.flush();
  // On an account that was already acquired a failed re-sign-in leaves it acquired: the attempt failed all the same.
  if (state.state === 'acquired' && service.lastSignInFailure) {
    process.stderr.write(`${service.name}: the new sign-in ended without a token (${service.lastSignInFailure}); the account keeps its working token (acquired, valid until ${state.expiresAt ?? 'unknown'})\n`);
    return exitCodes.failed;
  }
  if (state.state === 'acquired') {
    say(`${service.name}: acquired (access token valid until ${state.expiresAt ?? 'unknown'})`);
    return exitCodes.ok;
  }
  const reason = state.state === 'invalid' ? state.reason : `${service.lastSignInFailure ?? 'the sign-in ended without a token'}; run login again`;
  process.stderr.write(`${service.name}: ${state.state}: ${reason}\n`);
  return exitCodes.failed;
}

