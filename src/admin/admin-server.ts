/**
 * The admin listener (`admin.listen`, default 127.0.0.1:8025): the status page with its buttons, the JSON API,
 * `/metrics`, `/healthz` and `/readyz`. Plain HTTP on loopback; HTTPS with `admin.tls` (cookies then Secure). On
 * a network address a password is required and so is HTTPS, unless admin.allowPlainHttp says a TLS reverse proxy
 * in front takes care of it (it refuses to start otherwise; check-config says so first).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { FailureThrottle } from '../auth/failure-throttle.js';
import { parsePasswordHash } from '../auth/password-hash.js';
import type { TokenServices } from '../auth/token-services.js';
import { parseHostPort, type Config } from '../config/schema.js';
import { RelayError, isRelayError } from '../errors.js';
import { errorFields, type Logger } from '../log.js';
import type { DeliveryWorker } from '../smtp/delivery/index.js';
import type { Spool } from '../smtp/spool/index.js';
import type { MailboxSessionsView } from '../transport/mailbox-slots.js';
import { isLoopbackHost } from '../transport/addresses.js';
import { AccessPolicy } from './access.js';
import { adminExposure, loadAdminTls } from './admin-tls.js';
import { AccountRuns, AccountTests, type AccountTester } from './account-test.js';
import type { DoctorReport } from '../checks/doctor/findings.js';
import { answerAction, wantsHtml, type Exchange, type Route } from './exchange.js';
import { HttpProblem, errorBody, readFields, redirect, send, sendJson, statusFor } from './http-exchange.js';
import type { RelayMetrics } from './metrics.js';
import { RecentDeliveries } from './recent-deliveries.js';
import { adminRoutes } from './routes.js';
import { AdminSessions, sessionCookie } from './sessions.js';

export interface AdminServerOptions {
  config: Config;
  tokens: TokenServices;
  spool: Spool;
  delivery: Pick<DeliveryWorker, 'on' | 'off' | 'notify'>;
  logger: Logger;
  /** The relay's metrics (the daemon makes one and hands it to the listeners too). */
  metrics: RelayMetrics;
  /** Runs the account checks for the Test button; without it the button is not shown. */
  testAccount?: AccountTester;
  /** Runs the setup doctor for the Doctor button (what works and what to fix); without it the button is not shown. */
  doctorAccount?: (account: string) => Promise<DoctorReport>;
  /** Upstream IMAP/POP3 sessions per mailbox now (the per-mailbox cap), for the account cards. */
  mailboxSessions?: MailboxSessionsView;
  /** True while the device listeners are bound (readiness); default: always true. */
  ready?: () => boolean;
  /** Idle minutes before an admin session ends; default `admin.sessionMinutes`. */
  sessionMinutes?: number;
  now?: () => number;
}

export interface AdminServer {
  /** The bound port (the configured one, or the one picked for port 0). */
  port: number;
  /** `http://host:port/` of the page (this host's name when bound to all addresses), for log lines and notices. */
  url: string;
  close(): Promise<void>;
}

/**
 * Starts the admin listener. Rejects with ADMIN_PASSWORD_REQUIRED when admin.listen is not a loopback address
 * and no admin.passwordHash is set (config validation says so too; this is the second lock), with
 * PASSWORD_HASH_INVALID for a malformed hash, and with ADMIN_LISTEN_FAILED when the port cannot be bound.
 */
