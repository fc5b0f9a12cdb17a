/**
 * Grants a client redeems at the token endpoint: refresh tokens (RFC 6749 §6) and authorization codes bound to
 * a PKCE challenge (RFC 6749 §4.1, RFC 7636).
 *
 * Every grant belongs to a family: the sign-in that started it. Refresh tokens rotate on every use and, as on
 * Entra, the previous token stays valid until it expires or is revoked, so a client that loses a response can
 * retry with the old token. Revocation is by user (all families, what a password reset or an admin's
 * "revoke sessions" does) or by family (a replayed authorization code, RFC 6749 §4.1.2).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { randomOpaque } from './ids.js';
import { oauthErrors } from './oauth-errors.js';
import type { Consent } from './scopes.js';

/** What a refresh token or an authorization code stands for. */
export interface GrantSubject {
  clientId: string;
  upn: string;
  tenantGuid: string;
  consent: Consent;
  /** Whether `offline_access` was granted: only then do token responses carry a refresh token. */
  offlineAccess: boolean;
}

export interface RefreshGrant extends GrantSubject {
  readonly token: string;
  /** Issue order: a revocation invalidates every token issued before it, however close in time. */
  readonly seq: number;
  readonly familyId: string;
  readonly issuedAt: number;
  readonly expiresAt: number;
}

interface Revocation {
  seq: number;
  at: number;
}

export class RefreshTokenStore {
  private readonly tokens = new Map<string, RefreshGrant>();
  private readonly revokedUsers = new Map<string, Revocation>();
  private revokedAll: Revocation | undefined;
  private readonly revokedFamilies = new Set<string>();
  private seq = 0;

  constructor(private readonly lifetimeMs: number) {}

  /** A new refresh token for a grant family (a new family when none is given: a fresh sign-in). */
  issue(subject: GrantSubject, familyId: string = randomOpaque(12)): RefreshGrant {
    if (this.seq % 256 === 0) this.sweep();
    const now = Date.now();
    // Entra's refresh tokens are opaque and long (~1-2 KB); a realistic size exercises the product's token store.
    const grant: RefreshGrant = { ...subject, token: `0.A${randomOpaque(384)}`, seq: ++this.seq, familyId, issuedAt: now, expiresAt: now + this.lifetimeMs };
    this.tokens.set(grant.token, grant);
    return grant;
  }

  /** Checks a presented refresh token; throws the `invalid_grant` the client must see. The token stays valid. */
  redeem(token: string, clientId: string): RefreshGrant {
    const grant = this.tokens.get(token);
    if (!grant) throw oauthErrors.malformedRefreshToken();
    if (grant.clientId !== clientId) throw oauthErrors.invalidGrant('The refresh token was issued to a different client_id.');
    const revocation = this.revocationOf(grant);
    if (revocation) throw oauthErrors.refreshTokenRevoked(new Date(grant.issuedAt), new Date(revocation.at));
    if (Date.now() >= grant.expiresAt) throw oauthErrors.refreshTokenExpired(new Date(grant.issuedAt));
    return grant;
  }

  private revocationOf(grant: RefreshGrant): Revocation | undefined {
    if (this.revokedFamilies.has(grant.familyId)) return { seq: grant.seq, at: Date.now() };
    const user = this.revokedUsers.get(grant.upn.toLowerCase());
    if (user && grant.seq <= user.seq) return user;
    if (this.revokedAll && grant.seq <= this.revokedAll.seq) return this.revokedAll;
    return undefined;
  }

  /** Invalidates every refresh token issued so far to `upn` (or to everyone). Later sign-ins work again. */
  revokeUser(upn?: string): void {
    const revocation = { seq: this.seq, at: Date.now() };
    if (upn === undefined) this.revokedAll = revocation;
    else this.revokedUsers.set(upn.toLowerCase(), revocation);
  }

  revokeFamily(familyId: string): void {
    this.revokedFamilies.add(familyId);
  }

  private sweep(): void {
    const now = Date.now();
    for (const [token, grant] of this.tokens) if (grant.expiresAt <= now) this.tokens.delete(token);
  }
}

export interface AuthorizationCodeGrant extends GrantSubject {
  readonly code: string;
  readonly redirectUri: string;
  /** RFC 7636 §4.2 S256 challenge: base64url(SHA-256(code_verifier)). */
  readonly codeChallenge: string;
  readonly nonce: string | undefined;
  readonly familyId: string;
  readonly expiresAt: number;
  redeemed: boolean;
}

// RFC 6749 §4.1.2: "A maximum authorization code lifetime of 10 minutes is RECOMMENDED."
const codeLifetimeMs = 10 * 60 * 1000;
// RFC 7636 §4.1: code_verifier = 43*128unreserved
const verifierPattern = /^[A-Za-z0-9\-._~]{43,128}$/;

export class AuthorizationCodeStore {
  private readonly codes = new Map<string, AuthorizationCodeGrant>();

  issue(subject: GrantSubject, binding: { redirectUri: string; codeChallenge: string; nonce: string | undefined }): AuthorizationCodeGrant {
    const now = Date.now();
    for (const [code, grant] of this.codes) if (grant.expiresAt + codeLifetimeMs < now) this.codes.delete(code);
    const grant: AuthorizationCodeGrant = {
      ...subject,
      ...binding,
      code: `1.A${randomOpaque(96)}`,
      familyId: randomOpaque(12),
      expiresAt: now + codeLifetimeMs,
      redeemed: false,
    };
    this.codes.set(grant.code, grant);
    return grant;
  }

  /**
   * Redeems a code once (RFC 6749 §4.1.3): same client, same redirect_uri, and a code_verifier that hashes to
   * the challenge (RFC 7636 §4.6). `onReplay` hears of a second use, so the caller can revoke what the first
   * use produced (RFC 6749 §4.1.2).
   */
  redeem(code: string, clientId: string, redirectUri: string | undefined, codeVerifier: string | undefined, onReplay: (familyId: string) => void): AuthorizationCodeGrant {
    const grant = this.codes.get(code);
    if (!grant) throw oauthErrors.invalidGrant("The provided value for the 'code' parameter is not valid.");
    if (grant.redeemed) {
      onReplay(grant.familyId);
      throw oauthErrors.codeRedeemed();
    }
    if (Date.now() >= grant.expiresAt) throw oauthErrors.codeExpired();
    if (grant.clientId !== clientId) throw oauthErrors.invalidGrant('The authorization code was issued to a different client_id.');
    if (!sameRedirectUri(redirectUri, grant.redirectUri)) {
      throw oauthErrors.invalidGrant("The 'redirect_uri' does not match the redirect URI used in the authorization request.");
    }
    if (!codeVerifier || !verifierPattern.test(codeVerifier)) throw oauthErrors.codeVerifierMismatch();
    const computed = createHash('sha256').update(codeVerifier).digest('base64url');
    const expected = Buffer.from(grant.codeChallenge);
    if (computed.length !== expected.length || !timingSafeEqual(Buffer.from(computed), expected)) throw oauthErrors.codeVerifierMismatch();
    grant.redeemed = true;
    return grant;
  }
}

/** Redirect URIs compared as URLs: `http://localhost:5000` and `http://localhost:5000/` name the same place. */
function sameRedirectUri(a: string | undefined, b: string | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  try {
    return new URL(a).href === new URL(b).href;
  } catch {
    return a === b;
  }
}
