/**
 * What an identity-platform answer means for an account's token, as one table (docs/exchange-online.md §5–6).
 *
 *   grant     – the refresh token, the consent or the client credential is no longer usable: the account turns
 *               *invalid* and a person must act (the reason says what to do);
 *   absent    – there is no token to refresh (MSAL's `no_tokens_found`, an empty cache): *not acquired*, no alarm;
 *   transient – network failure, timeout, HTTP 429 or any 5xx (whatever its body says), and anything not in the
 *               table: the token is kept and the refresh retried with back-off (the reason names the cause; the
 *               token service adds what was kept, since only it knows whether there was a token);
 *   declined, expired – how an interactive sign-in ended; they end that attempt only.
 *
 * Order matters and is the point of the table: the HTTP status is looked at before the error text, because a
 * load balancer's `503` that happens to carry `invalid_grant` must not wipe a good token; and unknown answers
 * are transient, because invalidating a working token costs a person a trip to the sign-in page.
 */
import { AuthError } from '@azure/msal-node';
import { describeNetworkFailure } from './network-failure.js';

export type FailureClass = 'grant' | 'absent' | 'transient' | 'declined' | 'expired';

export interface IdentityFailure {
  class: FailureClass;
  /** For the operator: what happened and what to do. Never contains a token. */
  reason: string;
  /** The platform's error code (invalid_grant …) and AADSTS number when present. */
  error: string;
  aadsts: number | null;
}

/** AADSTS codes behind a dead grant or client, with the words an operator needs (grant class). */
export const aadstsReasons: Readonly<Record<number, string>> = {
  50173: 'refresh token revoked (password changed or sessions revoked): sign in again',
  50078: 'multi-factor authentication is required again (password or MFA registration changed): sign in again',
  700082: 'refresh token expired after 90 days without use: sign in again (the relay refreshes idle accounts every identity.tokens.keepAliveDays)',
  700084: 'refresh token expired (single-page app tokens last 24 hours): sign in again',
  70043: 'sign-in frequency policy (Conditional Access) ended the session: sign in again, or exclude this account from the policy',
  50057: 'the user account is disabled in Entra: enable it, then sign in again',
  50053: 'the user account is locked (too many failed sign-ins): wait or unlock it, then sign in again',
  50055: 'the user\'s password has expired: change it, then sign in again',
  50076: 'multi-factor authentication is required: sign in again',
  50079: 'multi-factor authentication registration is required: sign in again',
  65001: 'the app has no consent for the requested permissions (or consent was withdrawn): grant admin consent in Entra, then sign in again',
  700016: 'the application (client) id is not registered in this tenant: check clientId and tenantId',
  7000215: 'the client secret is wrong: put the secret VALUE (not its id) into clientSecretFile',
  7000222: 'the client secret has expired: create a new one in Entra and update clientSecretFile',
  700027: 'the client certificate is not registered on the app or its assertion is invalid: upload certificateFile to the app registration',
  53003: 'blocked by Conditional Access (device code sign-in is blocked in many tenants): ask the Entra admin to allow it, or use flow: browser or client-credentials',
  50126: 'wrong user name or password at sign-in: sign in again',
  90002: 'the tenant does not exist: check tenantId',
  7000218: 'the app registration does not allow public client flows: enable "Allow public client flows" in Entra',
};

/** Error names that mean the grant or client is dead, whatever AADSTS number came with them. */
const grantErrors: Readonly<Record<string, string>> = {
  invalid_grant: 'the identity platform refused the refresh token (invalid_grant): sign in again',
  interaction_required: 'the identity platform needs the user to sign in again (interaction_required): sign in again',
  consent_required: 'consent is missing for the requested permissions: grant admin consent in Entra, then sign in again',
  login_required: 'the identity platform needs the user to sign in again (login_required): sign in again',
  invalid_client: 'the identity platform refused the app\'s credentials (invalid_client): check clientId, the secret or certificate',
  unauthorized_client: 'the app is not allowed to use this flow (unauthorized_client): check the app registration in Entra',
};

/** Error names that mean there is simply no token to refresh. */
const absentErrors = new Set(['no_tokens_found', 'no_account_in_silent_request', 'no_account_found']);

