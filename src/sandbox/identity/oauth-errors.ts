/**
 * OAuth 2.0 error responses shaped like Entra's (RFC 6749 §5.2 plus Entra's `error_codes`, `trace_id`, ...).
 *
 * The AADSTS numbers follow Microsoft's published error-code reference where we know them; a few are best
 * guesses. Products must not branch on them (Microsoft says the numbers change); they exist so log lines and
 * operator messages look like the real thing. Branch on `error`, which RFC 6749/8628 define.
 */
import { randomUUID } from 'node:crypto';

export class OAuthError extends Error {
  constructor(
    /** HTTP status: 400 for most errors, 401 for client authentication failures (RFC 6749 §5.2). */
    readonly status: number,
    /** The RFC 6749 / RFC 8628 `error` code. */
    readonly error: string,
    /** The AADSTS number (without the prefix). */
    readonly aadsts: number,
    readonly description: string,
    /** Entra's `suberror` (e.g. `consent_required`), which MSAL uses to classify interaction-required errors. */
    readonly suberror?: string,
  ) {
    super(`${error}: AADSTS${aadsts}: ${description}`);
    this.name = 'OAuthError';
  }
}

const e = (status: number, error: string, aadsts: number, description: string, suberror?: string) =>
  new OAuthError(status, error, aadsts, description, suberror);

/** The catalogue of errors the simulator returns: one place to read what a client can see. */
export const oauthErrors = {
  missingParameter: (name: string) =>
    e(400, 'invalid_request', 900144, `The request body must contain the following parameter: '${name}'.`),
  unsupportedGrantType: (grant: string) =>
    e(400, 'unsupported_grant_type', 70003, `The app requested an unsupported grant type '${grant}'.`),
  tenantNotFound: (tenant: string) =>
    e(400, 'invalid_request', 90002, `Tenant '${tenant}' not found. Check to make sure you have the correct tenant ID.`),
  noTenantForAppToken: () =>
    e(400, 'invalid_request', 50059, 'No tenant-identifying information found in either the request or implied by any provided credentials.'),
  invalidScope: (scope: string, why: string) =>
    e(400, 'invalid_scope', 70011, `The provided value for the input parameter 'scope' is not valid. The scope '${scope}' is not valid. ${why}`),
  multipleResources: () =>
    e(400, 'invalid_request', 28000, 'Provided value for the input parameter scope is not valid because it contains more than one resource.'),
  appScopeNotDefault: (scope: string) =>
    e(400, 'invalid_scope', 1002012, `The provided value for scope ${scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).`),
  consentRequired: (scope: string) =>
    e(400, 'invalid_grant', 65001, `The user or administrator has not consented to use the application with scope '${scope}'. Send an interactive authorization request for this user and resource.`, 'consent_required'),

  // RFC 8628 §3.5 device authorization polling
  authorizationPending: () =>
    e(400, 'authorization_pending', 70016, 'OAuth 2.0 device flow error. Authorization is pending. Continue polling.'),
  slowDown: () =>
    e(400, 'slow_down', 70017, 'OAuth 2.0 device flow error. Polling too fast: wait at least the returned interval between polls.'),
  authorizationDeclined: () =>
    e(400, 'authorization_declined', 70000, 'The end user denied the authorization request.'),
  deviceCodeExpired: () => e(400, 'expired_token', 70019, 'Verification code expired.'),
  badVerificationCode: () =>
    e(400, 'bad_verification_code', 70000, "The provided value for the input parameter 'device_code' is not valid."),
  deviceCodeRedeemed: () =>
    e(400, 'invalid_grant', 54005, 'The device code was already redeemed. Start a new device authorization request.'),

  // grants
  invalidGrant: (why: string) => e(400, 'invalid_grant', 70000, `Provided grant is invalid or malformed. ${why}`),
  malformedRefreshToken: () => e(400, 'invalid_grant', 9002313, 'Invalid request. Request is malformed or invalid.'),
  refreshTokenRevoked: (issuedAt: Date, validFrom: Date) =>
    e(400, 'invalid_grant', 50173, `The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password. The grant was issued on '${issuedAt.toISOString()}' and the TokensValidFrom date (before which tokens are not valid) for this user is '${validFrom.toISOString()}'.`),
  refreshTokenExpired: (issuedAt: Date) =>
    e(400, 'invalid_grant', 700082, `The refresh token has expired due to inactivity. The token was issued on ${issuedAt.toISOString()} and was inactive for longer than the allowed lifetime.`),
  codeExpired: () =>
    e(400, 'invalid_grant', 70008, 'The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.'),
  codeRedeemed: () => e(400, 'invalid_grant', 54005, 'OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.'),
  codeVerifierMismatch: () =>
    e(400, 'invalid_grant', 501481, 'The Code_Verifier does not match the code_challenge supplied in the authorization request.'),

  // client authentication (RFC 6749 §5.2: 401 when the client tried to authenticate)
  unknownClient: (clientId: string) =>
    e(401, 'invalid_client', 700016, `Application with identifier '${clientId}' was not found in the directory. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.`),
  badClientSecret: (clientId: string) =>
    e(401, 'invalid_client', 7000215, `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${clientId}'.`),
  clientCredentialMissing: () =>
    e(401, 'invalid_client', 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'."),
  assertionKeyUnknown: (clientId: string) =>
    e(401, 'invalid_client', 700027, `The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '${clientId}'.]`),
  assertionInvalid: (why: string) => e(401, 'invalid_client', 700027, `Client assertion failed signature validation. ${why}`),
  assertionTime: () => e(401, 'invalid_client', 700024, 'Client assertion is not within its valid time range.'),
  assertionSubject: () =>
    e(401, 'invalid_client', 700021, "Client assertion application identifier doesn't match 'client_id' parameter."),
  assertionType: () =>
    e(400, 'invalid_request', 700026, "Client assertion type is not supported: expected 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'."),

  temporarilyUnavailable: () =>
    e(503, 'temporarily_unavailable', 90033, 'A transient error has occurred. Please try again.'),
} as const;

/** The JSON body Entra sends with an error: a description that embeds trace and correlation ids and a timestamp. */
export function oauthErrorBody(err: OAuthError, correlationId: string | undefined): Record<string, unknown> {
  const traceId = randomUUID();
  const correlation = correlationId && /^[0-9a-zA-Z-]{1,64}$/.test(correlationId) ? correlationId : randomUUID();
  const timestamp = new Date().toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
  const body: Record<string, unknown> = {
    error: err.error,
    error_description: `AADSTS${err.aadsts}: ${err.description}\r\nTrace ID: ${traceId}\r\nCorrelation ID: ${correlation}\r\nTimestamp: ${timestamp}`,
    error_codes: [err.aadsts],
    timestamp,
    trace_id: traceId,
    correlation_id: correlation,
    error_uri: `https://login.microsoftonline.com/error?code=${err.aadsts}`,
  };
  if (err.suberror) body.suberror = err.suberror;
  return body;
}
