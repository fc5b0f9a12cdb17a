/**
 * What an identity-platform failure means for the token (docs/exchange-online.md §5):
 *   grant     – the refresh token or client credential is no longer accepted: the token turns *invalid*
 *               and a person must act (sign in again, fix the secret or consent);
 *   transient – network failure, timeout, 5xx, throttling: keep the token, retry with back-off;
 *   pending   – device-code polling states, not failures.
 * Only `invalid_grant`-class answers may invalidate a token. Unknown errors count as transient,
 * because wiping a good token for a blip costs a human trip to the sign-in page.
 */
import { AuthError } from '@azure/msal-node';

export type FailureClass = 'grant' | 'transient' | 'declined' | 'expired';

export interface IdentityFailure {
  class: FailureClass;
  /** For the operator: what happened and what to do. Never contains a token. */
  reason: string;
  /** The platform's error code (invalid_grant …) and AADSTS number when present. */
  error: string;
  aadsts: number | null;
}

/** AADSTS codes seen when a grant dies, with the words an operator needs. */
const aadstsReasons: Record<number, string> = {
  50173: 'refresh token revoked (password changed or sessions revoked): sign in again',
  700082: 'refresh token expired after 90 days without use: sign in again',
  70043: 'sign-in frequency policy (Conditional Access) ended the session: sign in again',
  50076: 'multi-factor authentication is required: sign in again',
  50079: 'multi-factor authentication registration is required: sign in again',
  65001: 'the app has no consent for the requested permissions: grant admin consent in Entra, then sign in again',
  700016: 'the application (client) id is not registered in this tenant: check clientId and tenantId',
  7000215: 'the client secret is wrong: put the secret VALUE (not its id) into clientSecretFile',
  7000222: 'the client secret has expired: create a new one in Entra and update clientSecretFile',
  700027: 'the client certificate is not registered on the app or its assertion is invalid: upload certificateFile to the app registration',
  53003: 'blocked by a Conditional Access policy: ask the Entra admin to allow this sign-in',
  50126: 'wrong user name or password at sign-in: sign in again',
  90002: 'the tenant does not exist: check tenantId',
  70011: 'a requested scope is not valid for this app: check the API permissions in Entra',
  7000218: 'the app registration does not allow public client flows: enable "Allow public client flows" in Entra',
};

const grantErrors = new Set(['invalid_grant', 'interaction_required', 'consent_required', 'login_required', 'no_tokens_found', 'invalid_client', 'unauthorized_client', 'invalid_scope', 'invalid_request', 'no_account_in_silent_request']);
const transientErrors = new Set(['network_error', 'temporarily_unavailable', 'server_error', 'token_parsing_error', 'endpoints_resolution_error', 'openid_config_error']);

function aadstsOf(text: string): number | null {
  const m = /AADSTS(\d{5,7})/.exec(text);
  return m ? Number(m[1]) : null;
}

export function classifyIdentityError(err: unknown): IdentityFailure {
  if (!(err instanceof AuthError)) {
    return { class: 'transient', reason: `identity request failed: ${err instanceof Error ? err.message : String(err)}`, error: 'unknown', aadsts: null };
  }
  const text = `${err.errorMessage ?? ''} ${err.message}`;
  // MSAL reports device-code polling errors other than authorization_pending as post_request_failed,
  // with the platform's error name in the message.
  const polled = err.errorCode === 'post_request_failed' ? /\b(authorization_declined|expired_token|bad_verification_code|slow_down|invalid_grant|access_denied)\b/.exec(text)?.[1] : undefined;
  const error = polled ?? err.errorCode;
  const aadsts = aadstsOf(text);
  const status = (err as AuthError & { status?: number }).status;
  const words = aadsts !== null ? aadstsReasons[aadsts] : undefined;

  if (error === 'slow_down') return { class: 'expired', reason: 'the identity platform asked to poll more slowly and ended this sign-in: start it again', error, aadsts };
  if (error === 'authorization_declined' || error === 'access_denied') return { class: 'declined', reason: 'the sign-in was declined at the device-login page: start it again', error, aadsts };
  if (error === 'expired_token' || error === 'bad_verification_code' || error === 'device_code_expired' || error === 'user_timeout_reached') {
    return { class: 'expired', reason: 'the device code expired before anyone signed in: start the sign-in again', error, aadsts };
  }
  if (typeof status === 'number' && (status >= 500 || status === 429)) {
    return { class: 'transient', reason: `identity platform answered HTTP ${status}: retrying`, error, aadsts };
  }
  if (transientErrors.has(error)) {
    return { class: 'transient', reason: `identity platform unreachable or failing (${error}): retrying, the token is kept`, error, aadsts };
  }
  if (grantErrors.has(error) || words) {
    const fallback = error === 'no_tokens_found' || error === 'no_account_in_silent_request' ? 'no refresh token is stored: sign in again' : `the identity platform refused the token request (${error}): sign in again`;
    return { class: 'grant', reason: words ?? fallback, error, aadsts };
  }
  return { class: 'transient', reason: `identity request failed (${error}): retrying`, error, aadsts };
}
