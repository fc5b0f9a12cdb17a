/**
 * Access-token checks for the sandbox mailbox: what Exchange Online decides when a client presents
 * SASL XOAUTH2 (docs/exchange-online.md §2, §3). The token is an RS256 JWT from the sandbox identity
 * simulator; it is verified locally against the simulator's public key, as Dovecot's
 * `introspection_mode = local` does, so the mailbox never calls the identity platform.
 *
 * A verdict's `reason` is for the log: it names the failed check, never the token.
 */
import { importSPKI, jwtVerify, errors as joseErrors, type JWTPayload, type JWTHeaderParameters } from 'jose';
import { parseXOAuth2 } from '../../sasl/xoauth2.js';
import { isAcceptableIdentity } from '../../sasl/plain.js';

/** The client protocols of Exchange Online; each has its own delegated scope and application role. */
export type MailProtocol = 'smtp' | 'pop3' | 'imap';

/** How to tell a genuine access token: the identity simulator's signing key and the claims it issues. */
export interface AccessTokenTrust {
  /** SPKI PEM of the RS256 signing key. */
  publicKeyPem: string;
  /** Key id the token header must name (`kid`). */
  kid: string;
  /** Accepted `iss` values, e.g. `https://sts.windows.net/<tenant-guid>/`. */
  issuers: string[];
  /** Accepted `aud` values, e.g. `https://outlook.office.com` (delegated) and `https://outlook.office365.com` (app). */
  audiences: string[];
}

/** Who a token lets in, and as what. */
export interface MailboxPrincipal {
  /** The mailbox opened or sent as: the XOAUTH2 `user=`, lower-cased. */
  mailbox: string;
  /** `user` for a delegated token, `app` for client credentials. */
  kind: 'user' | 'app';
  /** The signed-in user's UPN, or the application's `appid`: for log lines. */
  subject: string;
  /** The token's `exp`, in seconds since the epoch (HVE refuses tokens close to it). */
  expiresAt: number;
}

/**
 * Whether an app's service principal holds the protocol's role over this mailbox (RBAC for Applications,
 * or a mailbox permission): Exchange decides it, not the token. Without one, the token's `roles` claim decides
 * (an Entra application permission with no mailbox scoping).
 */
export type AppAuthorisation = (mailbox: string, protocol: MailProtocol, appId: string) => boolean;

/** Outcome of a check. A rejection carries the reason for the log (never the token). */
export type TokenVerdict = { accepted: true; principal: MailboxPrincipal } | { accepted: false; reason: string };

/** Checks XOAUTH2 credentials for one protocol. */
export interface AccessTokenChecker {
  /** Checks a base64 XOAUTH2 client response, as POP3 and IMAP receive it. */
  checkXOAuth2(base64Response: string, protocol: MailProtocol): Promise<TokenVerdict>;
  /** Checks an already-split `user=` and bearer token, as smtp-server hands them over. */
  checkCredentials(user: string, accessToken: string, protocol: MailProtocol): Promise<TokenVerdict>;
}

/** Delegated permission (`scp`) and application role (`roles`) Exchange Online requires per protocol (§3). */
const requiredPermission: Record<MailProtocol, { scope: string; role: string }> = {
  smtp: { scope: 'SMTP.Send', role: 'SMTP.SendAsApp' },
  pop3: { scope: 'POP.AccessAsUser.All', role: 'POP.AccessAsApp' },
  imap: { scope: 'IMAP.AccessAsUser.All', role: 'IMAP.AccessAsApp' },
};

/**
 * Entra tokens live 60–90 minutes and Exchange rejects expired ones; a few seconds of tolerance covers
 * clock steps between the simulator and the mailbox (same host) without hiding an expired token in tests.
 */
const CLOCK_TOLERANCE_SECONDS = 5;

/** Longest bearer token considered; Entra tokens are 1–4 KB, this only stops a hostile megabyte. */
const MAX_TOKEN_LENGTH = 16 * 1024;

