/**
 * Who may do what on the admin listener. Three levels, one per route:
 *   public – health, readiness, metrics, the stylesheet and script, the login form;
 *   read   – the page and the GET API: needs a session. On loopback without a password the first visit gets
 *            one (whoever can reach 127.0.0.1 is trusted, as with the CLI); with a password, log in first;
 *   change – anything that changes state: a session AND its CSRF token, from this site. Missing or wrong: 403.
 *
 * Without a password the listener is on loopback, and the Host header must name a loopback address or
 * `localhost`: a web page that rebinds its own DNS name to 127.0.0.1 cannot then read a session's CSRF token.
 *
 * `Origin: null` (an opaque origin: a privacy extension, a sandboxed frame, or a strict Referrer-Policy) says
 * nothing about where a request came from, so it is neither refused nor trusted: a state change still needs the
 * session's CSRF token, and a login needs the login form's own token (double-submit cookie, login-token.ts).
 */
import type { IncomingMessage } from 'node:http';
import { RelayError } from '../errors.js';
import { isLoopbackHost } from '../transport/addresses.js';
import { loginTokenMatches } from './login-token.js';
import { AdminSessions, cookieValue, csrfTokenMatches, SESSION_COOKIE, type AdminSession } from './sessions.js';

export type Access = 'public' | 'read' | 'change';

export interface AccessPolicyOptions {
  sessions: AdminSessions;
  /** A password is configured: sessions come only from logging in. */
  passwordRequired: boolean;
}

export interface Admitted {
  session: AdminSession | null;
  /** A session made for this request: its cookie must be set on the answer. */
  created: boolean;
}

export class AccessPolicy {
  constructor(private readonly opts: AccessPolicyOptions) {}

  get passwordRequired(): boolean {
    return this.opts.passwordRequired;
  }

  /** Throws RelayError ADMIN_* when the request may not go on; resolves its session otherwise. */
  admit(req: IncomingMessage, access: Access, fields: Record<string, string> = {}): Admitted {
    if (access === 'public') return { session: this.existing(req), created: false };
    this.checkHost(req);
    if (access === 'read') {
      const session = this.existing(req);
      if (session) return { session, created: false };
      if (this.opts.passwordRequired) throw new RelayError('ADMIN_SESSION_REQUIRED');
      return { session: this.opts.sessions.create(), created: true };
    }
    this.checkSameSite(req);
    const session = this.existing(req);
    if (!session) throw new RelayError('ADMIN_SESSION_REQUIRED');
    const offered = header(req, 'x-csrf-token') ?? fields.csrf;
    if (!csrfTokenMatches(session, offered)) throw new RelayError('ADMIN_CSRF_REJECTED', offered ? 'the token does not match this session' : 'no CSRF token');
    return { session, created: false };
  }

  /**
   * Login posts have no session yet; they still must come from this site. The form's token is checked whenever
   * it is sent, and required when the browser did not say the request is same-origin (API clients such as curl
   * send no Origin and no token, and have no cookies a forged request could ride on).
   */
  checkLoginRequest(req: IncomingMessage, fields: Record<string, string>): void {
    this.checkHost(req);
    const site = this.checkSameSite(req);
    const offered = fields.loginToken;
    if (offered === undefined && site !== 'unknown') return;
    if (!loginTokenMatches(req.headers.cookie, offered)) {
      throw new RelayError('ADMIN_CSRF_REJECTED', offered ? 'the login form has expired' : 'Origin: null and no login form token');
    }
  }

  existing(req: IncomingMessage): AdminSession | null {
    return this.opts.sessions.touch(cookieValue(req.headers.cookie, SESSION_COOKIE));
  }

  private checkHost(req: IncomingMessage): void {
    if (this.opts.passwordRequired) return; // a password protects it whatever name is used to reach it
    const host = hostName(header(req, 'host') ?? '');
    if (!isLoopbackHost(host)) throw new RelayError('ADMIN_HOST_REFUSED', `Host: ${host.slice(0, 100)}`);
  }

  /**
   * Browsers say where a request comes from; a state change from another site is refused whatever it carries.
   * `same`: the browser said so; `absent`: no browser headers (a script); `unknown`: `Origin: null`.
   */
  private checkSameSite(req: IncomingMessage): 'same' | 'absent' | 'unknown' {
    const fetchSite = header(req, 'sec-fetch-site');
    if (fetchSite && fetchSite !== 'same-origin' && fetchSite !== 'none') throw new RelayError('ADMIN_CSRF_REJECTED', `Sec-Fetch-Site: ${fetchSite.slice(0, 40)}`);
    const origin = header(req, 'origin');
    if (origin === undefined) return fetchSite ? 'same' : 'absent';
    if (origin === 'null') return fetchSite === 'same-origin' ? 'same' : 'unknown';
    let originHost: string;
    try {
      originHost = new URL(origin).host;
    } catch {
      throw new RelayError('ADMIN_CSRF_REJECTED', 'unreadable Origin');
    }
    if (originHost !== header(req, 'host')) throw new RelayError('ADMIN_CSRF_REJECTED', `Origin ${origin.slice(0, 100)} is not this page`);
    return 'same';
  }
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** `127.0.0.1:8025` → `127.0.0.1`, `[::1]:8025` → `::1`, `localhost` → `localhost`. */
function hostName(hostHeader: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(hostHeader);
  if (bracketed) return bracketed[1]!;
  return hostHeader.replace(/:\d+$/, '').toLowerCase();
}
