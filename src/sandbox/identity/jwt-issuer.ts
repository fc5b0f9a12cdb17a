/**
 * Signs the simulator's tokens: RS256 JWT access tokens shaped like Entra's v1.0 tokens for Exchange Online
 * (what Outlook's SMTP/IMAP/POP servers receive), and v2.0 ID tokens for MSAL's account cache.
 *
 * One RSA key per simulator run; its public half is served as a JWKS (RFC 7517) and given to the sandbox
 * mail server, which validates access tokens locally (as Dovecot's `introspection_mode = local` does).
 */
import { randomUUID } from 'node:crypto';
import { SignJWT, calculateJwkThumbprint, exportJWK, exportSPKI, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import { pairwiseSubject, servicePrincipalObjectId, userObjectId } from './ids.js';

/** The `iss` of Entra v1.0 access tokens (what Exchange Online accepts). */
export function v1Issuer(tenantGuid: string): string {
  return `https://sts.windows.net/${tenantGuid}/`;
}

/** MSAL derives the account's home id from `client_info`: base64url of `{"uid": oid, "utid": tid}`. */
export function clientInfoFor(objectId: string, tenantGuid: string): string {
  return Buffer.from(JSON.stringify({ uid: objectId, utid: tenantGuid })).toString('base64url');
}

/** A display name from a mailbox (`alice.smith@contoso.com` → `Alice Smith`): the directory has no other source. */
export function displayNameOf(upn: string): string {
  const local = upn.slice(0, upn.indexOf('@'));
  return local
    .split(/[._-]+/)
    .filter(Boolean)
    .map((w) => w[0]!.toUpperCase() + w.slice(1))
    .join(' ');
}

export interface UserTokenRequest {
  tenantGuid: string;
  upn: string;
  clientId: string;
  resource: string;
  permissions: string[];
  lifetimeSec: number;
}

export interface AppTokenRequest {
  tenantGuid: string;
  clientId: string;
  resource: string;
  roles: readonly string[];
  /** `appidacr`: '1' for a client secret, '2' for a certificate (how Entra records the credential used). */
  credential: 'secret' | 'certificate';
  lifetimeSec: number;
}

export interface IdTokenRequest {
  /** The v2.0 issuer of the tenant, `https://HOST:PORT/{tid}/v2.0`. */
  issuer: string;
  tenantGuid: string;
  upn: string;
  clientId: string;
  nonce: string | undefined;
}

export class JwtIssuer {
  private constructor(
    private readonly privateKey: CryptoKey,
    readonly signingKey: { kid: string; publicKeyPem: string },
    readonly jwks: { keys: JWK[] },
  ) {}

  static async create(): Promise<JwtIssuer> {
    const { privateKey, publicKey } = await generateKeyPair('RS256', { modulusLength: 2048, extractable: true });
    const jwk = await exportJWK(publicKey);
    // RFC 7638 thumbprint as key id: stable for the key, and safe as a file name (Dovecot stores keys by kid).
    const kid = await calculateJwkThumbprint(jwk);
    return new JwtIssuer(
      privateKey,
      // A trailing newline, as PEM files have: the sandbox mail server writes this to a key file as is.
      { kid, publicKeyPem: `${(await exportSPKI(publicKey)).trimEnd()}\n` },
      { keys: [{ ...jwk, kid, use: 'sig', alg: 'RS256' }] },
    );
  }

  private sign(claims: Record<string, unknown>, lifetimeSec: number): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ ...claims, iat: now, nbf: now, exp: now + lifetimeSec })
      .setProtectedHeader({ typ: 'JWT', alg: 'RS256', kid: this.signingKey.kid })
      .sign(this.privateKey);
  }

  /** A delegated (user) access token, like the ones Exchange Online receives from Outlook clients. */
  userAccessToken(req: UserTokenRequest): Promise<string> {
    const oid = userObjectId(req.upn);
    return this.sign(
      {
        aud: req.resource,
        iss: v1Issuer(req.tenantGuid),
        acr: '1',
        amr: ['pwd'],
        appid: req.clientId,
        appidacr: '0',
        idtyp: 'user',
        name: displayNameOf(req.upn),
        oid,
        scp: req.permissions.join(' '),
        sub: pairwiseSubject(oid, req.resource),
        tid: req.tenantGuid,
        unique_name: req.upn,
        upn: req.upn,
        preferred_username: req.upn,
        uti: randomUUID().replaceAll('-', ''),
        ver: '1.0',
      },
      req.lifetimeSec,
    );
  }

  /** An app-only access token (client credentials): `roles` instead of `scp`, no user claims. */
  appAccessToken(req: AppTokenRequest): Promise<string> {
    const oid = servicePrincipalObjectId(req.tenantGuid, req.clientId);
    return this.sign(
      {
        aud: req.resource,
        iss: v1Issuer(req.tenantGuid),
        appid: req.clientId,
        appidacr: req.credential === 'certificate' ? '2' : '1',
        idtyp: 'app',
        oid,
        roles: [...req.roles],
        sub: oid,
        tid: req.tenantGuid,
        uti: randomUUID().replaceAll('-', ''),
        ver: '1.0',
      },
      req.lifetimeSec,
    );
  }

  /**
   * A v2.0 ID token (OpenID Connect Core §2). MSAL caches an account only when one comes with the token
   * response. `nonce` only when the authorization request had one: MSAL rejects a nonce it did not expect.
   */
  idToken(req: IdTokenRequest): Promise<string> {
    const oid = userObjectId(req.upn);
    const claims: Record<string, unknown> = {
      aud: req.clientId,
      iss: req.issuer,
      name: displayNameOf(req.upn),
      oid,
      preferred_username: req.upn,
      sub: pairwiseSubject(oid, req.clientId),
      tid: req.tenantGuid,
      uti: randomUUID().replaceAll('-', ''),
      ver: '2.0',
    };
    if (req.nonce) claims.nonce = req.nonce;
    return this.sign(claims, 3600);
  }
}
