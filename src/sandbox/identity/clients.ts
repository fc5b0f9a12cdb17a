/**
 * Confidential clients of the simulated directory and their authentication at the token endpoint:
 * a client secret (RFC 6749 §2.3.1, in the body) or a certificate-signed JWT assertion (RFC 7523 §2.2).
 *
 * Public clients (device code, authorization code with PKCE) need no registration: any client_id works, as for
 * an app registration with "allow public client flows" on. A registered client may still use those flows.
 */
import { X509Certificate, createHash, timingSafeEqual, type KeyObject } from 'node:crypto';
import { decodeProtectedHeader, errors as joseErrors, jwtVerify } from 'jose';
import { oauthErrors, OAuthError } from './oauth-errors.js';

export const jwtBearerAssertionType = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

interface RegisteredCertificate {
  /** base64url SHA-1 and SHA-256 of the DER certificate: the JWS `x5t` and `x5t#S256` (RFC 7515 §4.1.7/8). */
  x5t: string;
  x5tS256: string;
  /** base64 DER, to match an `x5c` header's first element. */
  derBase64: string;
  publicKey: KeyObject;
}

interface RegisteredClient {
  secretHashes: Buffer[];
  certificates: RegisteredCertificate[];
}

export type ClientCredentialKind = 'secret' | 'certificate';

const sha256 = (s: string) => createHash('sha256').update(s).digest();

export class ClientRegistry {
  private readonly clients = new Map<string, RegisteredClient>();
  /** Delegated permissions an app registration has, when limited (an admin left some out): consent stops there. */
  private readonly delegatedLimits = new Map<string, Set<string>>();

  /** Limits what a user can consent for this client to these delegated permissions (null: no limit). */
  limitDelegatedPermissions(clientId: string, permissions: readonly string[] | null): void {
    if (permissions === null) this.delegatedLimits.delete(clientId);
    else this.delegatedLimits.set(clientId, new Set(permissions.map((p) => p.toLowerCase())));
  }

  /** The permissions of `asked` the client's registration has (all of them when it is not limited). */
  permittedDelegated(clientId: string, asked: readonly string[]): string[] {
    const limit = this.delegatedLimits.get(clientId);
    return limit ? asked.filter((p) => limit.has(p.toLowerCase())) : [...asked];
  }

  private entry(clientId: string): RegisteredClient {
    let client = this.clients.get(clientId);
    if (!client) {
      client = { secretHashes: [], certificates: [] };
      this.clients.set(clientId, client);
    }
    return client;
  }

  /** True when the client has a secret or a certificate: a confidential client. */
  isRegistered(clientId: string): boolean {
    const client = this.clients.get(clientId);
    return !!client && (client.secretHashes.length > 0 || client.certificates.length > 0);
  }

  registerSecret(clientId: string, secret: string): void {
    if (!secret) throw new Error('A client secret must not be empty.');
    this.entry(clientId).secretHashes.push(sha256(secret));
  }

  registerCertificate(clientId: string, certPem: string): void {
    const cert = new X509Certificate(certPem);
    this.entry(clientId).certificates.push({
      x5t: createHash('sha1').update(cert.raw).digest('base64url'),
      x5tS256: createHash('sha256').update(cert.raw).digest('base64url'),
      derBase64: cert.raw.toString('base64'),
      publicKey: cert.publicKey,
    });
  }

  /**
   * Authenticates the client of a token request, if it presented a credential. Returns which kind it used, or
   * undefined for a public client. Throws `invalid_client` (401) when a credential is presented and wrong.
   * `audiences` are the values accepted as the assertion's `aud`: the token endpoint URL (what MSAL puts
   * there, ClientApplication.getClientAssertion) and the tenant's issuer.
   */
  async authenticate(params: URLSearchParams, clientId: string, audiences: string[]): Promise<ClientCredentialKind | undefined> {
    const secret = params.get('client_secret');
    const assertion = params.get('client_assertion');
    if (secret && assertion) {
      // RFC 6749 §2.3: a client MUST NOT use more than one authentication method in a request.
      throw new OAuthError(400, 'invalid_request', 90014, 'Only one of client_secret and client_assertion may be sent.');
    }
    if (secret) {
      const client = this.clients.get(clientId);
      if (!client || !this.isRegistered(clientId)) throw oauthErrors.unknownClient(clientId);
      const presented = sha256(secret);
      if (!client.secretHashes.some((h) => timingSafeEqual(h, presented))) throw oauthErrors.badClientSecret(clientId);
      return 'secret';
    }
    if (assertion) {
      await this.verifyAssertion(params, clientId, assertion, audiences);
      return 'certificate';
    }
    return undefined;
  }

  private async verifyAssertion(params: URLSearchParams, clientId: string, assertion: string, audiences: string[]): Promise<void> {
    if (params.get('client_assertion_type') !== jwtBearerAssertionType) throw oauthErrors.assertionType();
    const client = this.clients.get(clientId);
    if (!client || !this.isRegistered(clientId)) throw oauthErrors.unknownClient(clientId);
    let header: ReturnType<typeof decodeProtectedHeader>;
    try {
      header = decodeProtectedHeader(assertion);
    } catch {
      throw oauthErrors.assertionInvalid('The assertion is not a JWS.');
    }
    // msal-node 7 sends `x5t#S256` with PS256 when configured with thumbprintSha256, `x5t` with RS256 when
    // configured with the SHA-1 thumbprint, and `x5c` too when given the chain (ClientAssertion.createJwt).
    const x5tS256 = header['x5t#S256'];
    const cert = client.certificates.find(
      (c) =>
        (typeof x5tS256 === 'string' && c.x5tS256 === x5tS256) ||
        (typeof header.x5t === 'string' && c.x5t === header.x5t) ||
        (Array.isArray(header.x5c) && header.x5c[0] === c.derBase64),
    );
    if (!cert) throw oauthErrors.assertionKeyUnknown(clientId);
    let payload: { iss?: unknown; sub?: unknown };
    try {
      ({ payload } = await jwtVerify(assertion, cert.publicKey, {
        algorithms: ['RS256', 'PS256'],
        audience: audiences,
        requiredClaims: ['exp', 'aud', 'iss', 'sub'],
        // Entra tolerates 5 minutes of clock skew.
        clockTolerance: 300,
      }));
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) throw oauthErrors.assertionTime();
      if (err instanceof joseErrors.JWTClaimValidationFailed) {
        if (err.claim === 'nbf' || err.claim === 'iat') throw oauthErrors.assertionTime();
        throw oauthErrors.assertionInvalid(`The '${err.claim}' claim is ${err.reason === 'missing' ? 'missing' : 'not valid'}.`);
      }
      throw oauthErrors.assertionInvalid('The signature does not verify with the registered certificate.');
    }
    // RFC 7523 §3: iss and sub are the client_id. No replay check on `jti`: msal-node reuses one assertion for
    // up to 10 minutes (ClientAssertion.getJwt), and Entra accepts that.
    if (payload.iss !== clientId || payload.sub !== clientId) throw oauthErrors.assertionSubject();
  }
}
