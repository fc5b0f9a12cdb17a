/**
 * Scope strings of the v2.0 endpoints: `<resource>/<permission>` (e.g. `https://outlook.office.com/SMTP.Send`),
 * OpenID Connect scopes, `offline_access` (a refresh token), and `<resource>/.default`.
 *
 * The simulator's model of consent: a grant (device code or authorization code) consents exactly the delegated
 * permissions it asked for, on one resource; tokens minted later from that grant (refresh) carry ALL consented
 * permissions of the resource, as Entra's `scp` does. `.default` stands for the permissions the simulated app
 * registration has: the three Outlook delegated permissions, or the three application permissions for app tokens.
 */
import { oauthErrors } from './oauth-errors.js';

export const oidcScopes: ReadonlySet<string> = new Set(['openid', 'profile', 'email', 'offline_access']);

/** The delegated permissions the simulated app registration has (what `.default` grants a user token). */
export const defaultDelegatedPermissions = ['SMTP.Send', 'IMAP.AccessAsUser.All', 'POP.AccessAsUser.All'] as const;

/** The application permissions the simulated app registration has (admin-consented; `roles` of app tokens). */
export const defaultApplicationRoles = ['SMTP.SendAsApp', 'IMAP.AccessAsApp', 'POP.AccessAsApp'] as const;

// Application permissions cannot be asked for as delegated scopes (Entra answers invalid_scope): catching
// `SMTP.SendAsApp` in a delegated request is the point of the check (docs/exchange-online.md §3).
const applicationOnly = new Set(['smtp.sendasapp', 'imap.accessasapp', 'pop.accessasapp', 'full_access_as_app']);

const canonicalNames = new Map(
  [...defaultDelegatedPermissions, 'EWS.AccessAsUser.All', 'Mail.Read', 'Mail.Send', 'User.Read'].map((n) => [n.toLowerCase(), n]),
);

/** Bare permission names (no resource) belong to Microsoft Graph, as on the real endpoints. */
const graphResource = 'https://graph.microsoft.com';

/** A resource identifier normalised for comparison and for the `aud` claim (no trailing slash, lower-case host). */
export function normaliseResource(resource: string): string {
  try {
    const url = new URL(resource);
    if (url.protocol === 'https:' || url.protocol === 'http:') {
      return `${url.protocol}//${url.host.toLowerCase()}${url.pathname.replace(/\/+$/, '')}`;
    }
  } catch {
    // not a URL (e.g. a bare application id): compare as given
  }
  return resource.replace(/\/+$/, '');
}

/** What a delegated request (device code, authorize, token exchange, refresh) asks for. */
export interface DelegatedScopeRequest {
  /** The one resource of the request, or undefined when only OIDC scopes were asked for. */
  resource: string | undefined;
  /** Permission names on that resource, canonical case (e.g. `SMTP.Send`). Empty with `.default`. */
  permissions: string[];
  /** True when `<resource>/.default` was asked for. */
  usesDefault: boolean;
  /** The OIDC scopes asked for (`openid`, `profile`, `email`, `offline_access`). */
  oidc: Set<string>;
}

function splitScope(scope: string): { resource: string; name: string } {
  const slash = scope.lastIndexOf('/');
  if (slash < 0) return { resource: graphResource, name: scope };
  return { resource: normaliseResource(scope.slice(0, slash)), name: scope.slice(slash + 1) };
}

/** Parses the `scope` parameter of a delegated request; throws an OAuthError the client can see. */
export function parseDelegatedScopes(scopeParam: string | undefined): DelegatedScopeRequest {
  if (!scopeParam || !scopeParam.trim()) throw oauthErrors.missingParameter('scope');
  const result: DelegatedScopeRequest = { resource: undefined, permissions: [], usesDefault: false, oidc: new Set() };
  for (const scope of scopeParam.trim().split(/\s+/)) {
    if (oidcScopes.has(scope.toLowerCase())) {
      result.oidc.add(scope.toLowerCase());
      continue;
    }
    const { resource, name } = splitScope(scope);
    if (!name) throw oauthErrors.invalidScope(scope, 'The permission name is empty.');
    if (applicationOnly.has(name.toLowerCase())) {
      throw oauthErrors.invalidScope(scope, 'It is an application permission: request it with client credentials and /.default.');
    }
    if (result.resource !== undefined && result.resource.toLowerCase() !== resource.toLowerCase()) {
      throw oauthErrors.multipleResources();
    }
    result.resource = resource;
    if (name === '.default') result.usesDefault = true;
    else {
      const canonical = canonicalNames.get(name.toLowerCase()) ?? name;
      if (!result.permissions.includes(canonical)) result.permissions.push(canonical);
    }
  }
  return result;
}

/**
 * What a new grant consents: the permissions asked for, or the app registration's with `.default`. A request
 * with only OIDC scopes gets a Microsoft Graph `User.Read` token, as on the real endpoints.
 */
export function consentFor(request: DelegatedScopeRequest): Consent {
  if (request.resource === undefined) return { resource: graphResource, permissions: ['User.Read'] };
  const names = request.usesDefault ? [...defaultDelegatedPermissions, ...request.permissions] : request.permissions;
  return { resource: request.resource, permissions: [...new Set(names)] };
}

/** What a grant was consented for: one resource and its permissions. */
export interface Consent {
  resource: string;
  permissions: string[];
}

/**
 * The permissions a token from an existing grant carries. RFC 6749 §6: the scope of a refreshed token must not
 * exceed the original grant; Entra answers `invalid_grant` + `consent_required` then. All consented permissions
 * of the resource go into the token, as Entra's `scp` does.
 */
export function permissionsFromConsent(consent: Consent, request: DelegatedScopeRequest): Consent {
  const resource = request.resource ?? consent.resource;
  if (resource.toLowerCase() !== consent.resource.toLowerCase()) {
    throw oauthErrors.consentRequired(`${resource}/${request.permissions[0] ?? '.default'}`);
  }
  const consented = new Set(consent.permissions.map((p) => p.toLowerCase()));
  for (const name of request.permissions) {
    if (!consented.has(name.toLowerCase())) throw oauthErrors.consentRequired(`${resource}/${name}`);
  }
  return consent;
}

/** The resource of a client-credentials request: exactly one `<resource>/.default` scope. */
export function parseApplicationScope(scopeParam: string | undefined): string {
  if (!scopeParam || !scopeParam.trim()) throw oauthErrors.missingParameter('scope');
  const scopes = scopeParam.trim().split(/\s+/);
  const only = scopes[0]!;
  if (scopes.length !== 1 || !only.endsWith('/.default') || only.length <= '/.default'.length) {
    throw oauthErrors.appScopeNotDefault(scopeParam);
  }
  return normaliseResource(only.slice(0, -'/.default'.length));
}

/** The `scope` value echoed in a token response: the full scope strings granted (Entra leaves out OIDC scopes). */
export function grantedScopeString(consent: Consent): string {
  return consent.permissions.map((p) => `${consent.resource}/${p}`).join(' ');
}
