/**
 * The authorization endpoint (RFC 6749 §4.1.1/§4.1.2) with PKCE (RFC 7636): GET shows a sign-in page, POST
 * signs in as the mailbox typed there and sends the browser back to the client with a code.
 *
 * Any redirect_uri is accepted (the simulator has no app registrations for public clients); the code is bound
 * to it and the token request must repeat it (RFC 6749 §4.1.3).
 */
import type { IdentityContext } from './context.js';
import { effectiveTenant, isMailbox, randomOpaque, userObjectId } from './ids.js';
import { clientInfoFor } from './jwt-issuer.js';
import { readForm, redirect, sendHtml, type RouteRequest } from './http.js';
import { OAuthError } from './oauth-errors.js';
import { errorPage, formPostPage, signInPage } from './pages.js';
import { consentFor, parseDelegatedScopes, type DelegatedScopeRequest } from './scopes.js';

type ResponseMode = 'query' | 'fragment' | 'form_post';

interface PendingAuthorization {
  id: string;
  tenantSegment: string;
  clientId: string;
  redirectUri: string;
  responseMode: ResponseMode;
  state: string | undefined;
  nonce: string | undefined;
  codeChallenge: string;
  scopes: DelegatedScopeRequest;
  scopeParam: string;
  loginHint: string | undefined;
  clientInfo: boolean;
  expiresAt: number;
}

/** Authorization requests waiting for a person at the sign-in page (kept server-side, not in hidden fields). */
export class PendingAuthorizations {
  private readonly byId = new Map<string, PendingAuthorization>();

  add(request: Omit<PendingAuthorization, 'id' | 'expiresAt'>): PendingAuthorization {
    const now = Date.now();
    for (const [id, p] of this.byId) if (p.expiresAt < now) this.byId.delete(id);
    const pending = { ...request, id: randomOpaque(18), expiresAt: now + 15 * 60 * 1000 };
    this.byId.set(pending.id, pending);
    return pending;
  }

  get(id: string): PendingAuthorization | undefined {
    const pending = this.byId.get(id);
    return pending && pending.expiresAt > Date.now() ? pending : undefined;
  }

  remove(id: string): void {
    this.byId.delete(id);
  }
}

/** Where the answer goes and how (OAuth 2.0 Multiple Response Type Encoding Practices, Form Post Response Mode). */
function respond(route: RouteRequest, to: { redirectUri: string; responseMode: ResponseMode }, fields: Record<string, string>): void {
  if (to.responseMode === 'form_post') return sendHtml(route.res, 200, formPostPage(to.redirectUri, fields));
  const url = new URL(to.redirectUri);
  if (to.responseMode === 'fragment') url.hash = new URLSearchParams(fields).toString();
  else for (const [k, v] of Object.entries(fields)) url.searchParams.set(k, v);
  redirect(route.res, url.toString());
}

function errorFields(err: OAuthError, state: string | undefined): Record<string, string> {
  const fields: Record<string, string> = { error: err.error, error_description: `AADSTS${err.aadsts}: ${err.description}` };
  if (state) fields.state = state;
  return fields;
}

const s256Challenge = /^[A-Za-z0-9_-]{43}$/;

