/**
 * An HTTPS simulator of the Microsoft identity platform v2.0 endpoints that @azure/msal-node 7 uses, so the
 * demo and the tests run the product's real MSAL code paths with no tenant: only the authority host differs.
 *
 * Point MSAL at it with `auth.authority = `${sim.url}/${tenant}``, `auth.knownAuthorities = [sim.hostPort]`
 * (no instance discovery against login.microsoftonline.com) and a `system.networkClient` that trusts
 * `sim.caCertPem`. Any tenant segment works: a GUID, a domain (mapped to a stable GUID), common, organizations.
 *
 * Routes (tenant = any tenant segment):
 *   GET  /{tenant}/v2.0/.well-known/openid-configuration   GET /{tenant}/discovery/instance
 *   GET  /{tenant}/discovery/v2.0/keys                     POST /{tenant}/oauth2/v2.0/devicecode
 *   POST /{tenant}/oauth2/v2.0/token                       GET|POST /{tenant}/oauth2/v2.0/authorize
 *   GET  /{tenant}/oauth2/v2.0/logout                      /sandbox/… (routes-sandbox.ts)
 */
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createPki, type Pki } from '../pki.js';
import { ClientRegistry } from './clients.js';
import type { IdentityContext, SimulatorSettings, SimulatorStats } from './context.js';
import { DeviceCodeStore } from './device-codes.js';
import { AuthorizationCodeStore, RefreshTokenStore } from './grants.js';
import { HttpError, sendHttpError, sendJson, sendOAuthError, sendHtml, type RouteRequest } from './http.js';
import { isTenantSegment, tenantGuidFor } from './ids.js';
import { JwtIssuer, v1Issuer } from './jwt-issuer.js';
import { OAuthError, oauthErrors } from './oauth-errors.js';
import { errorPage } from './pages.js';
import { PendingAuthorizations, handleAuthorizeGet, handleAuthorizePost } from './routes-authorize.js';
import { handleInstanceDiscovery, handleKeys, handleOpenIdConfiguration } from './routes-discovery.js';
import { describePending, handleApiDecision, handleApiPending, handleDeviceLoginGet, handleDeviceLoginPost } from './routes-sandbox.js';
import { handleDeviceCode, handleToken } from './routes-token.js';

export interface IdentitySimulatorOptions {
  /** Address to listen on; default '127.0.0.1'. */
  host?: string;
  /** Port; default 0 (any free port). */
  port?: number;
  /** Reuse a CA (e.g. the sandbox mailbox's); else a new one is created. */
  pki?: Pki;
  /** Access token lifetime, JWT `exp - iat`; default 3600. */
  accessTokenLifetimeSec?: number;
  /** `expires_in` in token responses; default = accessTokenLifetimeSec. A larger value makes MSAL keep a token the JWT says is expired. */
  reportedExpiresInSec?: number;
  /** Refresh token lifetime (sliding: every rotation gets a new one); default 90 days. */
  refreshTokenLifetimeSec?: number;
  /** Device code lifetime, `expires_in` of /devicecode; default 900. Fractions allowed (tests). */
  deviceCodeLifetimeSec?: number;
  /** `interval` returned by /devicecode; default 5. Fractions allowed (tests): MSAL sleeps interval × 1000 ms. */
  pollIntervalSec?: number;
  /** The mailbox the device-login page offers (the one the relay's config names), so a person only presses Approve. */
  expectedMailbox?: string;
}

export type OutageMode = 'none' | 'http503' | 'reset';

/** A scripted answer of the token endpoint, for tests of how the relay reads each kind of refusal or failure. */
export interface ScriptedTokenAnswer {
  status: number;
  error: string;
  /** AADSTS number, put into error_description and error_codes the way Entra does. */
  aadsts?: number;
  /** A body that is not JSON (a proxy's error page). */
  html?: boolean;
}

