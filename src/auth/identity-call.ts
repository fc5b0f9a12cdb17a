/**
 * The context of one token operation (a refresh, a sign-in, an app-only request), carried through msal-node with
 * AsyncLocalStorage, because MSAL calls our network client and cache plugin from deep inside its own code:
 *   - the network client records the HTTP status of the platform's answer (classification needs it);
 *   - the cache plugin checks the generation fence before it writes: an operation that began before a Delete
 *     token (in this process or another) must not write its token back.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

export interface IdentityCall {
  /** The account's generation when the operation began; its result is written only while it is still current. */
  generation: number;
  /** HTTP status of the last POST answer the network client saw, if any. */
  httpStatus: number | null;
  /** Set by the cache plugin when it refused to write because the generation moved on. */
  fenced: boolean;
  /** The last network failure the network client saw (msal-node wraps some, e.g. discovery, without their cause). */
  networkFailure?: string | null;
  /** The AADSTS numbers of the platform's last error answer: msal-node drops them from device-code poll errors. */
  errorCodes?: number[] | null;
}

export const identityCalls = new AsyncLocalStorage<IdentityCall>();
