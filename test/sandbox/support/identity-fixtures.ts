/** Shared pieces of the identity simulator tests: real MSAL applications pointed at the simulator, HTTPS helpers. */
import { request } from 'node:https';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet, type JWTPayload } from 'jose';
import { ConfidentialClientApplication, PublicClientApplication, type AuthenticationResult, type Configuration } from '@azure/msal-node';
import type { IdentitySimulator } from '../../../src/sandbox/identity/simulator.js';
import { HttpsNetworkClient } from './msal-network.js';

export const outlookScopes = [
  'https://outlook.office.com/SMTP.Send',
  'https://outlook.office.com/IMAP.AccessAsUser.All',
  'https://outlook.office.com/POP.AccessAsUser.All',
  'offline_access',
];

export const tenantGuid = '3f1c2a77-5b8e-4d2a-9c61-0e4b7a9d2f10';

/** The common MSAL configuration for the simulator: https authority, knownAuthorities, a CA-trusting client. */
export function msalConfig(sim: IdentitySimulator, tenant: string, clientId: string): Configuration & { system: { networkClient: HttpsNetworkClient } } {
  return {
    auth: { clientId, authority: `${sim.url}/${tenant}`, knownAuthorities: [sim.hostPort] },
    system: { networkClient: new HttpsNetworkClient({ ca: sim.caCertPem }) },
  };
}

export function publicApp(sim: IdentitySimulator, tenant = tenantGuid, clientId = 'relay-public-client'): PublicClientApplication {
  return new PublicClientApplication(msalConfig(sim, tenant, clientId));
}

export function confidentialApp(sim: IdentitySimulator, clientId: string, credential: Pick<NonNullable<Configuration['auth']>, 'clientSecret' | 'clientCertificate'>, tenant = tenantGuid): ConfidentialClientApplication {
  const config = msalConfig(sim, tenant, clientId);
  return new ConfidentialClientApplication({ ...config, auth: { ...config.auth, ...credential } });
}

/**
 * Device code flow through MSAL; `onUserCode` plays the person (approve, decline, or nothing). The promise of
 * `onUserCode` is awaited separately so a failing assertion inside it is not lost.
 */
export async function deviceCodeFlow(
  app: PublicClientApplication,
  onUserCode: (userCode: string) => Promise<void> | void,
  scopes = outlookScopes,
): Promise<AuthenticationResult | null> {
  let personDone: Promise<void> = Promise.resolve();
  const result = app.acquireTokenByDeviceCode({
    scopes,
    deviceCodeCallback: (response) => {
      personDone = Promise.resolve().then(() => onUserCode(response.userCode));
    },
  });
  const [token] = await Promise.all([result, result.then(() => personDone, () => personDone)]);
  return token;
}

/** Runs `fn`, expecting it to reject; returns the error for assertions on its fields. */
export async function rejection(fn: () => Promise<unknown>): Promise<Record<string, unknown> & Error> {
  try {
    await fn();
  } catch (err) {
    return err as Record<string, unknown> & Error;
  }
  throw new Error('expected a rejection');
}

/** The refresh token secrets in an MSAL application's cache. */
export function cachedRefreshTokens(app: PublicClientApplication | ConfidentialClientApplication): string[] {
  const cache = JSON.parse(app.getTokenCache().serialize()) as { RefreshToken?: Record<string, { secret: string }> };
  return Object.values(cache.RefreshToken ?? {}).map((rt) => rt.secret);
}

export interface HttpsReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json<T = Record<string, unknown>>(): T;
}

/**
 * A fetch-like HTTPS request that trusts the simulator's CA and never follows redirects (the global fetch
 * cannot take a CA without undici, and the authorize tests read the 302 themselves).
 */
export function httpsRequest(
  url: string,
  opts: { ca: string; method?: 'GET' | 'POST'; form?: Record<string, string>; json?: unknown; headers?: Record<string, string> },
): Promise<HttpsReply> {
  let body: string | undefined;
  const headers: Record<string, string | number> = { ...(opts.headers ?? {}) };
  if (opts.form) {
    body = new URLSearchParams(opts.form).toString();
    headers['content-type'] = 'application/x-www-form-urlencoded';
  } else if (opts.json !== undefined) {
    body = JSON.stringify(opts.json);
    headers['content-type'] = 'application/json';
  }
  if (body !== undefined) headers['content-length'] = Buffer.byteLength(body);
  const method = opts.method ?? (body !== undefined ? 'POST' : 'GET');
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, ca: opts.ca, agent: false, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: <T>() => JSON.parse(text) as T });
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

/** Verifies an access token the way a mail server would: JWKS fetched over HTTPS, issuer and audience checked. */
export async function verifyAccessToken(sim: IdentitySimulator, tenant: string, token: string, audience: string): Promise<JWTPayload> {
  const jwks = (await httpsRequest(`${sim.url}/${tenant}/discovery/v2.0/keys`, { ca: sim.caCertPem })).json<JSONWebKeySet>();
  const { payload } = await jwtVerify(token, createLocalJWKSet(jwks), { issuer: sim.issuer(tenant), audience, algorithms: ['RS256'] });
  return payload;
}

/** POSTs a raw token request (no MSAL), for error cases MSAL would not send or would hide. */
export function tokenRequest(sim: IdentitySimulator, tenant: string, form: Record<string, string>): Promise<HttpsReply> {
  return httpsRequest(`${sim.url}/${tenant}/oauth2/v2.0/token`, { ca: sim.caCertPem, form });
}
