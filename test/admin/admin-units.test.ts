/**
 * The pure parts of the operator surface: escaping, links, sessions and CSRF, the readiness probe, which token
 * states make a notice, and the strictness of the Prometheus reader the metrics tests rely on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { probeWritable } from '../../src/admin/health.js';
import { escapeHtml, html, linkTarget } from '../../src/admin/html.js';
import { ageText, countdownText } from '../../src/admin/page.js';
import { AdminSessions, cookieValue, csrfTokenMatches, sessionCookie } from '../../src/admin/sessions.js';
import { personalReason } from '../../src/admin/status-view.js';
import { fixFor, noticeFor } from '../../src/notify/index.js';
import { parsePrometheusText } from './support/prometheus-text.js';

test('html escapes every interpolated value, nested templates stay markup', () => {
  assert.equal(escapeHtml(`<a href="x" onclick='y'>&\``), '&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;&#96;');
  const inner = html`<b>${'<i>'}</b>`;
  assert.equal(html`<p title="${'"><script>'}">${inner}${['<', html`<br>`]}${null}${undefined}${false}${0}</p>`.text, '<p title="&quot;&gt;&lt;script&gt;"><b>&lt;i&gt;</b>&lt;<br>0</p>');
});

test('links on the page are http(s) only', () => {
  assert.equal(linkTarget('https://microsoft.com/devicelogin'), 'https://microsoft.com/devicelogin');
  assert.equal(linkTarget('http://localhost:53123/?a=1'), 'http://localhost:53123/?a=1');
  for (const bad of ['javascript:alert(1)', 'JaVaScRiPt:alert(1)', 'data:text/html,x', 'vbscript:x', '//evil.example', 'not a url', '', null, undefined]) {
    assert.equal(linkTarget(bad), null, String(bad));
  }
});

test('times on the page: countdown and age wording (the script uses the same)', () => {
  assert.equal(countdownText(899_001), '15:00');
  assert.equal(countdownText(61_000), '1:01');
  assert.equal(countdownText(0), 'expired');
  assert.deepEqual([5, 75, 3725, 90_000].map(ageText), ['5s', '1m 15s', '1h 2m', '1d 1h']);
});

test('sessions: idle expiry slides with use, the oldest go first, tokens compare exactly', () => {
  let now = 1_000_000;
  const sessions = new AdminSessions({ idleMs: 60_000, maxSessions: 2, now: () => now });
  const a = sessions.create();
  assert.match(a.id, /^[A-Za-z0-9_-]{43}$/);
  assert.notEqual(a.id, a.csrfToken);
  now += 59_000;
  assert.equal(sessions.touch(a.id), a, 'used within the idle time');
  now += 59_000;
  assert.equal(sessions.touch(a.id), a, 'the idle time restarted at the last use');
  now += 60_000;
  assert.equal(sessions.touch(a.id), null, 'idle too long');
  const b = sessions.create();
  const c = sessions.create();
  sessions.touch(b.id);
  const d = sessions.create();
  assert.equal(sessions.touch(c.id), null, 'least recently used dropped beyond maxSessions');
  assert.ok(sessions.touch(b.id) && sessions.touch(d.id));
  assert.equal(csrfTokenMatches(b, b.csrfToken), true);
  assert.equal(csrfTokenMatches(b, d.csrfToken), false);
  assert.equal(csrfTokenMatches(b, `${b.csrfToken}x`), false);
  assert.equal(csrfTokenMatches(b, undefined), false);
  assert.equal(sessions.touch(undefined), null);
});

test('cookies: flags, clearing, and reading one among many', () => {
  const sessions = new AdminSessions({ idleMs: 60_000 });
  const s = sessions.create();
  assert.equal(sessionCookie(s, 60), `xoauth2_relay_admin=${s.id}; Path=/; HttpOnly; SameSite=Strict; Max-Age=60`);
  assert.equal(sessionCookie(null, 60), 'xoauth2_relay_admin=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0');
  assert.equal(cookieValue(`a=1; xoauth2_relay_admin=${s.id}; b=2`, 'xoauth2_relay_admin'), s.id);
  assert.equal(cookieValue('xoauth2_relay_admin_x=1', 'xoauth2_relay_admin'), undefined);
  assert.equal(cookieValue(undefined, 'x'), undefined);
});

test('the readiness probe writes for real: a directory is fine, a file or a missing directory is not', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'xoauth2-relay-probe-'));
  try {
    assert.equal(await probeWritable(dir), null);
    await writeFile(join(dir, 'file'), 'x');
    assert.match((await probeWritable(join(dir, 'file'))) ?? '', /not writable \(ENOTDIR\)/);
    assert.match((await probeWritable(join(dir, 'missing'))) ?? '', /not writable \(ENOENT\)/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('reasons name the account and message, so the command can be copied', () => {
  assert.equal(personalReason('run `xoauth2-relay login <account>`, then `queue retry <id>`', 'scanner', '0abc'), 'run `xoauth2-relay login scanner`, then `queue retry 0abc`');
});

test('notices: only invalid accounts and waiting device codes are worth one', () => {
  const account = { name: 'scanner', mailbox: 'scanner@contoso.com', flow: 'device-code' as const };
  assert.equal(noticeFor(account, { state: 'acquired', expiresAt: null, lastRefresh: '', scopes: [] }, 'r', null), null);
  assert.equal(noticeFor(account, { state: 'not-acquired' }, 'r', null), null);
  assert.equal(noticeFor({ ...account, flow: 'browser' }, { state: 'waiting-authorization', userCode: null, verificationUri: 'http://localhost:1/x', expiresAt: 'soon', message: null }, 'r', null), null, 'a browser sign-in is watched by whoever started it');
  const invalid = noticeFor(account, { state: 'invalid', reason: 'refresh token revoked', since: '2026-01-01T00:00:00Z' }, 'r', 'http://127.0.0.1:8025/');
  assert.equal(invalid?.body.event, 'account-invalid');
  assert.equal(invalid?.body.adminUrl, 'http://127.0.0.1:8025/');
  assert.match(fixFor({ ...account, flow: 'client-credentials' }, { state: 'invalid', reason: 'x', since: '' }, null), /fix the app's credential/);
});

test('the Prometheus reader refuses malformed exposition (so the metrics test means something)', () => {
  const ok = '# HELP a_total A.\n# TYPE a_total counter\na_total{x="1"} 2\n';
  assert.equal(parsePrometheusText(ok).get('a_total')?.samples[0]?.value, 2);
  const bad: Array<[string, RegExp]> = [
    ['a_total 1\n', /no # TYPE/],
    ['# TYPE a counter\na 1\n', /does not end in _total/],
    ['# TYPE a_total counter\na_total{x="1} 1\n', /unterminated|not a sample/],
    ['# TYPE a_total counter\na_total{x="\\q"} 1\n', /bad escape/],
    ['# TYPE a_total counter\na_total 1\na_total 2\n', /duplicate series/],
    ['# TYPE a_total counter\na_total one\n', /not a float/],
    ['# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n', /not cumulative/],
    ['# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n', /no \+Inf bucket/],
    ['# TYPE g gauge\ng 1', /end with a newline/],
  ];
  for (const [text, error] of bad) assert.throws(() => parsePrometheusText(text), error, JSON.stringify(text));
});
