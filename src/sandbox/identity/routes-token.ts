/**
 * POST /{tenant}/oauth2/v2.0/devicecode (RFC 8628 §3.1) and POST /{tenant}/oauth2/v2.0/token (RFC 6749 §3.2)
 * with the grants msal-node uses: device_code (RFC 8628 §3.4), refresh_token (RFC 6749 §6),
 * authorization_code + PKCE (RFC 6749 §4.1.3, RFC 7636 §4.5) and client_credentials (RFC 6749 §4.4).
 */
import { v2IssuerOf, type IdentityContext } from './context.js';
import { effectiveTenant, multiTenantSegments, tenantGuidFor, userObjectId } from './ids.js';
import { clientInfoFor } from './jwt-issuer.js';
import type { GrantSubject } from './grants.js';
import { readForm, sendJson, type RouteRequest } from './http.js';
import { oauthErrors } from './oauth-errors.js';
import {
  consentFor,
  type Consent,
  defaultApplicationRoles,
  grantedScopeString,
  parseApplicationScope,
  parseDelegatedScopes,
  permissionsFromConsent,
  type DelegatedScopeRequest,
} from './scopes.js';

export const deviceCodeGrantType = 'urn:ietf:params:oauth:grant-type:device_code';
/**
 * msal-node 7 sends `grant_type=device_code` (msal-common Constants.GrantType.DEVICE_CODE_GRANT), not the
 * RFC 8628 §3.4 URN; Entra's v2.0 endpoint accepts both, so the simulator does too. `stats.byGrant` counts
 * grant types as sent.
 */
const msalDeviceCodeGrantType = 'device_code';

function required(params: URLSearchParams, name: string): string {
  const value = params.get(name);
  if (!value) throw oauthErrors.missingParameter(name);
  return value;
}

/** RFC 8628 §3.1/§3.2: a new device code and user code. */
export async function handleDeviceCode(ctx: IdentityContext, route: RouteRequest, tenantSegment: string): Promise<void> {
  const params = await readForm(route.req);
  const clientId = required(params, 'client_id');
  const scopeParam = required(params, 'scope');
  const scopes = parseDelegatedScopes(scopeParam);
  const auth = ctx.deviceCodes.create(clientId, tenantSegment, scopes, scopeParam);
  sendJson(route.res, 200, {
    user_code: auth.userCode,
    device_code: auth.deviceCode,
    verification_uri: ctx.verificationUri,
    // RFC 8628 §3.2 makes these integers; the simulator allows fractions of a second so tests run fast.
    expires_in: ctx.settings.deviceCodeLifetimeSec,
    interval: ctx.settings.pollIntervalSec,
    message: `To sign in, use a web browser to open the page ${ctx.verificationUri} and enter the code ${auth.userCode} to authenticate.`,
  });
}

/** POST /token: authenticates the client if it sent a credential, then runs the grant. */
export async function handleToken(ctx: IdentityContext, route: RouteRequest, tenantSegment: string): Promise<void> {
  const params = await readForm(route.req);
  const grantType = params.get('grant_type') ?? '';
  ctx.stats.byGrant[grantType || '(none)'] = (ctx.stats.byGrant[grantType || '(none)'] ?? 0) + 1;
  if (!grantType) throw oauthErrors.missingParameter('grant_type');
  const clientId = required(params, 'client_id');
  const tenantGuid = multiTenantSegments.has(tenantSegment.toLowerCase()) ? undefined : tenantGuidFor(tenantSegment);
  const audiences = [`${ctx.baseUrl}/${tenantSegment}/oauth2/v2.0/token`];
  if (tenantGuid) audiences.push(`${ctx.baseUrl}/${tenantGuid}/oauth2/v2.0/token`, v2IssuerOf(ctx, tenantGuid));
  const credential = await ctx.clients.authenticate(params, clientId, audiences);

  let body: Record<string, unknown>;
  switch (grantType) {
    case deviceCodeGrantType:
    case msalDeviceCodeGrantType:
      body = await deviceCodeGrant(ctx, params, clientId);
      break;
    case 'refresh_token':
      body = await refreshTokenGrant(ctx, params, clientId);
      break;
    case 'authorization_code':
      body = await authorizationCodeGrant(ctx, params, clientId);
      break;
    case 'client_credentials': {
      if (!tenantGuid) throw oauthErrors.noTenantForAppToken();
      if (!credential) throw ctx.clients.isRegistered(clientId) ? oauthErrors.clientCredentialMissing() : oauthErrors.unknownClient(clientId);
      body = await clientCredentialsGrant(ctx, params, clientId, tenantGuid, credential);
      break;
    }
    default:
      throw oauthErrors.unsupportedGrantType(grantType);
  }
  sendJson(route.res, 200, body);
}