/** Builds a checker for tokens signed with `trust.publicKeyPem`. Rejects (throws) only if the key is not an RSA SPKI PEM. */
export async function createAccessTokenChecker(trust: AccessTokenTrust, appAuthorised: AppAuthorisation | null = null): Promise<AccessTokenChecker> {
  const key = await importSPKI(trust.publicKeyPem, 'RS256');
  const verifyOptions = {
    algorithms: ['RS256'],
    issuer: trust.issuers,
    audience: trust.audiences,
    clockTolerance: CLOCK_TOLERANCE_SECONDS,
    requiredClaims: ['exp'],
  };

  async function checkCredentials(user: string, accessToken: string, protocol: MailProtocol): Promise<TokenVerdict> {
    if (!isAcceptableIdentity(user)) return reject('user= is empty, too long or holds control characters');
    if (accessToken.length > MAX_TOKEN_LENGTH) return reject('bearer token is too long');
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(accessToken, (header: JWTHeaderParameters) => {
        // Only the simulator's key is trusted; a token naming another kid was signed by someone else.
        if (header.kid !== trust.kid) throw new joseErrors.JWKSNoMatchingKey(`unknown signing key id ${JSON.stringify(header.kid ?? null)}`);
        return key;
      }, verifyOptions));
    } catch (err) {
      return reject(describeJoseFailure(err));
    }
    return authorise(payload, user.toLowerCase(), protocol, appAuthorised);
  }

  return {
    checkCredentials,
    async checkXOAuth2(base64Response, protocol) {
      const parsed = parseXOAuth2(base64Response);
      if (!parsed) return reject('not an XOAUTH2 response (user=…^Aauth=Bearer …^A^A)');
      return checkCredentials(parsed.user, parsed.token, protocol);
    },
  };
}

/** The claims checks after the signature, issuer, audience and lifetime have passed. */
function authorise(payload: JWTPayload, mailbox: string, protocol: MailProtocol, appAuthorised: AppAuthorisation | null): TokenVerdict {
  const { scope, role } = requiredPermission[protocol];
  const expiresAt = payload.exp ?? 0;
  if (payload.idtyp === 'app') {
    // Client credentials. With RBAC for Applications the token need not carry the role (Microsoft: do not add the
    // Entra permission on that path); what counts is the role assignment over a scope holding the mailbox.
    const appId = stringClaim(payload, 'appid') ?? 'unknown app';
    if (!appAuthorised) {
      const roles = Array.isArray(payload.roles) ? payload.roles : [];
      if (!roles.includes(role)) return reject(`app token lacks the ${role} role`);
    } else if (!appAuthorised(mailbox, protocol, appId)) return reject(`app ${appId} has no "Application ${role}" role assignment whose scope holds ${mailbox}`);
    return accept({ mailbox, kind: 'app', subject: appId, expiresAt });
  }
  const signedIn = stringClaim(payload, 'upn') ?? stringClaim(payload, 'preferred_username');
  if (!signedIn) return reject('user token has neither upn nor preferred_username');
  // The sandbox has no mailbox permissions (no shared mailboxes): a user opens only their own mailbox.
  if (signedIn.toLowerCase() !== mailbox) return reject(`token is for ${signedIn}, not for ${mailbox}`);
  const scopes = (stringClaim(payload, 'scp') ?? '').split(' ');
  if (!scopes.includes(scope)) return reject(`user token lacks the ${scope} scope`);
  return accept({ mailbox, kind: 'user', subject: signedIn, expiresAt });
}

function stringClaim(payload: JWTPayload, name: string): string | undefined {
  const value = payload[name];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** jose's messages name the claim that failed (`"exp" claim timestamp check failed`) and never echo the token. */
function describeJoseFailure(err: unknown): string {
  if (err instanceof joseErrors.JOSEError) return `${err.code}: ${err.message}`;
  return 'token could not be verified';
}

function accept(principal: MailboxPrincipal): TokenVerdict {
  return { accepted: true, principal };
}

function reject(reason: string): TokenVerdict {
  return { accepted: false, reason };
}
