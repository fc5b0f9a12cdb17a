/**
 * The simulator's own surface, under /sandbox/: the device-login page a person uses (Microsoft's is
 * https://microsoft.com/devicelogin) and a JSON API for scripts and tests.
 *
 *   GET  /sandbox/devicelogin[?user_code=…][&login_hint=…]   form: code, mailbox (filled in with login_hint, else
 *                                             the mailbox the simulator was told to expect), Approve / Decline
 *   POST /sandbox/devicelogin                 form fields user_code, upn, action=approve|decline
 *   POST /sandbox/api/approve                 {"userCode": "…", "upn": "…"} → 200 {status: "approved", …}
 *   POST /sandbox/api/decline                 {"userCode": "…"}             → 200 {status: "declined", …}
 *   GET  /sandbox/api/pending                 {pending: [{userCode, clientId, scopes, expiresAt}]}
 * API failures answer 400 {error: "invalid_user_code" | "invalid_request", error_description}.
 */
import type { IdentityContext } from './context.js';
import type { DeviceAuthorization } from './device-codes.js';
import { readForm, readJsonObject, sendHtml, sendJson, type RouteRequest } from './http.js';
import { deviceLoginDonePage, deviceLoginPage } from './pages.js';

/** The device codes waiting for a person, as the API and IdentitySimulator.pendingDeviceCodes show them. */
export function describePending(auth: DeviceAuthorization): { userCode: string; clientId: string; scopes: string[]; expiresAt: Date } {
  return { userCode: auth.userCode, clientId: auth.clientId, scopes: auth.scopeParam.split(/\s+/).filter(Boolean), expiresAt: new Date(auth.expiresAt) };
}

export function handleDeviceLoginGet(ctx: IdentityContext, route: RouteRequest): void {
  const params = route.url.searchParams;
  sendHtml(route.res, 200, deviceLoginPage({ userCode: params.get('user_code') ?? '', upn: params.get('login_hint') ?? ctx.expectedMailbox ?? '' }));
}

export async function handleDeviceLoginPost(ctx: IdentityContext, route: RouteRequest): Promise<void> {
  const form = await readForm(route.req);
  const userCode = form.get('user_code') ?? '';
  const upn = (form.get('upn') ?? '').trim();
  const approve = form.get('action') !== 'decline';
  if (approve && !upn) {
    const hint = ctx.expectedMailbox ? ` (the relay expects ${ctx.expectedMailbox})` : '';
    return sendHtml(route.res, 400, deviceLoginPage({ userCode, upn: ctx.expectedMailbox ?? '', error: `Enter the mailbox to sign in as${hint}.` }));
  }
  try {
    const auth = approve ? ctx.deviceCodes.approve(userCode, upn) : ctx.deviceCodes.decline(userCode);
    sendHtml(route.res, 200, deviceLoginDonePage({ approved: approve, clientId: auth.clientId, upn }));
  } catch (err) {
    sendHtml(route.res, 400, deviceLoginPage({ userCode, upn, error: (err as Error).message }));
  }
}

function stringField(body: Record<string, unknown>, name: string): string {
  const value = body[name];
  return typeof value === 'string' ? value : '';
}

export async function handleApiDecision(ctx: IdentityContext, route: RouteRequest, decision: 'approve' | 'decline'): Promise<void> {
  const body = await readJsonObject(route.req);
  const userCode = stringField(body, 'userCode');
  const upn = stringField(body, 'upn').trim();
  if (!userCode || (decision === 'approve' && !upn)) {
    return sendJson(route.res, 400, { error: 'invalid_request', error_description: decision === 'approve' ? 'userCode and upn are required.' : 'userCode is required.' });
  }
  try {
    const auth = decision === 'approve' ? ctx.deviceCodes.approve(userCode, upn) : ctx.deviceCodes.decline(userCode);
    sendJson(route.res, 200, { status: auth.status, userCode: auth.userCode, clientId: auth.clientId, ...(auth.upn ? { upn: auth.upn } : {}) });
  } catch (err) {
    sendJson(route.res, 400, { error: 'invalid_user_code', error_description: (err as Error).message });
  }
}

export function handleApiPending(ctx: IdentityContext, route: RouteRequest): void {
  sendJson(route.res, 200, { pending: ctx.deviceCodes.pending().map(describePending) });
}