async function deviceCodeGrant(ctx: IdentityContext, params: URLSearchParams, clientId: string) {
  const auth = ctx.deviceCodes.poll(required(params, 'device_code'), clientId);
  const upn = auth.upn!;
  const subject: GrantSubject = {
    clientId,
    upn,
    tenantGuid: effectiveTenant(auth.tenantSegment, upn),
    consent: limitedConsent(ctx, clientId, consentFor(auth.scopes)),
    offlineAccess: auth.scopes.oidc.has('offline_access'),
  };
  return delegatedTokenResponse(ctx, subject, { oidc: auth.scopes.oidc, clientInfo: params.get('client_info') === '1' });
}

/** A new grant consents only what the app registration has (Entra leaves out permissions the app was not given). */
function limitedConsent(ctx: IdentityContext, clientId: string, consent: Consent): Consent {
  return { ...consent, permissions: ctx.clients.permittedDelegated(clientId, consent.permissions) };
}

/** The scopes of a redemption; without a `scope` parameter, the grant's own (RFC 6749 §6). */
function redemptionScopes(params: URLSearchParams): DelegatedScopeRequest {
  const scope = params.get('scope');
  return scope ? parseDelegatedScopes(scope) : { resource: undefined, permissions: [], usesDefault: false, oidc: new Set(['openid']) };
}

async function refreshTokenGrant(ctx: IdentityContext, params: URLSearchParams, clientId: string) {
  const grant = ctx.refreshTokens.redeem(required(params, 'refresh_token'), clientId);
  return redeemedGrantResponse(ctx, params, grant, {});
}

async function authorizationCodeGrant(ctx: IdentityContext, params: URLSearchParams, clientId: string) {
  const grant = ctx.authCodes.redeem(
    required(params, 'code'),
    clientId,
    params.get('redirect_uri') ?? undefined,
    params.get('code_verifier') ?? undefined,
    (familyId) => ctx.refreshTokens.revokeFamily(familyId),
  );
  return redeemedGrantResponse(ctx, params, grant, { nonce: grant.nonce });
}

/** The token response for a redeemed refresh token or code: the scopes asked now, within what was consented. */
function redeemedGrantResponse(ctx: IdentityContext, params: URLSearchParams, grant: Omit<GrantSubject, 'consent'> & { consent: GrantSubject['consent']; familyId: string }, extra: { nonce?: string | undefined }) {
  const request = redemptionScopes(params);
  const subject: GrantSubject = { ...grant, consent: permissionsFromConsent(grant.consent, request) };
  return delegatedTokenResponse(ctx, subject, { oidc: request.oidc, clientInfo: params.get('client_info') === '1', familyId: grant.familyId, ...extra });
}

async function clientCredentialsGrant(ctx: IdentityContext, params: URLSearchParams, clientId: string, tenantGuid: string, credential: 'secret' | 'certificate') {
  const resource = parseApplicationScope(params.get('scope') ?? undefined);
  const lifetimeSec = ctx.settings.accessTokenLifetimeSec;
  const accessToken = await ctx.jwt.appAccessToken({ tenantGuid, clientId, resource, roles: defaultApplicationRoles, credential, lifetimeSec });
  // RFC 6749 §4.4.3: no refresh token for client credentials.
  return {
    token_type: 'Bearer',
    expires_in: ctx.settings.reportedExpiresInSec,
    ext_expires_in: ctx.settings.reportedExpiresInSec,
    access_token: accessToken,
  };
}

interface DelegatedResponseOptions {
  /** OIDC scopes of the request: `openid` adds an ID token. */
  oidc: Set<string>;
  /** Whether the client asked for `client_info` (MSAL always does: it keys its account cache on it). */
  clientInfo: boolean;
  /** The sign-in a new refresh token continues; a fresh one for a new sign-in. */
  familyId?: string;
  nonce?: string | undefined;
}

/** A token response for a user (RFC 6749 §5.1 plus Entra's ext_expires_in, id_token and client_info). */
async function delegatedTokenResponse(ctx: IdentityContext, subject: GrantSubject, opts: DelegatedResponseOptions) {
  const { consent } = subject;
  const body: Record<string, unknown> = {
    token_type: 'Bearer',
    scope: grantedScopeString(consent),
    expires_in: ctx.settings.reportedExpiresInSec,
    ext_expires_in: ctx.settings.reportedExpiresInSec,
    access_token: await ctx.jwt.userAccessToken({
      tenantGuid: subject.tenantGuid,
      upn: subject.upn,
      clientId: subject.clientId,
      resource: consent.resource,
      permissions: consent.permissions,
      lifetimeSec: ctx.settings.accessTokenLifetimeSec,
    }),
  };
  if (subject.offlineAccess) body.refresh_token = ctx.refreshTokens.issue(subject, opts.familyId).token;
  if (opts.oidc.has('openid')) {
    body.id_token = await ctx.jwt.idToken({
      issuer: v2IssuerOf(ctx, subject.tenantGuid),
      tenantGuid: subject.tenantGuid,
      upn: subject.upn,
      clientId: subject.clientId,
      nonce: opts.nonce,
    });
  }
  if (opts.clientInfo) body.client_info = clientInfoFor(userObjectId(subject.upn), subject.tenantGuid);
  return body;
}
