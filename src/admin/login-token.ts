/**
 * The login form's own CSRF token, for the one state change that has no session yet. A double-submit cookie:
 * GET /login sets a random value in an HttpOnly, SameSite=Strict cookie scoped to /login and writes the same
 * value into a hidden field; the post must carry both, equal. Another site can make a browser post the form,
 * but it can neither read the field nor set the cookie, so a forged login (into the attacker's session) fails
 * even where the browser sends `Origin: null`.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { cookieValue } from './sessions.js';

export const LOGIN_COOKIE = 'xoauth2_relay_login';

/** Ten minutes to type a password; a later post gets the form again with a fresh token. */
const LOGIN_TOKEN_SECONDS = 600;

export function newLoginToken(): string {
  return randomBytes(24).toString('base64url');
}

/** `secure`: the page is served over HTTPS (see `sessionCookie`). */
export function loginTokenCookie(token: string, secure = false): string {
  return `${LOGIN_COOKIE}=${token}; Path=/login; HttpOnly; SameSite=Strict; Max-Age=${LOGIN_TOKEN_SECONDS}${secure ? '; Secure' : ''}`;
}

/** True when the posted field equals the cookie (constant-time); false when either is missing. */
export function loginTokenMatches(cookieHeader: string | undefined, offered: string | undefined): boolean {
  const expected = cookieValue(cookieHeader, LOGIN_COOKIE);
  if (!expected || !offered) return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(offered);
  return a.length === b.length && timingSafeEqual(a, b);
}
