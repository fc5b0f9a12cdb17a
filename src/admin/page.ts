/**
 * The admin page, rendered on the server. The part that changes (`liveSection`) is also served alone at
 * `/live`: the page's script fetches it every few seconds and swaps it in when it differs, so the page follows
 * the relay (a sign-in completing, a message leaving the queue) without a reload and without a second renderer
 * in the browser. Every form works without the script too (post, then 303 back to the page).
 *
 * Times that tick (a device code's countdown, a message's age) carry their instant in a data attribute and
 * are updated by the script, so the fragment only changes when something actually happened.
 */
import { html, linkTarget, type SafeHtml } from './html.js';
import type { AccountRun, TestRun } from './account-test.js';
import type { DoctorReport } from '../checks/doctor/findings.js';
import type { RecentDelivery } from './recent-deliveries.js';
import { personalReason, type AccountView, type AdminStatus, type SpoolView } from './status-view.js';
import type { QueueRow } from '../cli/queue.js';

export interface PageContext {
  csrfToken: string;
  /** Show the Log out button (a password is configured). */
  loggedIn: boolean;
  flash: { ok: boolean; text: string } | null;
  nowMs: number;
}

const stateLabels: Record<AccountView['state'], string> = {
  'not-acquired': 'not acquired',
  'waiting-authorization': 'waiting for authorization',
  acquired: 'acquired',
  invalid: 'invalid',
};

