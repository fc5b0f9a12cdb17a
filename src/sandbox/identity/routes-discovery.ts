/**
 * Discovery: the OpenID Provider configuration (OpenID Connect Discovery 1.0 §4, RFC 8414), Entra's instance
 * discovery, and the JWKS (RFC 7517).
 *
 * What msal-node 7 / msal-common 16 read from the configuration (Authority.ts): authorization_endpoint,
 * token_endpoint, end_session_endpoint, issuer, jwks_uri (isOpenIdConfigResponse requires all but
 * end_session_endpoint). It derives the device-code URL by replacing "/token" with "/devicecode" in
 * token_endpoint and never reads device_authorization_endpoint. It checks that `issuer` has the authority's
 * scheme and host:port (Authority.validateIssuer). For a domain-named authority it takes the tenant GUID from
 * the first path segment of authorization_endpoint (Authority.replacePath), so endpoints name the GUID.
 */
import type { IdentityContext } from './context.js';
import { type RouteRequest, sendJson } from './http.js';
import { multiTenantSegments, tenantGuidFor } from './ids.js';

/** GET /{tenant}/v2.0/.well-known/openid-configuration */
export function handleOpenIdConfiguration(ctx: IdentityContext, route: RouteRequest, tenantSegment: string): void {
  const multiTenant = multiTenantSegments.has(tenantSegment.toLowerCase());
  // As on Entra: for common/organizations the endpoints keep the segment and the issuer is a template, because
  // the tenant is only known once the user signs in. MSAL substitutes {tenantid} itself (Authority.replaceTenant).
  const pathTenant = multiTenant ? tenantSegment.toLowerCase() : tenantGuidFor(tenantSegment);
  const issuerTenant = multiTenant ? '{tenantid}' : pathTenant;
  const base = `${ctx.baseUrl}/${pathTenant}`;
  sendJson(route.res, 200, {
    issuer: `${ctx.baseUrl}/${issuerTenant}/v2.0`,
    authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
    token_endpoint: `${base}/oauth2/v2.0/token`,
    device_authorization_endpoint: `${base}/oauth2/v2.0/devicecode`,
    end_session_endpoint: `${base}/oauth2/v2.0/logout`,
    jwks_uri: `${base}/discovery/v2.0/keys`,
    token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt'],
    token_endpoint_auth_signing_alg_values_supported: ['RS256', 'PS256'],
    grant_types_supported: ['authorization_code', 'refresh_token', 'client_credentials', 'urn:ietf:params:oauth:grant-type:device_code'],
    response_types_supported: ['code'],
    response_modes_supported: ['query', 'fragment', 'form_post'],
    code_challenge_methods_supported: ['S256'],
    scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
    subject_types_supported: ['pairwise'],
    id_token_signing_alg_values_supported: ['RS256'],
    claims_supported: ['sub', 'iss', 'aud', 'exp', 'iat', 'nbf', 'nonce', 'name', 'preferred_username', 'oid', 'tid', 'ver'],
    request_uri_parameter_supported: false,
    http_logout_supported: true,
    frontchannel_logout_supported: true,
    tenant_region_scope: null,
    cloud_instance_name: ctx.hostPort,
  });
}

/**
 * GET /{tenant}/discovery/instance (Entra: /common/discovery/instance?api-version=1.1&authorization_endpoint=…).
 * msal-node only calls login.microsoftonline.com for this, and not at all when the host is in knownAuthorities;
 * served for clients configured with `cloudDiscoveryMetadata` fetched from here.
 */
export function handleInstanceDiscovery(ctx: IdentityContext, route: RouteRequest, tenantSegment: string): void {
  let tenant = tenantSegment;
  const authorizationEndpoint = route.url.searchParams.get('authorization_endpoint');
  if (authorizationEndpoint) {
    try {
      const endpoint = new URL(authorizationEndpoint);
      const first = endpoint.pathname.split('/').filter(Boolean)[0];
      if (endpoint.host === ctx.hostPort && first) tenant = first;
    } catch {
      // not a URL: answer for the path's tenant
    }
  }
  sendJson(route.res, 200, {
    tenant_discovery_endpoint: `${ctx.baseUrl}/${tenant}/v2.0/.well-known/openid-configuration`,
    'api-version': '1.1',
    metadata: [{ preferred_network: ctx.hostPort, preferred_cache: ctx.hostPort, aliases: [ctx.hostPort] }],
  });
}

/** GET /{tenant}/discovery/v2.0/keys: the key access and ID tokens are signed with. */
export function handleKeys(ctx: IdentityContext, route: RouteRequest): void {
  sendJson(route.res, 200, ctx.jwt.jwks, { 'cache-control': 'public, max-age=3600' });
}
