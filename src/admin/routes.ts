/**
 * The admin listener's routes as data: method, path, access level, handler. The page and the JSON API share
 * the action routes (`POST /api/…`): a plain form post gets a 303 back to the page, the page's script and API
 * clients get JSON.
 */
import type { TokenServices } from '../auth/token-services.js';
import { RelayError } from '../errors.js';
import type { Logger } from '../log.js';
import type { DeliveryWorker } from '../smtp/delivery/index.js';
import type { Spool } from '../smtp/spool/index.js';
import type { MailboxSessionsView } from '../transport/mailbox-slots.js';
import { deleteToken, getToken } from './account-actions.js';
import type { AccountRuns, AccountTests } from './account-test.js';
import type { DoctorReport } from '../checks/doctor/findings.js';
import { adminScript, adminStylesheet } from './assets.js';
import { answerAction, type Exchange, type Route } from './exchange.js';
import { readiness } from './health.js';
import { send, sendHtml, sendJson } from './http-exchange.js';
import { loginRoutes, type LoginDeps } from './login-routes.js';
import type { RelayMetrics } from './metrics.js';
import { adminPage, liveSection } from './page.js';
import type { RecentDeliveries } from './recent-deliveries.js';
import { accountViews, adminStatus, deliveriesView, spoolView, type StatusSources } from './status-view.js';

export interface AdminDeps extends LoginDeps {
  tokens: TokenServices;
  spool: Pick<Spool, 'summary' | 'list' | 'listDead' | 'retry' | 'drop' | 'root'>;
  delivery: Pick<DeliveryWorker, 'notify'>;
  metrics: RelayMetrics;
  tests: AccountTests | null;
  doctors: AccountRuns<DoctorReport> | null;
  recent: RecentDeliveries;
  mailboxSessions?: MailboxSessionsView;
  ready: () => boolean;
  logger: Logger;
  now: () => number;
}

const ACCOUNT = '([A-Za-z0-9][A-Za-z0-9._-]{0,63})';
const MESSAGE = '([0-9a-z]{9}-[0-9a-f]{10})';
const path = (pattern: string) => new RegExp(`^${pattern}$`);