export async function startAdminServer(opts: AdminServerOptions): Promise<AdminServer> {
  const listen = parseHostPort(opts.config.admin.listen);
  if (!listen) throw new RelayError('CONFIG_INVALID', `admin.listen ${JSON.stringify(opts.config.admin.listen)} is not host:port`);
  const passwordHash = opts.config.admin.passwordHash;
  if (!isLoopbackHost(listen.host) && !passwordHash) throw new RelayError('ADMIN_PASSWORD_REQUIRED', `admin.listen is ${opts.config.admin.listen}`);
  if (passwordHash) parsePasswordHash(passwordHash);
  const exposure = adminExposure(opts.config);
  if (exposure === 'plain-http-refused') throw new RelayError('ADMIN_PLAIN_HTTP', `admin.listen is ${opts.config.admin.listen}`);
  const tls = loadAdminTls(opts.config);

  const log = opts.logger.child({ component: 'admin' });
  const now = opts.now ?? Date.now;
  const sessions = new AdminSessions({ idleMs: sessionMinutes(opts) * 60_000, now });
  const access = new AccessPolicy({ sessions, passwordRequired: passwordHash !== null });
  const recent = new RecentDeliveries(50, now);
  const unfollow = recent.follow(opts.delivery);
  const routes = adminRoutes({
    tokens: opts.tokens,
    spool: opts.spool,
    delivery: opts.delivery,
    metrics: opts.metrics,
    tests: opts.testAccount ? new AccountTests(opts.testAccount) : null,
    doctors: opts.doctorAccount ? new AccountRuns(opts.doctorAccount) : null,
    recent,
    ...(opts.mailboxSessions ? { mailboxSessions: opts.mailboxSessions } : {}),
    ready: opts.ready ?? (() => true),
    logger: log,
    now,
    access,
    sessions,
    passwordHash,
    loginThrottle: new FailureThrottle({ freeFailures: 3, baseBlockMs: 2000, maxBlockMs: 5 * 60_000 }),
    secureCookies: tls !== null,
  });

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    // dispatch answers every failure itself; this catch is for a fault in that answering.
    dispatch(routes, access, sessions, log, req, res, tls !== null).catch((err: unknown) => {
      log.error({ ...errorFields(err), code: 'INTERNAL' }, 'admin request failed unexpectedly');
      res.destroy();
    });
  };
  const server: Server = tls ? createHttpsServer({ cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2' }, handle) : createServer(handle);
  server.requestTimeout = 30_000;
  server.headersTimeout = 15_000;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(listen.port, listen.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    unfollow();
    throw new RelayError('ADMIN_LISTEN_FAILED', `${opts.config.admin.listen}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
  server.on('error', (err) => log.error(errorFields(err), 'admin listener error'));
  const port = (server.address() as AddressInfo).port;
  const url = pageUrl(listen.host, port, tls !== null);
  log.info({ url, password: passwordHash !== null, https: tls !== null }, 'admin page listening');
  if (exposure === 'plain-http-allowed') log.warn({ listen: opts.config.admin.listen }, 'admin page speaks plain HTTP on a network address (admin.allowPlainHttp: true): the admin password and session cookie cross the network in clear text unless a TLS reverse proxy on this host is the only way in');

  return {
    port,
    url,
    close: () =>
      new Promise<void>((resolve) => {
        unfollow();
        sessions.endAll();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** The page's address for people: a wildcard bind (0.0.0.0, ::) is reached through this host's name. */
function pageUrl(host: string, port: number, https: boolean): string {
  const shown = host === '0.0.0.0' || host === '::' ? hostname() : host;
  return `${https ? 'https' : 'http'}://${shown.includes(':') ? `[${shown}]` : shown}:${port}/`;
}

function sessionMinutes(opts: AdminServerOptions): number {
  return opts.sessionMinutes ?? opts.config.admin.sessionMinutes;
}

/** Finds the route, admits the request at the route's level, runs it, and turns failures into answers. */
async function dispatch(routes: Route[], access: AccessPolicy, sessions: AdminSessions, log: Logger, req: IncomingMessage, res: ServerResponse, secureCookies: boolean): Promise<void> {
  const url = requestTarget(req.url);
  const ex: Exchange = { req, res, url: url ?? new URL('http://admin.invalid/'), params: [], fields: {}, session: null, wantsHtml: wantsHtml(req) };
  let admitted = false;
  try {
    if (!url) throw new HttpProblem(400, 'malformed request target');
    const matching = routes.filter((r) => r.path.test(url.pathname));
    const route = matching.find((r) => r.method === req.method || (req.method === 'HEAD' && r.method === 'GET'));
    if (!route) throw new HttpProblem(matching.length > 0 ? 405 : 404, matching.length > 0 ? 'method not allowed' : 'no such page');
    ex.params = (route.path.exec(url.pathname) ?? []).slice(1).map(decodePathParameter);
    if (route.method === 'POST') ex.fields = await readFields(req);
    const entry = access.admit(req, route.access, ex.fields);
    ex.session = entry.session;
    if (entry.created && entry.session) res.setHeader('set-cookie', sessionCookie(entry.session, sessions.idleSeconds, secureCookies));
    admitted = true;
    await route.handle(ex);
  } catch (err) {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    answerFailure(ex, err, admitted, log);
  }
}

/**
 * The request's URL, or null when it has none: `//` or `/\\` read as a scheme-relative URL with no host make
 * `new URL` throw (found by the admin routing fuzz: the connection was dropped and logged as an internal error).
 */
function requestTarget(target: string | undefined): URL | null {
  try {
    return new URL(target ?? '/', 'http://admin.invalid');
  } catch {
    return null;
  }
}

function decodePathParameter(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new HttpProblem(400, 'malformed path');
  }
}

function answerFailure(ex: Exchange, err: unknown, admitted: boolean, log: Logger): void {
  if (err instanceof HttpProblem) return send(ex.res, err.status, 'text/plain; charset=utf-8', `${err.message}\n`);
  const relayError = isRelayError(err) ? err : new RelayError('INTERNAL', undefined, { cause: err });
  if (relayError.kind === 'internal') log.error({ path: ex.url.pathname, ...errorFields(err) }, 'admin request failed');
  else log.info({ path: ex.url.pathname, code: relayError.code, remoteAddress: ex.req.socket.remoteAddress }, `admin request refused: ${relayError.message}`);
  // A browser that lost its session goes to the login form; a failed button press shows on the page.
  if (relayError.code === 'ADMIN_SESSION_REQUIRED' && ex.wantsHtml && ex.req.method === 'GET') return redirect(ex.res, '/login');
  if (admitted && ex.wantsHtml && ex.session && ex.req.method === 'POST') return answerAction(ex, { message: relayError.message }, false);
  sendJson(ex.res, statusFor(relayError.code), errorBody(relayError));
}