/** Device-code and browser sign-in endings: only that attempt ends. */
const signInEndings: Readonly<Record<string, { class: 'declined' | 'expired'; reason: string }>> = {
  authorization_declined: { class: 'declined', reason: 'the sign-in was declined at the device-login page: start it again' },
  access_denied: { class: 'declined', reason: 'the sign-in was declined: start it again' },
  expired_token: { class: 'expired', reason: 'the device code expired before anyone signed in: start the sign-in again' },
  bad_verification_code: { class: 'expired', reason: 'the device code is no longer known to the identity platform: start the sign-in again' },
  device_code_expired: { class: 'expired', reason: 'the device code expired before anyone signed in: start the sign-in again' },
  user_timeout_reached: { class: 'expired', reason: 'the device code expired before anyone signed in: start the sign-in again' },
  slow_down: { class: 'expired', reason: 'the identity platform asked to poll more slowly and ended this sign-in: start it again' },
};

function aadstsOf(text: string): number | null {
  const m = /\bAADSTS(\d{5,7})\b/.exec(text);
  return m ? Number(m[1]) : null;
}

/** The first number MSAL's server errors carry (`error_codes[0]`), which is the AADSTS number without prefix. */
function errorNumber(err: AuthError): number | null {
  const n = Number((err as AuthError & { errorNo?: string | number }).errorNo);
  return Number.isInteger(n) && n > 0 ? n : null;
}

export interface ClassifyContext {
  /** The HTTP status of the identity platform's last answer to this request, when the network client saw one. */
  httpStatus?: number | null;
  /** The identity host, for network failures. */
  host?: string;
  /** What the network client saw fail (DNS, refused, timeout, certificate), when msal-node's error hides it. */
  networkFailure?: string | null;
  /** The AADSTS numbers of the platform's answer, when msal-node's error hides them (device-code polling). */
  errorCodes?: number[] | null;
}

/** Classifies anything msal-node threw (or a network error) into the table's classes. */
export function classifyIdentityError(err: unknown, ctx: ClassifyContext = {}): IdentityFailure {
  if (!(err instanceof AuthError)) {
    return { class: 'transient', reason: `the identity request failed: ${err instanceof Error ? err.message : String(err)}`, error: 'unknown', aadsts: null };
  }
  const text = `${err.errorMessage ?? ''} ${err.message}`;
  // MSAL reports device-code polling errors other than authorization_pending as post_request_failed,
  // with the platform's error name in the message.
  const polled = err.errorCode === 'post_request_failed' ? /\b(authorization_declined|expired_token|bad_verification_code|slow_down|invalid_grant|access_denied)\b/.exec(text)?.[1] : undefined;
  const error = polled ?? err.errorCode;
  const aadsts = aadstsOf(text) ?? errorNumber(err) ?? ctx.errorCodes?.[0] ?? null;
  const status = ctx.httpStatus ?? (err as AuthError & { status?: number }).status ?? null;

  // 1. The HTTP status first: throttling and server failures are passing, whatever the body says.
  if (typeof status === 'number' && (status >= 500 || status === 429)) {
    return { class: 'transient', reason: `the identity platform${ctx.host ? ` (${ctx.host})` : ''} answered HTTP ${status}${error ? ` (${error})` : ''}`, error, aadsts };
  }
  // 2. Network failures: MSAL's own code, with the cause in words.
  if (error === 'network_error' || error === 'endpoints_resolution_error' || error === 'openid_config_error') {
    return { class: 'transient', reason: describeNetworkFailure(ctx.networkFailure ?? text, ctx.host), error, aadsts };
  }
  // 3. How a sign-in ended.
  const ending = signInEndings[error];
  if (ending) return { ...ending, error, aadsts };
  // 4. No token at all.
  if (absentErrors.has(error)) return { class: 'absent', reason: 'no token is stored for this account: sign in', error, aadsts };
  // 5. A dead grant or client: by error name; the AADSTS number only picks the most precise words. A known
  //    number in any other answer (invalid_request, invalid_scope…) never invalidates a token on its own.
  const words = aadsts !== null ? aadstsReasons[aadsts] : undefined;
  const grant = grantErrors[error];
  if (grant) return { class: 'grant', reason: words ?? grant, error, aadsts };
  // 6. Everything else (invalid_request, invalid_scope, temporarily_unavailable, unknown codes): keep the token.
  const known = words ? `: ${words}` : '';
  return { class: 'transient', reason: `the identity platform answered ${error || 'an unrecognised error'}${aadsts ? ` (AADSTS${aadsts})` : ''}${known}`, error, aadsts };
}
