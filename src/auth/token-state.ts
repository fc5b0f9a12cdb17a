/**
 * The token states exactly as devices and print servers show them, and the transitions between them as data.
 */

export type TokenStateName = 'not-acquired' | 'waiting-authorization' | 'acquired' | 'invalid';

export type TokenState =
  | { state: 'not-acquired' }
  | { state: 'waiting-authorization'; userCode: string | null; verificationUri: string; expiresAt: string; message: string | null }
  | { state: 'acquired'; expiresAt: string | null; lastRefresh: string; scopes: string[] }
  | { state: 'invalid'; reason: string; since: string };

/** What happened to an account's token. */
export type TokenEvent = 'sign-in-started' | 'token-obtained' | 'sign-in-ended-without-token' | 'grant-rejected' | 'token-deleted';

/**
 * Allowed transitions. A refresh that merely failed for network or 5xx reasons is not an event at all:
 * the state stays as it is (a network failure never deletes or invalidates a token).
 */
export const transitions: Record<TokenStateName, Partial<Record<TokenEvent, TokenStateName | 'previous'>>> = {
  'not-acquired': { 'sign-in-started': 'waiting-authorization', 'token-obtained': 'acquired', 'token-deleted': 'not-acquired', 'grant-rejected': 'invalid' },
  'waiting-authorization': { 'token-obtained': 'acquired', 'sign-in-ended-without-token': 'previous', 'token-deleted': 'not-acquired', 'sign-in-started': 'waiting-authorization', 'grant-rejected': 'invalid' },
  acquired: { 'token-obtained': 'acquired', 'grant-rejected': 'invalid', 'token-deleted': 'not-acquired', 'sign-in-started': 'waiting-authorization' },
  invalid: { 'sign-in-started': 'waiting-authorization', 'token-obtained': 'acquired', 'token-deleted': 'not-acquired', 'grant-rejected': 'invalid' },
};

/** The state an event leads to, or null when the event is not allowed in this state. */
export function nextStateName(current: TokenStateName, event: TokenEvent, previous: TokenStateName): TokenStateName | null {
  const target = transitions[current][event];
  if (target === undefined) return null;
  return target === 'previous' ? previous : target;
}
