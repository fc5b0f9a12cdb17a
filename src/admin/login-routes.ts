/**
 * Logging in and out, when admin.passwordHash is set. Wrong passwords cost the address a growing wait (the
 * same back-off devices get), so the page cannot be used to guess the password at scrypt speed.
 */
import type { FailureThrottle } from '../auth/failure-throttle.js';
import { verifyPassword } from '../auth/password-hash.js';
import { RelayError } from '../errors.js';
import type { Logger } from '../log.js';
import type { AccessPolicy } from './access.js';
import type { Exchange, Route } from './exchange.js';
import { redirect, sendHtml, sendJson, statusFor } from './http-exchange.js';
import { loginPage } from './login-page.js';
import { loginTokenCookie, newLoginToken } from './login-token.js';
import { sessionCookie, type AdminSessions } from './sessions.js';

export interface LoginDeps {
  access: AccessPolicy;
  sessions: AdminSessions;
  /** admin.passwordHash, or null (loopback without a password). */
  passwordHash: string | null;
  loginThrottle: FailureThrottle;
  logger: Logger;
  /** The page is served over HTTPS: cookies are marked Secure. */
  secureCookies: boolean;
}

export function loginRoutes(deps: LoginDeps): Route[] {
  const logIn = async (ex: Exchange) => {
    try {
      deps.access.checkLoginRequest(ex.req, ex.fields);
    } catch (err) {
      if (ex.wantsHtml && err instanceof RelayError) return refuse(ex, err, deps.secureCookies);
      throw err;
    }
    if (!deps.passwordHash) return ex.wantsHtml ? redirect(ex.res, '/') : sendJson(ex.res, 200, { ok: true, message: 'no admin password is configured: no login needed' });
    const address = ex.req.socket.remoteAddress ?? 'unknown';
    const waitMs = deps.loginThrottle.blockedFor(address);
    if (waitMs > 0) return refuse(ex, new RelayError('ADMIN_LOGIN_THROTTLED', `wait ${Math.ceil(waitMs / 1000)} s`), deps.secureCookies);
    if (!(await verifyPassword(ex.fields.password ?? '', deps.passwordHash))) {
      deps.loginThrottle.failed(address);
      deps.logger.warn({ remoteAddress: address }, 'admin: wrong password');
      return refuse(ex, new RelayError('ADMIN_LOGIN_FAILED'), deps.secureCookies);
    }
    deps.loginThrottle.succeeded(address);
    const session = deps.sessions.create();
    deps.logger.info({ remoteAddress: address }, 'admin: logged in');
    const cookie = { 'set-cookie': sessionCookie(session, deps.sessions.idleSeconds, deps.secureCookies) };
    if (ex.wantsHtml) return redirect(ex.res, '/', cookie);
    sendJson(ex.res, 200, { ok: true, csrfToken: session.csrfToken }, cookie);
  };

  return [
    {
      method: 'GET', path: /^\/login$/, access: 'public',
      handle: (ex) => (deps.passwordHash && !ex.session ? sendLoginPage(ex, 200, null, deps.secureCookies) : redirect(ex.res, '/')),
    },
    { method: 'POST', path: /^\/login$/, access: 'public', handle: logIn },
    { method: 'POST', path: /^\/api\/login$/, access: 'public', handle: logIn },
    {
      method: 'GET', path: /^\/api\/session$/, access: 'read',
      handle: (ex) => sendJson(ex.res, 200, { csrfToken: ex.session!.csrfToken, passwordRequired: deps.access.passwordRequired, idleSeconds: deps.sessions.idleSeconds }),
    },
    {
      method: 'POST', path: /^\/(?:api\/)?logout$/, access: 'change',
      handle: (ex) => {
        deps.sessions.end(ex.session!.id);
        const cookie = { 'set-cookie': sessionCookie(null, 0, deps.secureCookies) };
        if (ex.wantsHtml) return redirect(ex.res, deps.passwordHash ? '/login' : '/', cookie);
        sendJson(ex.res, 200, { ok: true, message: 'logged out' }, cookie);
      },
    },
  ];
}

/** The form with a fresh login token, in the field and in the cookie. */
function sendLoginPage(ex: Exchange, status: number, problem: string | null, secure: boolean): void {
  const token = newLoginToken();
  sendHtml(ex.res, status, loginPage(problem, token), { 'set-cookie': loginTokenCookie(token, secure) });
}

function refuse(ex: Exchange, err: RelayError, secure: boolean): void {
  if (ex.wantsHtml) return sendLoginPage(ex, statusFor(err.code), err.message, secure);
  sendJson(ex.res, statusFor(err.code), { error: { code: err.code, message: err.message } });
}
