/**
 * Entra-shaped (v1) RS256 access tokens signed with a key made for the test run, and the matching
 * `TokenValidation` for the mail peers. Claims mirror what Exchange Online receives from Entra: `iss`
 * `https://sts.windows.net/<tid>/`, `aud` `https://outlook.office.com`, `upn`, `preferred_username`, `scp`.
 * No `azp` claim: Dovecot would then look the key up under `<azp>/RS256/<kid>` instead of `default/RS256/<kid>`.
 */
import { randomUUID } from 'node:crypto';
import { exportSPKI, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import type { TokenValidation } from './types.js';

export const outlookAudience = 'https://outlook.office.com';

export interface TokenClaimsInput {
  /** The mailbox (`upn` and `preferred_username`). */
  mailbox: string;
  /** Default `https://outlook.office.com`. */
  audience?: string;
  /** Seconds from now; negative for an expired token. Default 3600. */
  expiresIn?: number;
  /** Overrides or extra claims. */
  claims?: Record<string, unknown>;
}

export interface TestTokenIssuer {
  readonly tenantId: string;
  readonly issuer: string;
  readonly kid: string;
  readonly publicKeyPem: string;
  /** Validation settings accepting this issuer and the given audiences (default: Outlook's). */
  validation(audiences?: string[]): TokenValidation;
  /** A signed access token. */
  sign(input: TokenClaimsInput): Promise<string>;
}

/** Makes a fresh RS256 key and a tenant id for one test run. */
export async function createTestTokenIssuer(): Promise<TestTokenIssuer> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const tenantId = randomUUID();
  const issuer = `https://sts.windows.net/${tenantId}/`;
  const kid = `test-${randomUUID().slice(0, 8)}`;
  const publicKeyPem = await exportSPKI(publicKey);
  return {
    tenantId,
    issuer,
    kid,
    publicKeyPem,
    validation: (audiences = [outlookAudience]) => ({ issuers: [issuer], audiences, kid, publicKeyPem }),
    sign: (input) => signAccessToken(privateKey, { tenantId, issuer, kid }, input),
  };
}

function signAccessToken(
  key: CryptoKey,
  issuerInfo: { tenantId: string; issuer: string; kid: string },
  input: TokenClaimsInput,
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const expiresIn = input.expiresIn ?? 3600;
  const oid = randomUUID();
  const claims = {
    aud: input.audience ?? outlookAudience,
    iss: issuerInfo.issuer,
    iat: Math.min(now, now + expiresIn) - 60,
    nbf: Math.min(now, now + expiresIn) - 60,
    exp: now + expiresIn,
    app_displayname: 'xoauth2-relay tests',
    appid: '00000000-0000-0000-0000-00000000c0de',
    appidacr: '0',
    idtyp: 'user',
    name: input.mailbox,
    oid,
    sub: oid, // Dovecot's local validation requires `sub` (Entra's is a pairwise id; any non-empty value will do)
    scp: 'IMAP.AccessAsUser.All POP.AccessAsUser.All SMTP.Send',
    tid: issuerInfo.tenantId,
    unique_name: input.mailbox,
    upn: input.mailbox,
    preferred_username: input.mailbox,
    ver: '1.0',
    ...input.claims,
  };
  return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: issuerInfo.kid }).sign(key);
}