export interface IdentitySimulator {
  /** 'https://127.0.0.1:PORT': the authority host. */
  readonly url: string;
  /** '127.0.0.1:PORT', for MSAL's knownAuthorities. */
  readonly hostPort: string;
  /** The CA that signed the simulator's TLS certificate. */
  readonly caCertPem: string;
  /** The RS256 key access tokens are signed with (a mail server validates with it). */
  readonly signingKey: { kid: string; publicKeyPem: string };
  /** The `iss` of access tokens for a tenant (GUID or domain): `https://sts.windows.net/{tenantGuid}/`. */
  issuer(tenantId: string): string;
  /** `${url}/sandbox/devicelogin`: where a person enters the user code and a mailbox. */
  readonly verificationUri: string;
  /** Approves a device code as the given mailbox; throws if the code is unknown, expired or already answered. */
  approve(userCode: string, upn: string): void;
  /** Declines a device code; throws if the code is unknown, expired or already answered. */
  decline(userCode: string): void;
  pendingDeviceCodes(): Array<{ userCode: string; clientId: string; scopes: string[]; expiresAt: Date }>;
  /** Every refresh token issued so far to that user (or to everyone) answers invalid_grant (AADSTS50173) from now on. */
  revokeRefreshTokens(upn?: string): void;
  registerClientSecret(clientId: string, secret: string): void;
  /** The app registration `clientId` has only these delegated permissions (e.g. ['SMTP.Send']); null: all three. */
  limitDelegatedPermissions(clientId: string, permissions: readonly string[] | null): void;
  registerClientCertificate(clientId: string, certPem: string): void;
  /** Simulates the platform failing: 503 with a JSON error, or connections destroyed. /sandbox/api/ keeps working. */
  setOutage(mode: OutageMode): void;
  /** From now on the token endpoint answers this (null: normal service again). /devicecode and discovery keep working. */
  scriptTokenAnswer(answer: ScriptedTokenAnswer | null): void;
  /** Token endpoint answers only after `ms` (0: at once), to race a slow refresh against other actions. */
  delayTokenAnswers(ms: number): void;
  /** A snapshot of the request counters. */
  readonly stats: { requests: number; tokenRequests: number; byGrant: Record<string, number> };
  close(): Promise<void>;
}

type Handler = (ctx: IdentityContext, route: RouteRequest, tenant: string) => void | Promise<void>;

/** Builds the route table; the PendingAuthorizations live as long as the simulator. */
function tenantRoutes(pendings: PendingAuthorizations): Record<string, Partial<Record<string, Handler>>> {
  return {
    'v2.0/.well-known/openid-configuration': { GET: handleOpenIdConfiguration },
    'discovery/instance': { GET: handleInstanceDiscovery },
    'discovery/v2.0/keys': { GET: (ctx, route) => handleKeys(ctx, route) },
    'oauth2/v2.0/devicecode': { POST: handleDeviceCode },
    'oauth2/v2.0/token': { POST: handleToken },
    'oauth2/v2.0/authorize': {
      GET: (_ctx, route, tenant) => handleAuthorizeGet(pendings, route, tenant),
      POST: (ctx, route) => handleAuthorizePost(ctx, pendings, route),
    },
    'oauth2/v2.0/logout': { GET: (_ctx, route) => sendHtml(route.res, 200, errorPage('Signed out', 'You have signed out of the sandbox.')) },
  };
}

const sandboxRoutes: Record<string, Partial<Record<string, (ctx: IdentityContext, route: RouteRequest) => void | Promise<void>>>> = {
  devicelogin: { GET: handleDeviceLoginGet, POST: handleDeviceLoginPost },
  'api/approve': { POST: (ctx, route) => handleApiDecision(ctx, route, 'approve') },
  'api/decline': { POST: (ctx, route) => handleApiDecision(ctx, route, 'decline') },
  'api/pending': { GET: handleApiPending },
};

