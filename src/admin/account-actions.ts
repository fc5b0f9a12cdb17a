/**
 * **Get token** and **Delete token**, as print servers offer them, for each flow:
 *   device code        – starts the sign-in and returns at once with the code; the page shows it and polls
 *                        until the token service turns the account *acquired* by itself;
 *   browser            – starts MSAL's loopback sign-in and returns the link to open (the redirect lands on
 *                        http://localhost on the relay's host, so the link works in a browser on that host);
 *   client credentials – asks for the first token now (no person involved).
 * The sign-in's outcome always arrives as token state events; nothing here waits for a person.
 */
import type { TokenService } from '../auth/token-service.js';
import { RelayError } from '../errors.js';
import { errorFields, type Logger } from '../log.js';

export type GetTokenResult =
  | { flow: 'device-code'; userCode: string; verificationUri: string; expiresAt: string }
  | { flow: 'browser'; signInUrl: string }
  | { flow: 'client-credentials'; expiresAt: string };

/** How long to wait for MSAL's loopback listener to produce the sign-in link. */
const BROWSER_LINK_TIMEOUT_MS = 15_000;

/**
 * Starts getting a token for `service`. `flow` may ask for a device code on a browser-flow account (an admin
 * who is not at the relay's host cannot finish a loopback redirect); anything else follows the account's flow.
 */
export async function getToken(service: TokenService, logger: Logger, flow?: string): Promise<GetTokenResult> {
  const chosen = flow === 'device-code' && service.flow === 'browser' ? 'device-code' : service.flow;
  switch (chosen) {
    case 'device-code': {
      const prompt = await service.startDeviceCode();
      // The outcome arrives as state events; a failure after the prompt is logged by the token service.
      prompt.done.catch(() => undefined);
      return { flow: 'device-code', userCode: prompt.userCode, verificationUri: prompt.verificationUri, expiresAt: prompt.expiresAt.toISOString() };
    }
    case 'browser':
      return { flow: 'browser', signInUrl: await startBrowserSignIn(service, logger) };
    case 'client-credentials': {
      const token = await service.acquireAppOnly();
      return { flow: 'client-credentials', expiresAt: token.expiresAt.toISOString() };
    }
  }
}

/** Deletes the account's token: its state goes back to *not acquired*. */
export async function deleteToken(service: TokenService): Promise<void> {
  await service.logout();
}

function startBrowserSignIn(service: TokenService, logger: Logger): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new RelayError('SIGN_IN_FAILED', 'the browser sign-in did not produce a link in time')), BROWSER_LINK_TIMEOUT_MS);
    service
      .startBrowser(async (url) => {
        clearTimeout(timer);
        resolve(url);
      })
      .catch((err: unknown) => {
        clearTimeout(timer);
        reject(err); // no effect once the link was handed out: then the state events tell the story
        logger.warn({ account: service.name, ...errorFields(err) }, 'browser sign-in from the admin page ended without a token');
      });
  });
}
