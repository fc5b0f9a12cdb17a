/**
 * What the admin page shows and the JSON API returns, computed in one place so both always agree: every
 * account (the `status` command's row plus what the page needs for its buttons), the spool, and the recent
 * delivery outcomes.
 */
import type { TokenServices } from '../auth/token-services.js';
import { queueRow, type QueueRow } from '../cli/queue.js';
import { accountStatus, type AccountStatus } from '../auth/account-status.js';
import type { StoreStatus } from '../auth/store/redis-connection.js';
import type { MessageStatus, Spool } from '../smtp/spool/index.js';
import type { AccountRun, AccountRuns, AccountTests, TestRun } from './account-test.js';
import type { DoctorReport } from '../checks/doctor/findings.js';
import type { RecentDelivery, RecentDeliveries } from './recent-deliveries.js';
import type { MailboxSessionsView } from '../transport/mailbox-slots.js';

export interface AccountView extends AccountStatus {
  /** Access-token expiry (ISO) when acquired; `expiresAt` is the device code's expiry while waiting. */
  accessTokenExpiresAt: string | null;
  /** Why the last interactive sign-in ended without a token (declined, expired code), for the person who started it. */
  lastSignInFailure: string | null;
  /** The last Test result, and whether one is running; null when the Test button is not offered. */
  test: { running: boolean; last: TestRun | null } | null;
  /** The last Doctor report, and whether one is running; null when the Doctor button is not offered. */
  doctor: { running: boolean; last: AccountRun<DoctorReport> | null } | null;
  /** Upstream IMAP/POP3 sessions the mailbox holds now, logins waiting for one, and the cap; null without IMAP/POP3. */
  mailboxSessions?: { imap: number; pop3: number; waiting: number; limit: number } | null;
}

export interface SpoolView {
  counts: Record<MessageStatus, number>;
  /** Messages waiting for delivery (queued, deferred, held); dead letters are counted apart. */
  waiting: number;
  /** Age in seconds of the oldest waiting message, or null when none waits. */
  oldestAgeSeconds: number | null;
  /** Waiting messages then dead letters, oldest first, at most `MAX_LISTED`. */
  messages: QueueRow[];
  /** Messages not listed because of the limit. */
  notListed: number;
}

export interface AdminStatus {
  generatedAt: string;
  accounts: AccountView[];
  /** Where tokens live and whether that store answers (a Redis outage shows on the page). */
  store?: StoreStatus;
  spool: SpoolView;
  recentDeliveries: RecentDelivery[];
}

/** A page that lists thousands of messages helps nobody; the counts above it stay exact. */
const MAX_LISTED = 200;

export interface StatusSources {
  tokens: Pick<TokenServices, 'all'> & Partial<Pick<TokenServices, 'storeStatus'>>;
  spool: Pick<Spool, 'summary'>;
  recent: RecentDeliveries;
  tests: AccountTests | null;
  doctors?: AccountRuns<DoctorReport> | null;
  /** The per-mailbox session cap's counts (absent: no IMAP/POP3 listener). */
  mailboxSessions?: MailboxSessionsView;
  now?: () => number;
}

export function accountViews(sources: Pick<StatusSources, 'tokens' | 'tests' | 'doctors' | 'mailboxSessions'>): AccountView[] {
  const slots = sources.mailboxSessions;
  const counts = new Map((slots?.counts() ?? []).map((c) => [c.account, c]));
  return sources.tokens.all().map((service) => {
    const count = counts.get(service.name);
    const row = accountStatus(service);
    const state = service.state;
    return {
      ...row,
      accessTokenExpiresAt: state.state === 'acquired' ? state.expiresAt : null,
      lastSignInFailure: service.lastSignInFailure,
      test: sources.tests ? { running: sources.tests.isRunning(service.name), last: sources.tests.last(service.name) } : null,
      doctor: sources.doctors ? { running: sources.doctors.isRunning(service.name), last: sources.doctors.last(service.name) } : null,
      mailboxSessions: slots ? { imap: count?.held.imap ?? 0, pop3: count?.held.pop3 ?? 0, waiting: count?.waiting ?? 0, limit: slots.options.maxPerMailbox } : null,
    };
  });
}

export async function spoolView(spool: Pick<Spool, 'summary'>, nowMs: number): Promise<SpoolView> {
  // From the daemon's index: counts and the first page, never a read of every envelope (100,000 queued is fine).
  const summary = await spool.summary(MAX_LISTED);
  const oldest = summary.oldestReceivedAt === null ? NaN : Date.parse(summary.oldestReceivedAt);
  return {
    counts: summary.counts,
    waiting: summary.waiting,
    oldestAgeSeconds: Number.isFinite(oldest) ? Math.max(0, Math.round((nowMs - oldest) / 1000)) : null,
    messages: summary.first.map((e) => {
      const row = queueRow(e, nowMs);
      return { ...row, lastReason: row.lastReason && personalReason(row.lastReason, row.account, row.id) };
    }),
    notListed: Math.max(0, summary.total - summary.first.length),
  };
}

/** Recent outcomes, newest first, with their reasons made specific. */
export function deliveriesView(recent: Pick<RecentDeliveries, 'list'>): RecentDelivery[] {
  return recent.list().map((d) => ({ ...d, reason: d.reason && personalReason(d.reason, d.account, d.id) }));
}

/** The catalogue speaks of `<account>` and `<id>`; on the page the command can be copied as is. */
export function personalReason(reason: string, account: string, id: string): string {
  return reason.replaceAll('<account>', account).replaceAll('<id>', id);
}

export async function adminStatus(sources: StatusSources): Promise<AdminStatus> {
  const nowMs = (sources.now ?? Date.now)();
  return {
    generatedAt: new Date(nowMs).toISOString(),
    accounts: accountViews(sources),
    ...(sources.tokens.storeStatus ? { store: sources.tokens.storeStatus() } : {}),
    spool: await spoolView(sources.spool, nowMs),
    recentDeliveries: deliveriesView(sources.recent),
  };
}