function methodNotAllowed(route: RouteRequest, allowed: string[]): void {
  sendJson(route.res, 405, { error: 'method_not_allowed', error_description: `Use ${allowed.join(' or ')}.` }, { allow: allowed.join(', ') });
}

function notFound(route: RouteRequest): void {
  sendJson(route.res, 404, { error: 'not_found', error_description: `No such endpoint: ${route.req.method} ${route.url.pathname}` });
}

async function dispatch(ctx: IdentityContext, routes: ReturnType<typeof tenantRoutes>, route: RouteRequest): Promise<void> {
  const [first, ...rest] = route.segments;
  const method = route.req.method ?? 'GET';
  if (first === 'sandbox') {
    const entry = sandboxRoutes[rest.join('/')];
    if (!entry) return notFound(route);
    const handler = entry[method];
    return handler ? handler(ctx, route) : methodNotAllowed(route, Object.keys(entry));
  }
  const entry = first ? routes[rest.join('/')] : undefined;
  if (!first || !entry) return notFound(route);
  const handler = entry[method];
  if (!handler) return methodNotAllowed(route, Object.keys(entry));
  if (!isTenantSegment(first)) throw oauthErrors.tenantNotFound(first);
  return handler(ctx, route, first);
}

function resolveSettings(opts: IdentitySimulatorOptions): SimulatorSettings {
  const accessTokenLifetimeSec = opts.accessTokenLifetimeSec ?? 3600;
  const settings: SimulatorSettings = {
    accessTokenLifetimeSec,
    reportedExpiresInSec: opts.reportedExpiresInSec ?? accessTokenLifetimeSec,
    refreshTokenLifetimeSec: opts.refreshTokenLifetimeSec ?? 90 * 24 * 3600,
    deviceCodeLifetimeSec: opts.deviceCodeLifetimeSec ?? 900,
    pollIntervalSec: opts.pollIntervalSec ?? 5,
  };
  for (const [name, value] of Object.entries(settings)) {
    if (!(typeof value === 'number' && Number.isFinite(value) && value > 0)) throw new RangeError(`${name} must be a positive number, got ${value}`);
  }
  return settings;
}

