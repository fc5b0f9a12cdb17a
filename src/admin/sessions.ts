/**
 * Admin sessions: a random id in an HttpOnly, SameSite=Strict cookie, and per session a CSRF token that every
 * state-changing request must echo (a hidden form field, or the `x-csrf-token` header from the page's script).
 * SameSite=Strict already keeps the cookie off cross-site requests; the token is the second lock, for browsers
 * or proxies that get SameSite wrong, and it proves the request came from a page this server rendered.
 *
 * Sessions live in memory only: a restart logs everyone out, which is the right default for a daemon whose
 * only secret on the page is the power to delete tokens.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';

export const SESSION_COOKIE = 'xoauth2_relay_admin';

export interface AdminSession {
  id: string;
  csrfToken: string;
  /** Epoch ms after which the session is gone unless used again (sliding). */
  expiresAt: number;
  /** One message for the next page view (the outcome of a form post without script). */
  flash: { ok: boolean; text: string } | null;
}

export interface AdminSessionsOptions {
  /** Idle time after which a session ends. */
  idleMs: number;
  /** Oldest sessions are dropped beyond this, so visits cannot fill the memory. */
  maxSessions?: number;
  now?: () => number;
}

export class AdminSessions {
  private readonly sessions = new Map<string, AdminSession>();
  private readonly now: () => number;
  private readonly maxSessions: number;

  constructor(private readonly opts: AdminSessionsOptions) {
    this.now = opts.now ?? Date.now;
    this.maxSessions = opts.maxSessions ?? 100;
  }

  get idleSeconds(): number {
    return Math.round(this.opts.idleMs / 1000);
  }

  create(): AdminSession {
    const session: AdminSession = { id: token(), csrfToken: token(), expiresAt: this.now() + this.opts.idleMs, flash: null };
    this.sessions.set(session.id, session);
    while (this.sessions.size > this.maxSessions) this.sessions.delete(this.sessions.keys().next().value!);
    return session;
  }

  /** The live session with this id (its idle timer restarts), or null. */
  touch(id: string | undefined): AdminSession | null {
    if (!id) return null;
    const session = this.sessions.get(id);
    if (!session) return null;
    const nowMs = this.now();
    if (session.expiresAt <= nowMs) {
      this.sessions.delete(id);
      return null;
    }
    session.expiresAt = nowMs + this.opts.idleMs;
    // Re-insert: Map order doubles as least-recently-used order for the eviction above.
    this.sessions.delete(id);
    this.sessions.set(id, session);
    return session;
  }

  end(id: string): void {
    this.sessions.delete(id);
  }

  endAll(): void {
    this.sessions.clear();
  }
}

/** True when `offered` is the session's CSRF token (constant-time). */
export function csrfTokenMatches(session: AdminSession, offered: string | undefined): boolean {
  if (!offered) return false;
  const a = Buffer.from(session.csrfToken);
  const b = Buffer.from(offered);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * The Set-Cookie value; `secure` (the page is served over HTTPS, admin.tls) adds `Secure`, so the browser never
 * sends the session over plain HTTP. Loopback HTTP cannot use it: browsers drop Secure cookies set over http.
 */
export function sessionCookie(session: AdminSession | null, maxAgeSeconds: number, secure = false): string {
  const value = session ? session.id : '';
  const age = session ? maxAgeSeconds : 0;
  return `${SESSION_COOKIE}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${age}${secure ? '; Secure' : ''}`;
}

/** A cookie's value from a Cookie header, or undefined. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function token(): string {
  return randomBytes(32).toString('base64url');
}