export function adminPage(status: AdminStatus, ctx: PageContext): SafeHtml {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csrf-token" content="${ctx.csrfToken}">
<title>xoauth2-relay</title>
<link rel="stylesheet" href="/admin.css">
<script src="/admin.js" defer></script>
</head>
<body>
<header>
<h1>xoauth2-relay</h1>
${ctx.loggedIn ? html`<form method="post" action="/logout"><input type="hidden" name="csrf" value="${ctx.csrfToken}"><button type="submit">Log out</button></form>` : ''}
</header>
<p id="notice" role="status" aria-live="polite" class="${ctx.flash ? (ctx.flash.ok ? 'notice ok' : 'notice failed') : 'notice'}">${ctx.flash?.text ?? ''}</p>
<main id="live" data-live-url="/live">
${liveSection(status, ctx)}
</main>
</body>
</html>
`;
}

/** The part of the page that follows the relay's state (also the body of `/live`). */
export function liveSection(status: AdminStatus, ctx: Pick<PageContext, 'csrfToken' | 'nowMs'>): SafeHtml {
  return html`<section id="accounts" aria-labelledby="accounts-title">
<h2 id="accounts-title">Accounts</h2>
${status.store && !status.store.reachable ? html`<p class="reason" data-field="store-unreachable">The shared token store (${status.store.kind}, ${status.store.where}) cannot be reached: this relay serves with the tokens it holds and retries. States shown may be behind other instances until it is back.</p>` : ''}
${status.accounts.map((a) => accountCard(a, ctx))}
</section>
${spoolSection(status.spool, ctx)}
${deliveriesSection(status.recentDeliveries)}`;
}

function accountCard(a: AccountView, ctx: Pick<PageContext, 'csrfToken' | 'nowMs'>): SafeHtml {
  return html`<article class="account" id="account-${a.account}" data-account="${a.account}" data-state="${a.state}">
<h3>${a.account} <span class="state state-${a.state}" data-field="state">${stateLabels[a.state]}</span></h3>
<dl>
<dt>Mailbox</dt><dd data-field="mailbox">${a.mailbox}</dd>
<dt>Flow</dt><dd data-field="flow">${a.flow}</dd>
<dt>Access token expires</dt><dd data-field="expires">${a.accessTokenExpiresAt ? timeText(a.accessTokenExpiresAt) : '-'}</dd>
<dt>Last refresh</dt><dd data-field="last-refresh">${a.lastRefresh ? timeText(a.lastRefresh) : '-'}</dd>
${a.mailboxSessions ? mailboxSessionsRow(a.mailboxSessions) : ''}
${a.reason ? html`<dt>Reason</dt><dd data-field="reason" class="reason">${a.reason}</dd>` : ''}
${a.lastSignInFailure ? html`<dt>Last sign-in</dt><dd data-field="sign-in-failure" class="reason">${a.lastSignInFailure}</dd>` : ''}
</dl>
${a.userCode !== null || a.state === 'waiting-authorization' ? signInPrompt(a, ctx.nowMs) : ''}
<div class="actions">
${getTokenForms(a, ctx.csrfToken)}
${action(`/api/accounts/${encodeURIComponent(a.account)}/delete-token`, 'Delete token', ctx.csrfToken, { confirm: `Delete the token of ${a.account} (${a.mailbox})? Devices using it get "try again later" until someone signs in again.`, name: 'delete-token', danger: true })}
${a.test ? action(`/api/accounts/${encodeURIComponent(a.account)}/test`, a.test.running ? 'Testing…' : 'Test', ctx.csrfToken, { name: 'test', disabled: a.test.running }) : ''}
${a.doctor ? action(`/api/accounts/${encodeURIComponent(a.account)}/doctor`, a.doctor.running ? 'Checking…' : 'Doctor', ctx.csrfToken, { name: 'doctor', disabled: a.doctor.running }) : ''}
</div>
${a.test?.last ? testResults(a.test.last) : ''}
${a.doctor?.last ? doctorFindings(a.doctor.last) : ''}
</article>`;
}

/** The per-mailbox cap at a glance: a fleet near its limit shows before devices start being told to retry. */
function mailboxSessionsRow(s: NonNullable<AccountView['mailboxSessions']>): SafeHtml {
  return html`<dt>Mailbox sessions</dt><dd data-field="mailbox-sessions" data-imap="${String(s.imap)}" data-pop3="${String(s.pop3)}" data-waiting="${String(s.waiting)}">${s.imap} IMAP · ${s.pop3} POP3 of ${s.limit}${s.waiting > 0 ? html` · <span class="reason">${s.waiting} waiting</span>` : ''}</dd>`;
}

function getTokenForms(a: AccountView, csrfToken: string): SafeHtml {
  const url = `/api/accounts/${encodeURIComponent(a.account)}/get-token`;
  const label = a.flow === 'client-credentials' ? 'Get token (client credentials)' : 'Get token';
  // Replacing a working token is a choice to make on purpose: it keeps serving until the new sign-in completes.
  const confirm = a.state === 'acquired' && a.flow !== 'client-credentials'
    ? `${a.account} has a working token. Start a new sign-in for ${a.mailbox}? The current token keeps serving until the new sign-in completes; a declined or expired code changes nothing.`
    : undefined;
  return html`${action(url, label, csrfToken, { name: 'get-token', ...(confirm ? { confirm } : {}) })}
${a.flow === 'browser' ? action(url, 'Use a device code instead', csrfToken, { name: 'get-token-device-code', fields: { flow: 'device-code' }, ...(confirm ? { confirm } : {}) }) : ''}`;
}

/** While a sign-in waits: the code, large; the link; a countdown the script keeps ticking. */
function signInPrompt(a: AccountView, nowMs: number): SafeHtml {
  const link = linkTarget(a.verificationUri);
  const until = a.signInExpiresAt ?? a.expiresAt;
  const remaining = until ? countdownText(Date.parse(until) - nowMs) : '';
  const keeps = a.state === 'acquired' ? html`<p data-field="sign-in-keeps">The current token keeps serving until this sign-in completes.</p>` : '';
  if (a.userCode) {
    return html`<div class="sign-in" data-field="sign-in">
<p>Open <a href="${link ?? '#'}" target="_blank" rel="noopener noreferrer" data-field="verification-uri">${a.verificationUri ?? ''}</a>, enter this code and sign in as <strong>${a.mailbox}</strong>:</p>
<p class="user-code" data-field="user-code">${a.userCode}</p>
<p>The code expires in <span class="countdown" data-countdown="${until ?? ''}">${remaining}</span>. This page turns to <em>acquired</em> by itself.</p>
${keeps}</div>`;
  }
  return html`<div class="sign-in" data-field="sign-in">
<p><a class="button" href="${link ?? '#'}" target="_blank" rel="noopener noreferrer" data-field="sign-in-link">Open the sign-in page</a> and sign in as <strong>${a.mailbox}</strong> (in a browser on the relay's host: Microsoft sends you back to http://localhost).</p>
<p>Waiting for <span class="countdown" data-countdown="${until ?? ''}">${remaining}</span> more.</p>
${keeps}</div>`;
}

function testResults(run: TestRun): SafeHtml {
  if (!run.report) return html`<p class="reason" data-field="test-results">Test at ${timeText(run.at)} could not run: ${run.error ?? 'unknown error'}</p>`;
  return html`<table class="test-results" data-field="test-results">
<caption>Test at ${timeText(run.at)}</caption>
<thead><tr><th>Protocol</th><th>Result</th><th>Detail</th></tr></thead>
<tbody>${run.report.results.map((c) => html`<tr data-protocol="${c.protocol}" data-ok="${String(c.ok)}"><td data-label="Protocol">${c.protocol.toUpperCase()}</td><td data-label="Result" class="${c.ok ? 'ok' : 'failed'}">${c.ok ? 'pass' : 'fail'}</td><td data-label="Detail">${c.detail}${c.fix ? html`<br><span class="reason">${personalReason(c.fix, run.report!.account, '<id>')}</span>` : ''} <span class="muted">(${c.ms} ms)</span></td></tr>`)}</tbody>
</table>`;
}

/** The doctor's steps in the order a person fixes them: what was found, and for a failure its cause and the fix. */
function doctorFindings(run: AccountRun<DoctorReport>): SafeHtml {
  if (!run.report) return html`<p class="reason" data-field="doctor-results">Doctor at ${timeText(run.at)} could not run: ${run.error ?? 'unknown error'}</p>`;
  return html`<table class="test-results" data-field="doctor-results" data-ok="${String(run.report.ok)}">
<caption>Doctor at ${timeText(run.at)}: ${run.report.ok ? 'every check passes' : 'needs fixing'}</caption>
<thead><tr><th>Check</th><th>Result</th><th>Found, and what to do</th></tr></thead>
<tbody>${run.report.steps.map((s) => html`<tr data-check="${s.check}" data-status="${s.status}"><td data-label="Check">${s.check}</td><td data-label="Result" class="${s.status === 'fail' ? 'failed' : s.status === 'pass' ? 'ok' : 'muted'}">${s.status}</td><td data-label="Found">${s.detail}${s.cause ? html`<br><span class="reason" data-field="doctor-cause">${s.cause}</span>` : ''}${s.fix ? html`<br><code class="fix" data-field="doctor-fix">${s.fix}</code>` : ''}</td></tr>`)}</tbody>
</table>`;
}

function spoolSection(spool: SpoolView, ctx: Pick<PageContext, 'csrfToken' | 'nowMs'>): SafeHtml {
  const oldestSince = spool.oldestAgeSeconds === null ? null : new Date(ctx.nowMs - spool.oldestAgeSeconds * 1000).toISOString();
  return html`<section id="spool" aria-labelledby="spool-title">
<h2 id="spool-title">Spool</h2>
<p class="counts">
<span data-count="queued">queued ${spool.counts.queued}</span> ·
<span data-count="deferred">deferred ${spool.counts.deferred}</span> ·
<span data-count="held">held ${spool.counts.held}</span> ·
<span data-count="dead">dead ${spool.counts.dead}</span> ·
oldest waiting: ${oldestSince ? html`<span data-age-since="${oldestSince}">${ageText(spool.oldestAgeSeconds ?? 0)}</span>` : 'none'}
</p>
${spool.messages.length === 0
  ? html`<p class="empty">No messages waiting, no dead letters.</p>`
  : html`<table class="messages">
<thead><tr><th>Message</th><th>Status</th><th>Account</th><th>Device</th><th>From</th><th>Rcpt</th><th>Age</th><th>Tries</th><th>Reason</th><th></th></tr></thead>
<tbody>${spool.messages.map((m) => messageRow(m, ctx))}</tbody>
</table>`}
${spool.notListed > 0 ? html`<p>${spool.notListed} more not listed: use <code>xoauth2-relay queue list</code>.</p>` : ''}
</section>`;
}

function messageRow(m: QueueRow, ctx: Pick<PageContext, 'csrfToken' | 'nowMs'>): SafeHtml {
  const receivedAt = new Date(ctx.nowMs - m.ageSeconds * 1000).toISOString();
  const base = `/api/messages/${encodeURIComponent(m.id)}`;
  return html`<tr id="message-${m.id}" data-message="${m.id}" data-status="${m.status}">
<td data-label="Message"><code>${m.id}</code></td>
<td data-label="Status" class="status status-${m.status}">${m.status}</td>
<td data-label="Account">${m.account}</td>
<td data-label="Device">${m.device}</td>
<td data-label="From">${m.from === '' ? '<>' : m.from}</td>
<td data-label="Rcpt">${m.rcpt}</td>
<td data-label="Age"><span data-age-since="${receivedAt}">${ageText(m.ageSeconds)}</span></td>
<td data-label="Tries">${m.attempts}</td>
<td data-label="Reason" class="reason">${m.lastReason ?? '-'}${replyWorthShowing(m.lastReply, m.lastReason) ? html`<br><code class="reply">${m.lastReply}</code>` : ''}</td>
<td class="row-actions-cell"><div class="row-actions">
${action(`${base}/retry`, 'Retry', ctx.csrfToken, { name: 'retry' })}
${action(`${base}/drop`, 'Drop', ctx.csrfToken, { name: 'drop', danger: true, confirm: `Drop message ${m.id} for good? The device will not be told.` })}
</div></td>
</tr>`;
}

function deliveriesSection(recent: RecentDelivery[]): SafeHtml {
  return html`<section id="deliveries" aria-labelledby="deliveries-title">
<h2 id="deliveries-title">Recent deliveries and failures</h2>
${recent.length === 0
  ? html`<p class="empty">Nothing delivered or attempted since the relay started.</p>`
  : html`<table class="deliveries">
<thead><tr><th>When</th><th>Outcome</th><th>Message</th><th>Account</th><th>Tries</th><th>Latency</th><th>Reply and reason</th></tr></thead>
<tbody>${recent.map((d) => html`<tr data-outcome="${d.outcome}" data-message="${d.id}">
<td data-label="When">${timeText(d.at)}</td><td data-label="Outcome" class="status status-${d.outcome}">${d.outcome}</td><td data-label="Message"><code>${d.id}</code></td><td data-label="Account">${d.account}</td><td data-label="Tries">${d.attempts}</td><td data-label="Latency">${(d.latencyMs / 1000).toFixed(1)} s</td>
<td data-label="Reply and reason">${d.reason ? html`<span class="reason">${d.reason}</span>` : ''}${replyWorthShowing(d.reply, d.reason) ? html`${d.reason ? html`<br>` : ''}<code class="reply">${d.reply}</code>` : ''}</td>
</tr>`)}</tbody>
</table>`}
</section>`;
}

/** Exchange's own words are worth showing under our reason; a local error that repeats the reason is not. */
function replyWorthShowing(reply: string | null, reason: string | null): reply is string {
  if (!reply) return false;
  if (!reason) return true;
  const general = reason.split(':')[0]!;
  return !reply.startsWith(general);
}

interface ActionOptions {
  name: string;
  confirm?: string;
  danger?: boolean;
  disabled?: boolean;
  fields?: Record<string, string>;
}

/** A button that posts to `url` with the CSRF token; `confirm` asks first (the script shows the question). */
function action(url: string, label: string, csrfToken: string, opts: ActionOptions): SafeHtml {
  return html`<form method="post" action="${url}" class="action" data-action="${opts.name}"${opts.confirm ? html` data-confirm="${opts.confirm}"` : ''}>
<input type="hidden" name="csrf" value="${csrfToken}">${Object.entries(opts.fields ?? {}).map(([k, v]) => html`<input type="hidden" name="${k}" value="${v}">`)}
<button type="submit"${opts.danger ? html` class="danger"` : ''}${opts.disabled ? html` disabled` : ''}>${label}</button>
</form>`;
}

/** `2025-03-01 14:05:09 UTC`: the same on every admin's screen, and what the log says. */
export function timeText(iso: string): string {
  const ms = Date.parse(iso);
  return Number.isFinite(ms) ? `${new Date(ms).toISOString().slice(0, 19).replace('T', ' ')} UTC` : iso;
}

/** Same wording as the script's ticker (assets.ts), so the first paint and the updates agree. */
export function ageText(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86_400)}d ${Math.floor((s % 86_400) / 3600)}h`;
}

export function countdownText(ms: number): string {
  if (ms <= 0) return 'expired';
  const s = Math.ceil(ms / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}