/** Starts the simulator; resolves once it listens. */
export async function startIdentitySimulator(opts: IdentitySimulatorOptions = {}): Promise<IdentitySimulator> {
  const settings = resolveSettings(opts);
  const host = opts.host ?? '127.0.0.1';
  const pki = opts.pki ?? (await createPki('xoauth2-relay sandbox identity CA'));
  const serverCert = await pki.issueServerCertificate([...new Set([host, 'localhost', '127.0.0.1', '::1'])]);
  const jwt = await JwtIssuer.create();
  const pendings = new PendingAuthorizations();
  const routes = tenantRoutes(pendings);
  let outage: OutageMode = 'none';
  let scripted: ScriptedTokenAnswer | null = null;
  let delayMs = 0;
  let ctx: IdentityContext | undefined;

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    if (!ctx) return void res.destroy();
    const context = ctx;
    context.stats.requests++;
    const url = new URL(req.url ?? '/', context.baseUrl);
    if (req.method === 'POST' && url.pathname.endsWith('/oauth2/v2.0/token')) context.stats.tokenRequests++;
    if (outage !== 'none' && !url.pathname.startsWith('/sandbox/api/')) {
      if (outage === 'reset') return void req.socket.destroy();
      return sendOAuthError({ req, res, url, segments: [] }, oauthErrors.temporarilyUnavailable());
    }
    const isToken = req.method === 'POST' && url.pathname.endsWith('/oauth2/v2.0/token');
    if (isToken && scripted) return sendScripted(res, scripted);
    if (isToken && delayMs > 0) {
      setTimeout(() => serve(context, req, res, url), delayMs);
      return;
    }
    serve(context, req, res, url);
  };

  const serve = (context: IdentityContext, req: IncomingMessage, res: ServerResponse, url: URL): void => {
    let segments: string[];
    try {
      segments = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    } catch {
      return sendJson(res, 400, { error: 'invalid_request', error_description: 'The path is not valid percent-encoding.' });
    }
    const route: RouteRequest = { req, res, url, segments };
    dispatch(context, routes, route).catch((err: unknown) => {
      if (res.headersSent) return void res.destroy();
      if (err instanceof OAuthError) return sendOAuthError(route, err);
      if (err instanceof HttpError) return sendHttpError(res, err);
      sendJson(res, 500, { error: 'server_error', error_description: `The simulator failed: ${(err as Error)?.message ?? String(err)}` });
    });
  };

  const server: Server = createServer({ cert: serverCert.certPem, key: serverCert.keyPem }, onRequest);
  // A client that drops a TLS handshake must not crash the simulator.
  server.on('tlsClientError', (_err, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const hostPort = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  const baseUrl = `https://${hostPort}`;
  const stats: SimulatorStats = { requests: 0, tokenRequests: 0, byGrant: {} };
  const context: IdentityContext = {
    baseUrl,
    hostPort,
    verificationUri: `${baseUrl}/sandbox/devicelogin`,
    settings,
    jwt,
    deviceCodes: new DeviceCodeStore(settings.deviceCodeLifetimeSec * 1000, settings.pollIntervalSec * 1000),
    refreshTokens: new RefreshTokenStore(settings.refreshTokenLifetimeSec * 1000),
    authCodes: new AuthorizationCodeStore(),
    clients: new ClientRegistry(),
    stats,
    expectedMailbox: opts.expectedMailbox ?? null,
  };
  ctx = context;

  return {
    url: baseUrl,
    hostPort,
    caCertPem: pki.caCertPem,
    signingKey: jwt.signingKey,
    verificationUri: context.verificationUri,
    issuer: (tenantId) => v1Issuer(tenantGuidFor(tenantId)),
    approve: (userCode, upn) => void context.deviceCodes.approve(userCode, upn),
    decline: (userCode) => void context.deviceCodes.decline(userCode),
    pendingDeviceCodes: () => context.deviceCodes.pending().map(describePending),
    revokeRefreshTokens: (upn) => context.refreshTokens.revokeUser(upn),
    registerClientSecret: (clientId, secret) => context.clients.registerSecret(clientId, secret),
    limitDelegatedPermissions: (clientId, permissions) => context.clients.limitDelegatedPermissions(clientId, permissions),
    registerClientCertificate: (clientId, certPem) => context.clients.registerCertificate(clientId, certPem),
    scriptTokenAnswer: (answer) => {
      scripted = answer;
    },
    delayTokenAnswers: (ms) => {
      delayMs = ms;
    },
    setOutage: (mode) => {
      outage = mode;
      // Kept-alive connections would otherwise bypass a 'reset' outage until they idle out.
      if (mode === 'reset') server.closeIdleConnections();
    },
    get stats() {
      return { requests: stats.requests, tokenRequests: stats.tokenRequests, byGrant: { ...stats.byGrant } };
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}

function sendScripted(res: ServerResponse, answer: ScriptedTokenAnswer): void {
  if (answer.html) {
    res.writeHead(answer.status, { 'content-type': 'text/html' });
    res.end(`<html><body><h1>${answer.status}</h1>${answer.error}</body></html>`);
    return;
  }
  const code = answer.aadsts ? `AADSTS${answer.aadsts}: ` : '';
  sendJson(res, answer.status, {
    error: answer.error,
    error_description: `${code}Scripted answer of the sandbox (${answer.error}).`,
    error_codes: answer.aadsts ? [answer.aadsts] : [],
    timestamp: new Date().toISOString().replace('T', ' ').slice(0, 19) + 'Z',
    trace_id: '00000000-0000-0000-0000-000000000000',
    correlation_id: '00000000-0000-0000-0000-000000000000',
  });
}