/** GET /{tenant}/oauth2/v2.0/authorize */
export function handleAuthorizeGet(pendings: PendingAuthorizations, route: RouteRequest, tenantSegment: string): void {
  const q = route.url.searchParams;
  const clientId = q.get('client_id');
  const redirectUri = q.get('redirect_uri');
  // RFC 6749 §4.1.2.1: without a trustworthy client and redirect URI, tell the person, never redirect.
  if (!clientId) return sendHtml(route.res, 400, errorPage('Sign-in failed', "AADSTS900144: The request must contain the 'client_id' parameter."));
  let target: URL;
  try {
    if (!redirectUri) throw new Error('missing');
    target = new URL(redirectUri);
    if (target.hash) throw new Error('fragment');
  } catch {
    return sendHtml(route.res, 400, errorPage('Sign-in failed', "AADSTS50011: The 'redirect_uri' is missing or is not an absolute URI without a fragment."));
  }
  const modeParam = q.get('response_mode') ?? 'query';
  const responseMode: ResponseMode = modeParam === 'fragment' || modeParam === 'form_post' ? modeParam : 'query';
  const state = q.get('state') ?? undefined;
  const back = { redirectUri: target.toString(), responseMode };
  const fail = (err: OAuthError) => respond(route, back, errorFields(err, state));

  if (q.get('response_type') !== 'code') {
    return fail(new OAuthError(400, 'unsupported_response_type', 700054, "The simulator supports response_type 'code' only."));
  }
  if (!['query', 'fragment', 'form_post'].includes(modeParam)) {
    return fail(new OAuthError(400, 'invalid_request', 900144, `Unsupported response_mode '${modeParam}'.`));
  }
  // PKCE is required and only S256: the product always uses it, and a regression to `plain` (RFC 7636 §4.2
  // allows it) or to no PKCE should fail loudly here rather than pass unnoticed.
  const codeChallenge = q.get('code_challenge') ?? '';
  if (q.get('code_challenge_method') !== 'S256' || !s256Challenge.test(codeChallenge)) {
    return fail(new OAuthError(400, 'invalid_request', 9002325, 'Proof Key for Code Exchange (RFC 7636) with code_challenge_method S256 is required.'));
  }
  let scopes: DelegatedScopeRequest;
  try {
    scopes = parseDelegatedScopes(q.get('scope') ?? undefined);
  } catch (err) {
    if (err instanceof OAuthError) return fail(err);
    throw err;
  }
  // OpenID Connect Core §3.1.2.1: prompt=none needs an existing session; the simulator never has one.
  if (q.get('prompt') === 'none') {
    return fail(new OAuthError(400, 'login_required', 50058, 'A silent sign-in request was sent but no user is signed in.'));
  }
  const pending = pendings.add({
    tenantSegment,
    clientId,
    redirectUri: back.redirectUri,
    responseMode,
    state,
    nonce: q.get('nonce') || undefined,
    codeChallenge,
    scopes,
    scopeParam: q.get('scope') ?? '',
    loginHint: q.get('login_hint') ?? undefined,
    clientInfo: q.get('client_info') === '1',
  });
  sendHtml(route.res, 200, signInPage({ requestId: pending.id, clientId, scopeParam: pending.scopeParam, loginHint: pending.loginHint }));
}

/** POST /{tenant}/oauth2/v2.0/authorize: the sign-in page's form. */
export async function handleAuthorizePost(ctx: IdentityContext, pendings: PendingAuthorizations, route: RouteRequest): Promise<void> {
  const form = await readForm(route.req);
  const pending = pendings.get(form.get('request') ?? '');
  if (!pending) {
    return sendHtml(route.res, 400, errorPage('Sign-in expired', 'This sign-in request is unknown or has expired. Start again from the application.'));
  }
  if (form.get('action') === 'decline') {
    pendings.remove(pending.id);
    const declined = new OAuthError(400, 'access_denied', 65004, 'User declined to consent to access the app.');
    return respond(route, pending, errorFields(declined, pending.state));
  }
  const upn = (form.get('upn') ?? '').trim();
  if (!isMailbox(upn)) {
    const page = signInPage({ requestId: pending.id, clientId: pending.clientId, scopeParam: pending.scopeParam, loginHint: upn, error: 'Enter a mailbox address (user@domain).' });
    return sendHtml(route.res, 400, page);
  }
  pendings.remove(pending.id);
  const tenantGuid = effectiveTenant(pending.tenantSegment, upn);
  const grant = ctx.authCodes.issue(
    { clientId: pending.clientId, upn, tenantGuid, consent: consentFor(pending.scopes), offlineAccess: pending.scopes.oidc.has('offline_access') },
    { redirectUri: pending.redirectUri, codeChallenge: pending.codeChallenge, nonce: pending.nonce },
  );
  const fields: Record<string, string> = { code: grant.code };
  if (pending.state) fields.state = pending.state;
  if (pending.clientInfo) fields.client_info = clientInfoFor(userObjectId(upn), tenantGuid);
  respond(route, pending, fields);
}
