/**
 * Identifiers of the simulated directory: tenants, users and random opaque values.
 *
 * Everything here is derived by hashing, so the same mailbox gets the same `oid` and the same domain the same
 * tenant GUID in every run: a token cache written during one demo run still matches the next run's directory.
 */
import { createHash, randomBytes } from 'node:crypto';

/** Tenant path segments that name no tenant: Entra resolves the tenant from the signed-in user instead. */
export const multiTenantSegments: ReadonlySet<string> = new Set(['common', 'organizations', 'consumers']);

const guidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
// A DNS name with at least one dot (contoso.com, contoso.onmicrosoft.com): what Entra accepts as a tenant alias.
const domainPattern = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$/i;

export function isGuid(value: string): boolean {
  return guidPattern.test(value);
}

/** True for a path segment Entra would accept as a tenant: a GUID, a domain, or common/organizations/consumers. */
export function isTenantSegment(segment: string): boolean {
  return isGuid(segment) || domainPattern.test(segment) || multiTenantSegments.has(segment.toLowerCase());
}

/** A name-based UUID (version 8, RFC 9562 §5.8) from a SHA-256 of `namespace:name`. */
function hashGuid(namespace: string, name: string): string {
  const bytes = createHash('sha256').update(`${namespace}:${name}`).digest().subarray(0, 16);
  bytes[6] = (bytes[6]! & 0x0f) | 0x80;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * The tenant GUID for a tenant path segment or a domain. A GUID maps to itself (lower case); a domain maps to a
 * stable GUID, because MSAL rewrites a domain authority to the GUID it finds in the discovery document's endpoints.
 * Not meaningful for common/organizations: use {@link homeTenantOf} with the user's mailbox there.
 */
export function tenantGuidFor(tenant: string): string {
  return isGuid(tenant) ? tenant.toLowerCase() : hashGuid('xoauth2-relay-sandbox-tenant', tenant.toLowerCase());
}

/** The tenant GUID a user belongs to when the request named no tenant: derived from the mailbox's domain. */
export function homeTenantOf(upn: string): string {
  const domain = upn.slice(upn.lastIndexOf('@') + 1);
  return tenantGuidFor(domain);
}

/**
 * The tenant that issues tokens for a request: the named tenant, or the user's home tenant for
 * common/organizations/consumers (as Entra does; the `tid` is never "common").
 */
export function effectiveTenant(tenantSegment: string, upn: string): string {
  return multiTenantSegments.has(tenantSegment.toLowerCase()) ? homeTenantOf(upn) : tenantGuidFor(tenantSegment);
}

/** The user's object id (`oid`): one per mailbox, stable across runs. */
export function userObjectId(upn: string): string {
  return hashGuid('xoauth2-relay-sandbox-user', upn.toLowerCase());
}

/** The object id of an application's service principal in a tenant: the `oid` of app-only tokens. */
export function servicePrincipalObjectId(tenantGuid: string, clientId: string): string {
  return hashGuid('xoauth2-relay-sandbox-sp', `${tenantGuid}/${clientId.toLowerCase()}`);
}

/** Entra's `sub` is pairwise: the same user has a different subject for every application (or resource). */
export function pairwiseSubject(objectId: string, audience: string): string {
  return createHash('sha256').update(`${objectId}|${audience}`).digest('base64url').slice(0, 43);
}

/** An unguessable opaque value (device codes, refresh tokens, authorization codes). */
export function randomOpaque(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

/** True when a string looks like a mailbox address; the simulator's directory holds any such user. */
export function isMailbox(value: string): boolean {
  return /^[^\s@<>()",;:\\]+@[^\s@<>()",;:\\]+\.[^\s@<>()",;:\\]+$/.test(value) && value.length <= 254;
}
