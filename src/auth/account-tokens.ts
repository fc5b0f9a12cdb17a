/**
 * The one way protocol code gets a token: delivery, the IMAP/POP3 upstream login, the `test` and doctor checks and
 * the admin page all use `withAccessToken`, so the rule "when the upstream refuses a token, refresh it once and
 * try once more" exists here only. `use` receives a function that fetches the token, so a caller can connect and
 * read the server's greeting first (an unreachable server then never touches the token service).
 *
 * `use` signals a refusal by throwing a RelayError UPSTREAM_TOKEN_REJECTED (SMTP `535 5.7.3`) or
 * UPSTREAM_AUTH_REJECTED (IMAP/POP3 XOAUTH2 refused); the second refusal reaches the caller as thrown.
 */
import { isRelayError } from '../errors.js';
import type { AccessToken } from './token-service.js';
import type { TokenStateName } from './token-state.js';

/** What the token services offer underneath (and what a test fakes). */
export interface TokenProvider {
  /** A valid token now; throws RelayError TOKEN_NOT_ACQUIRED / TOKEN_INVALID / TOKEN_REFRESH_FAILED. */
  accessTokenFor(account: string): Promise<AccessToken>;
  /** The upstream refused `token`: one shared forced refresh (same errors). */
  tokenRejected(account: string, token: string): Promise<AccessToken>;
}

/** Token states, for code that holds work until an account has a token (delivery). */
export interface TokenStates {
  /** The account's token state now ('not-acquired' for an account no longer configured). */
  stateOf(account: string): TokenStateName;
  /** Follows every account's state changes; returns the unsubscribe function. */
  onStateChange(listener: (account: string, state: TokenStateName) => void): () => void;
}

export interface AccountTokens {
  /** Runs `use` (attempt 1); when it throws a token refusal, refreshes once and runs it again (attempt 2). */
  withAccessToken<T>(account: string, use: (token: () => Promise<AccessToken>, attempt: 1 | 2) => Promise<T>): Promise<T>;
}

/** True for the errors by which `use` says "the upstream refused this token". */
export function isTokenRefusal(err: unknown): boolean {
  return isRelayError(err, 'UPSTREAM_TOKEN_REJECTED') || isRelayError(err, 'UPSTREAM_AUTH_REJECTED');
}

/** The refresh-once rule over a provider. */
export function accountTokens(provider: TokenProvider): AccountTokens {
  return {
    async withAccessToken(account, use) {
      const handedOut: { token: AccessToken | null } = { token: null };
      const first = async () => (handedOut.token = await provider.accessTokenFor(account));
      try {
        return await use(first, 1);
      } catch (err) {
        const refused = handedOut.token;
        if (!isTokenRefusal(err) || !refused) throw err;
        return use(() => provider.tokenRejected(account, refused.token), 2);
      }
    },
  };
}
