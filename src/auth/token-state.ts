/**
 * The token states exactly as devices and print servers show them, and the transitions between them as data.
 */

export type TokenStateName = 'not-acquired' | 'waiting-authorization' | 'acquired' | 'invalid';

/** A device code (or browser sign-in) waiting for a person. */
export interface PendingSignIn {
  userCode: string | null;
  verificationUri: string;
  expiresAt: string;
  message: string | null;
}

export type TokenState =
  | { state: 'not-acquired' }
  | ({ state: 'waiting-authorization' } & PendingSignIn)
  /** `signIn`: a new sign-in started while this token keeps serving; it replaces the token only if it succeeds. */
  | { state: 'acquired'; expiresAt: string | null; lastRefresh: string; scopes: string[]; signIn?: PendingSignIn | null }
  | { state: 'invalid'; reason: string; since: string };

/** What happened to an account's token. */
export type TokenEvent =
  | 'sign-in-started'
  | 'token-obtained'
  | 'sign-in-ended-without-token'
  | 'grant-rejected'
  | 'token-deleted'
  /** The store holds no token (another process deleted it): *not acquired*, never *invalid*. */
  | 'token-missing'
  /** The token file cannot be opened (another key, other owner): this account only turns *invalid*. */
  | 'store-unreadable';

/**
 * Allowed transitions. A refresh that merely failed for network or 5xx reasons is not an event at all: the state
 * stays as it is (a network failure never deletes or invalidates a token). A sign-in started on an *acquired*
 * account leaves it *acquired* (the working token keeps serving while the code waits), and its end without a
 * token changes nothing.
 */
export const transitions: Record<TokenStateName, Partial<Record<TokenEvent, TokenStateName | 'previous'>>> = {
  'not-acquired': { 'sign-in-started': 'waiting-authorization', 'token-obtained': 'acquired', 'token-deleted': 'not-acquired', 'grant-rejected': 'invalid', 'token-missing': 'not-acquired', 'store-unreadable': 'invalid' },
  'waiting-authorization': { 'token-obtained': 'acquired', 'sign-in-ended-without-token': 'previous', 'token-deleted': 'not-acquired', 'sign-in-started': 'waiting-authorization', 'grant-rejected': 'invalid', 'token-missing': 'waiting-authorization', 'store-unreadable': 'invalid' },
  acquired: { 'token-obtained': 'acquired', 'grant-rejected': 'invalid', 'token-deleted': 'not-acquired', 'sign-in-started': 'acquired', 'sign-in-ended-without-token': 'acquired', 'token-missing': 'not-acquired', 'store-unreadable': 'invalid' },
  invalid: { 'sign-in-started': 'waiting-authorization', 'token-obtained': 'acquired', 'token-deleted': 'not-acquired', 'grant-rejected': 'invalid', 'token-missing': 'not-acquired', 'store-unreadable': 'invalid' },
};

/** The state an event leads to, or null when the event is not allowed in this state. */
export function nextStateName(current: TokenStateName, event: TokenEvent, previous: TokenStateName): TokenStateName | null {
  const target = transitions[current][event];
  if (target === undefined) return null;
  return target === 'previous' ? previous : target;
}