export function adminRoutes(deps: AdminDeps): Route[] {
  const sources: StatusSources = { tokens: deps.tokens, spool: deps.spool, recent: deps.recent, tests: deps.tests, doctors: deps.doctors, now: deps.now, ...(deps.mailboxSessions ? { mailboxSessions: deps.mailboxSessions } : {}) };
  const audit = (ex: Exchange, action: string, fields: Record<string, unknown>) =>
    deps.logger.info({ action, remoteAddress: ex.req.socket.remoteAddress, ...fields }, `admin: ${action}`);

  return [
    // ── public ────────────────────────────────────────────────────────────────
    { method: 'GET', path: path('/healthz'), access: 'public', handle: (ex) => sendJson(ex.res, 200, { status: 'up' }) },
    {
      method: 'GET', path: path('/readyz'), access: 'public',
      handle: async (ex) => {
        const report = await readiness(deps.ready, deps.spool.root, () => deps.tokens.storeStatus());
        sendJson(ex.res, report.ready ? 200 : 503, report);
      },
    },
    {
      method: 'GET', path: path('/metrics'), access: 'public',
      handle: async (ex) => {
        const { contentType, body } = await deps.metrics.exposition();
        send(ex.res, 200, contentType, body);
      },
    },
    { method: 'GET', path: path('/admin.js'), access: 'public', handle: (ex) => send(ex.res, 200, 'text/javascript; charset=utf-8', adminScript) },
    { method: 'GET', path: path('/admin.css'), access: 'public', handle: (ex) => send(ex.res, 200, 'text/css; charset=utf-8', adminStylesheet) },
    ...loginRoutes(deps),

    // ── the page ──────────────────────────────────────────────────────────────
    {
      method: 'GET', path: path('/'), access: 'read',
      handle: async (ex) => {
        const session = ex.session!;
        const flash = session.flash;
        session.flash = null;
        const page = adminPage(await adminStatus(sources), { csrfToken: session.csrfToken, loggedIn: deps.access.passwordRequired, flash, nowMs: deps.now() });
        sendHtml(ex.res, 200, page);
      },
    },
    {
      method: 'GET', path: path('/live'), access: 'read',
      handle: async (ex) => {
        const fragment = liveSection(await adminStatus(sources), { csrfToken: ex.session!.csrfToken, nowMs: deps.now() });
        sendHtml(ex.res, 200, fragment, { 'x-server-time': String(deps.now()) });
      },
    },

    // ── JSON API: reads ───────────────────────────────────────────────────────
    { method: 'GET', path: path('/api/status'), access: 'read', handle: async (ex) => sendJson(ex.res, 200, await adminStatus(sources)) },
    { method: 'GET', path: path('/api/accounts'), access: 'read', handle: (ex) => sendJson(ex.res, 200, accountViews(sources)) },
    {
      method: 'GET', path: path(`/api/accounts/${ACCOUNT}`), access: 'read',
      handle: (ex) => {
        const view = accountViews(sources).find((a) => a.account === ex.params[0]);
        if (!view) throw new RelayError('UNKNOWN_ACCOUNT', ex.params[0]);
        sendJson(ex.res, 200, view);
      },
    },
    { method: 'GET', path: path('/api/spool'), access: 'read', handle: async (ex) => sendJson(ex.res, 200, await spoolView(deps.spool, deps.now())) },
    { method: 'GET', path: path('/api/deliveries'), access: 'read', handle: (ex) => sendJson(ex.res, 200, deliveriesView(deps.recent)) },

    // ── JSON API and page buttons: actions ────────────────────────────────────
    {
      method: 'POST', path: path(`/api/accounts/${ACCOUNT}/get-token`), access: 'change',
      handle: async (ex) => {
        const service = deps.tokens.get(ex.params[0]!);
        audit(ex, 'get token', { account: service.name, flow: ex.fields.flow ?? service.flow });
        const result = await getToken(service, deps.logger, ex.fields.flow);
        switch (result.flow) {
          case 'device-code':
            return answerAction(ex, { status: 202, message: `Enter code ${result.userCode} at ${result.verificationUri} and sign in as ${service.mailbox}.`, link: result.verificationUri, result });
          case 'browser':
            return answerAction(ex, { status: 202, message: `Open the sign-in page and sign in as ${service.mailbox}.`, link: result.signInUrl, result });
          case 'client-credentials':
            return answerAction(ex, { message: `Token acquired for ${service.mailbox}.`, result });
        }
      },
    },
    {
      method: 'POST', path: path(`/api/accounts/${ACCOUNT}/delete-token`), access: 'change',
      handle: async (ex) => {
        const service = deps.tokens.get(ex.params[0]!);
        audit(ex, 'delete token', { account: service.name });
        await deleteToken(service);
        answerAction(ex, { message: `Token of ${service.name} deleted: the account is not acquired.` });
      },
    },
    {
      method: 'POST', path: path(`/api/accounts/${ACCOUNT}/test`), access: 'change',
      handle: async (ex) => {
        const service = deps.tokens.get(ex.params[0]!);
        if (!deps.tests) throw new RelayError('ACCOUNT_TEST_UNAVAILABLE');
        audit(ex, 'test', { account: service.name });
        const run = await deps.tests.run(service.name);
        const results = run.report?.results ?? [];
        const failed = results.filter((c) => !c.ok).map((c) => c.protocol.toUpperCase());
        const passed = run.report !== null && failed.length === 0;
        const message = run.report === null ? `Test of ${service.name} could not run: ${run.error}` : passed ? `Test of ${service.name} passed: ${results.map((c) => c.protocol.toUpperCase()).join(', ')}.` : `Test of ${service.name} failed: ${failed.join(', ')}.`;
        answerAction(ex, { message, at: run.at, report: run.report }, passed);
      },
    },
    {
      method: 'POST', path: path(`/api/accounts/${ACCOUNT}/doctor`), access: 'change',
      handle: async (ex) => {
        const service = deps.tokens.get(ex.params[0]!);
        if (!deps.doctors) throw new RelayError('ACCOUNT_TEST_UNAVAILABLE');
        audit(ex, 'doctor', { account: service.name });
        const run = await deps.doctors.run(service.name);
        const failed = run.report?.steps.filter((s) => s.status === 'fail').map((s) => s.check) ?? [];
        const message = run.report === null ? `Doctor for ${service.name} could not run: ${run.error}` : run.report.ok ? `Doctor: every check of ${service.name} passes.` : `Doctor: ${service.name} needs fixing: ${failed.join(', ')}.`;
        answerAction(ex, { message, at: run.at, report: run.report }, run.report?.ok ?? false);
      },
    },
    {
      method: 'POST', path: path(`/api/messages/${MESSAGE}/retry`), access: 'change',
      handle: async (ex) => {
        const id = ex.params[0]!;
        audit(ex, 'retry message', { id });
        const result = await deps.spool.retry(id);
        if (result === null) throw new RelayError('NO_SUCH_MESSAGE', id);
        deps.delivery.notify();
        answerAction(ex, { message: `Message ${id} ${result === 'resurrected' ? 'is back from the dead letters and' : 'is'} queued for delivery now.`, result });
      },
    },
    {
      method: 'POST', path: path(`/api/messages/${MESSAGE}/drop`), access: 'change',
      handle: async (ex) => {
        const id = ex.params[0]!;
        audit(ex, 'drop message', { id });
        if (!(await deps.spool.drop(id))) throw new RelayError('NO_SUCH_MESSAGE', id);
        deps.delivery.notify();
        answerAction(ex, { message: `Message ${id} dropped.` });
      },
    },
    { method: 'GET', path: path('/favicon.ico'), access: 'public', handle: (ex) => send(ex.res, 204, 'image/x-icon', '') },
  ];
}
