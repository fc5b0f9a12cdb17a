/**
 * Who may change what through the admin listener: state changes need a session and its CSRF token (403
 * otherwise, and nothing changes), cross-site requests and foreign Host names are refused, a password turns on
 * the login form with back-off, non-loopback listening without a password is refused at start, and everything
 * the page prints is escaped. Plain HTTP with fetch against the real server and the real daemon.
 */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { Readable } from 'node:stream';
import { startAdminServer } from '../../src/admin/index.js';
import { hashPassword } from '../../src/auth/password-hash.js';
import { isRelayError } from '../../src/errors.js';
import { SANDBOX_MAILBOX } from '../../src/sandbox/sandbox-config.js';
import { eventually } from '../support/sandbox-env.js';
import { startAdminWorld, type AdminWorld } from './support/admin-world.js';

interface Answer {
  status: number;
  body: string;
  json: () => any;
  cookies: string[];
  location: string | null;
}

/** An HTTP request with full control of the headers (fetch would not let us set Host). */
function call(base: string, method: string, path: string, opts: { headers?: Record<string, string>; body?: string } = {}): Promise<Answer> {
  const url = new URL(path, base);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path: url.pathname, method, headers: opts.body !== undefined ? { 'content-length': String(Buffer.byteLength(opts.body)), ...opts.headers } : opts.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const setCookie = res.headers['set-cookie'] ?? [];
        resolve({ status: res.statusCode ?? 0, body, json: () => JSON.parse(body), cookies: setCookie, location: res.headers.location ?? null });
      });
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

function cookiePair(setCookie: string[]): string {
  const first = setCookie[0];
  assert.ok(first, 'a session cookie was set');
  return first.split(';')[0]!;
}

describe('loopback, no password', () => {
  let world: AdminWorld;
  let base: string;
  let cookie: string;
  let csrf: string;

  before(async () => {
    world = await startAdminWorld();
    base = world.admin.url;
    const session = await call(base, 'GET', '/api/session');
    assert.equal(session.status, 200);
    cookie = cookiePair(session.cookies);
    csrf = session.json().csrfToken;
  });
  after(() => world?.close());

  const json = (extra: Record<string, string> = {}) => ({ 'content-type': 'application/json', ...extra });

  test('the first visit gets a session cookie: HttpOnly, SameSite=Strict, and a CSRF token', async () => {
    const visit = await call(base, 'GET', '/', { headers: { accept: 'text/html' } });
    assert.equal(visit.status, 200);
    const set = visit.cookies[0] ?? '';
    assert.match(set, /^xoauth2_relay_admin=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=\d+$/);
    assert.match(visit.body, /<meta name="csrf-token" content="[A-Za-z0-9_-]{43}">/);
    assert.match(visit.body, /<input type="hidden" name="csrf" value="[A-Za-z0-9_-]{43}">/);
  });

  test('a device code started through the API; the approval shows in /api/accounts/scanner', async () => {
    const started = await call(base, 'POST', '/api/accounts/scanner/get-token', { headers: json({ cookie, 'x-csrf-token': csrf }), body: '{}' });
    assert.equal(started.status, 202);
    const result = started.json().result;
    assert.equal(result.flow, 'device-code');
    world.env.sim.approve(result.userCode, SANDBOX_MAILBOX);
    await eventually(async () => (await call(base, 'GET', '/api/accounts/scanner', { headers: { cookie } })).json().state === 'acquired', 10_000, 'acquired');
    const view = (await call(base, 'GET', '/api/accounts/scanner', { headers: { cookie } })).json();
    assert.equal(view.mailbox, SANDBOX_MAILBOX);
    assert.match(view.accessTokenExpiresAt, /^\d{4}-/);
    assert.match(view.lastRefresh, /^\d{4}-/);
    assert.equal(JSON.stringify(view).includes('eyJ'), false, 'no token in the API');
  });

  test('Delete token is refused (403) without a session, without the CSRF token, with a wrong one, or from another site; nothing changes', async () => {
    const path = '/api/accounts/scanner/delete-token';
    const other = await call(base, 'GET', '/api/session'); // a second session: its token must not work with the first cookie
    const refusals: Array<[string, Record<string, string>, string]> = [
      ['no session, right token', json({ 'x-csrf-token': csrf }), 'ADMIN_SESSION_REQUIRED'],
      ['unknown session', json({ cookie: 'xoauth2_relay_admin=forged', 'x-csrf-token': csrf }), 'ADMIN_SESSION_REQUIRED'],
      ['session, no token', json({ cookie }), 'ADMIN_CSRF_REJECTED'],
      ['session, wrong token', json({ cookie, 'x-csrf-token': 'x'.repeat(43) }), 'ADMIN_CSRF_REJECTED'],
      ["session, another session's token", json({ cookie, 'x-csrf-token': other.json().csrfToken }), 'ADMIN_CSRF_REJECTED'],
      ['cross-site Origin', json({ cookie, 'x-csrf-token': csrf, origin: 'https://evil.example' }), 'ADMIN_CSRF_REJECTED'],
      ['Sec-Fetch-Site: cross-site', json({ cookie, 'x-csrf-token': csrf, 'sec-fetch-site': 'cross-site' }), 'ADMIN_CSRF_REJECTED'],
    ];
    for (const [why, headers, code] of refusals) {
      const answer = await call(base, 'POST', path, { headers, body: '{}' });
      assert.equal(answer.status, 403, why);
      assert.equal(answer.json().error.code, code, why);
    }
    const form = await call(base, 'POST', path, { headers: { cookie, 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html' }, body: 'csrf=' });
    assert.equal(form.status, 403, 'a form post with an empty csrf field');
    assert.equal(world.daemon.tokens.get('scanner').state.state, 'acquired', 'nothing was deleted');

    const allowed = await call(base, 'POST', path, { headers: { cookie, 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html', origin: base.replace(/\/$/, '') }, body: `csrf=${encodeURIComponent(csrf)}` });
    assert.equal(allowed.status, 303, 'a form post with the token: done, back to the page');
    assert.equal(allowed.location, '/');
    assert.equal(world.daemon.tokens.get('scanner').state.state, 'not-acquired');
  });

  test('retry and drop of messages need the token too; unknown ids and accounts are 404', async () => {
    assert.equal((await call(base, 'POST', '/api/messages/0000000aa-00000000aa/retry', { headers: json({ cookie }), body: '{}' })).status, 403);
    const missing = await call(base, 'POST', '/api/messages/0000000aa-00000000aa/retry', { headers: json({ cookie, 'x-csrf-token': csrf }), body: '{}' });
    assert.equal(missing.status, 404);
    assert.equal(missing.json().error.code, 'NO_SUCH_MESSAGE');
    const account = await call(base, 'POST', '/api/accounts/nobody/get-token', { headers: json({ cookie, 'x-csrf-token': csrf }), body: '{}' });
    assert.equal(account.status, 404);
    assert.equal(account.json().error.code, 'UNKNOWN_ACCOUNT');
  });

  test('a Host name that is not loopback is refused (DNS rebinding), even for reads', async () => {
    for (const path of ['/', '/api/session', '/api/status']) {
      const answer = await call(base, 'GET', path, { headers: { host: 'rebound.evil.example:8025' } });
      assert.equal(answer.status, 403, path);
      assert.equal(answer.cookies.length, 0, 'no session handed out');
    }
    assert.equal((await call(base, 'GET', '/api/status', { headers: { host: `localhost:${world.admin.port}`, cookie } })).status, 200);
  });

  test('everything the page prints is escaped (a hostile envelope in the spool)', async () => {
    await world.daemon.tokens.get('scanner').logout();
    const hostile = '"><script>alert(1)</script><img src=x onerror=alert(2)>@evil.example';
    await world.daemon.spool.commit(
      { device: 'desk-scanner', account: 'scanner', mailFrom: hostile, rcptTo: [SANDBOX_MAILBOX], remoteAddress: '127.0.0.1', smtpUtf8: false },
      Readable.from([Buffer.from('Subject: x\r\n\r\nx\r\n')]),
    );
    const page = await call(base, 'GET', '/', { headers: { cookie, accept: 'text/html' } });
    assert.equal(page.status, 200);
    assert.equal(page.body.includes('<script>alert'), false);
    assert.equal(page.body.includes('<img src=x'), false);
    assert.ok(page.body.includes('&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;@evil.example'));
    assert.match(page.body, /<script src="\/admin\.js" defer><\/script>/, 'the only script is our own file');
    const headers = await fetch(base, { headers: { cookie } });
    assert.match(headers.headers.get('content-security-policy') ?? '', /script-src 'self'/);
    assert.equal(headers.headers.get('x-content-type-options'), 'nosniff');
    for (const e of await world.daemon.spool.list()) await world.daemon.spool.drop(e.id);
  });

  test('the JSON API: status with accounts, spool and recent deliveries', async () => {
    const status = (await call(base, 'GET', '/api/status', { headers: { cookie } })).json();
    assert.deepEqual(Object.keys(status).sort(), ['accounts', 'generatedAt', 'recentDeliveries', 'spool', 'store']);
    assert.deepEqual(Object.keys(status.accounts[0]).sort(), ['accessTokenExpiresAt', 'account', 'doctor', 'expiresAt', 'flow', 'lastRefresh', 'lastSignInFailure', 'mailbox', 'mailboxSessions', 'reason', 'signInExpiresAt', 'state', 'test', 'userCode', 'verificationUri']);
    assert.deepEqual(Object.keys(status.spool).sort(), ['counts', 'messages', 'notListed', 'oldestAgeSeconds', 'waiting']);
    assert.equal((await call(base, 'GET', '/api/nothing', { headers: { cookie } })).status, 404);
    assert.equal((await call(base, 'DELETE', '/api/status', { headers: { cookie } })).status, 405);
  });
});

describe('with an admin password', () => {
  let world: AdminWorld;
  let base: string;
  const password = 'correct horse battery staple';

  before(async () => {
    world = await startAdminWorld({ adminPasswordHash: await hashPassword(password) });
    base = world.admin.url;
  });
  after(() => world?.close());

  test('no session: the page sends the browser to the login form, the API says 403, nothing is created', async () => {
    const page = await call(base, 'GET', '/', { headers: { accept: 'text/html' } });
    assert.equal(page.status, 303);
    assert.equal(page.location, '/login');
    assert.equal(page.cookies.length, 0);
    const form = await call(base, 'GET', '/login', { headers: { accept: 'text/html' } });
    assert.match(form.body, /<input id="password" name="password" type="password"/);
    assert.equal((await call(base, 'GET', '/api/status')).status, 403);
  });

  test('log in with the password, act with the CSRF token, log out', async () => {
    const wrong = await call(base, 'POST', '/api/login', { headers: { 'content-type': 'application/json' }, body: JSON.stringify({ password: 'guess' }) });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.cookies.length, 0);
    const login = await call(base, 'POST', '/login', { headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html' }, body: `password=${encodeURIComponent(password)}` });
    assert.equal(login.status, 303);
    const cookie = cookiePair(login.cookies);
    const session = (await call(base, 'GET', '/api/session', { headers: { cookie } })).json();
    assert.equal(session.passwordRequired, true);
    const page = await call(base, 'GET', '/', { headers: { cookie, accept: 'text/html' } });
    assert.match(page.body, /Log out/);
    const test = await call(base, 'POST', '/api/accounts/scanner/test', { headers: { cookie, 'content-type': 'application/json', 'x-csrf-token': session.csrfToken }, body: '{}' });
    assert.equal(test.status, 200);
    // Nobody signed in here: the checks run and fail for want of a token, with the fix.
    assert.equal(test.json().ok, false);
    assert.deepEqual(test.json().report.results.map((r: { protocol: string; ok: boolean }) => [r.protocol, r.ok]), [['smtp', false], ['imap', false], ['pop3', false]]);
    assert.match(test.json().report.results[0].fix, /no token for this account yet/);
    assert.equal((await call(base, 'POST', '/api/logout', { headers: { cookie, 'content-type': 'application/json', 'x-csrf-token': session.csrfToken }, body: '{}' })).status, 200);
    assert.equal((await call(base, 'GET', '/api/status', { headers: { cookie } })).status, 403, 'the session ended');
  });

  test('Origin: null (a strict referrer policy): login needs the form\'s token, a state change the session\'s CSRF token', async () => {
    const form = { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html', origin: 'null' };
    const bare = await call(base, 'POST', '/login', { headers: form, body: `password=${encodeURIComponent(password)}` });
    assert.equal(bare.status, 403, 'no login token: refused, and the form comes back');
    assert.match(bare.body, /<input id="password"/);
    assert.ok(!bare.cookies.some((c) => c.startsWith('xoauth2_relay_admin=')), 'no session');

    const page = await call(base, 'GET', '/login', { headers: { accept: 'text/html' } });
    assert.equal(page.status, 200);
    assert.equal(page.cookies.length, 1);
    assert.match(page.cookies[0]!, /^xoauth2_relay_login=[\w-]+; Path=\/login; HttpOnly; SameSite=Strict/);
    const loginCookie = cookiePair(page.cookies);
    const token = /name="loginToken" value="([\w-]+)"/.exec(page.body)![1]!;
    assert.equal(loginCookie, `xoauth2_relay_login=${token}`);
    const forged = await call(base, 'POST', '/login', { headers: { ...form, cookie: loginCookie }, body: `loginToken=${'x'.repeat(token.length)}&password=${encodeURIComponent(password)}` });
    assert.equal(forged.status, 403, 'a token that is not the cookie\'s');

    const login = await call(base, 'POST', '/login', { headers: { ...form, cookie: loginCookie }, body: `loginToken=${token}&password=${encodeURIComponent(password)}` });
    assert.equal(login.status, 303);
    assert.equal(login.location, '/');
    const cookie = cookiePair(login.cookies);
    const { csrfToken } = (await call(base, 'GET', '/api/session', { headers: { cookie } })).json();
    const noToken = await call(base, 'POST', '/logout', { headers: { ...form, cookie }, body: '' });
    assert.equal(noToken.status, 403, 'Origin: null without the CSRF token');
    const logout = await call(base, 'POST', '/logout', { headers: { ...form, cookie }, body: `csrf=${csrfToken}` });
    assert.equal(logout.status, 303);
    assert.equal(logout.location, '/login');
    assert.equal((await call(base, 'GET', '/api/status', { headers: { cookie } })).status, 403, 'the session ended');
    const elsewhere = await call(base, 'POST', '/login', { headers: { ...form, origin: 'http://evil.example', cookie: loginCookie }, body: `loginToken=${token}&password=x` });
    assert.equal(elsewhere.status, 403, 'another site is refused even with the token');
  });

  test('wrong passwords earn a growing wait (429), even for the right password meanwhile', async () => {
    const attempt = (p: string) => call(base, 'POST', '/api/login', { headers: { 'content-type': 'application/json' }, body: JSON.stringify({ password: p }) });
    let status = 0;
    for (let i = 0; i < 6 && status !== 429; i++) status = (await attempt('guess')).status;
    assert.equal(status, 429);
    const right = await attempt(password);
    assert.equal(right.status, 429);
    assert.match(right.json().error.message, /wait/);
  });
});

test('refuses to start on a non-loopback address without a password, and on a malformed password hash', async () => {
  const world = await startAdminWorld({ admin: { testAccount: null } });
  try {
    const common = { tokens: world.daemon.tokens, spool: world.daemon.spool, delivery: world.daemon.delivery, logger: world.env.logger, metrics: world.metrics };
    for (const listen of ['0.0.0.0:0', '[::]:0', '192.0.2.10:8025', 'relay.example.com:8025']) {
      const config = { ...world.env.config, admin: { ...world.env.config.admin, listen, passwordHash: null } };
      await assert.rejects(startAdminServer({ ...common, config }), (err) => isRelayError(err, 'ADMIN_PASSWORD_REQUIRED') && /admin\.passwordHash/.test(err.message) && err.message.includes(listen), listen);
    }
    const config = { ...world.env.config, admin: { ...world.env.config.admin, listen: "127.0.0.1:0", passwordHash: "scrypt$1$2$3" } };
    await assert.rejects(startAdminServer({ ...common, config }), (err) => isRelayError(err, 'PASSWORD_HASH_INVALID'));
    const taken = { ...world.env.config, admin: { ...world.env.config.admin, listen: `127.0.0.1:${world.admin.port}`, passwordHash: null } };
    await assert.rejects(startAdminServer({ ...common, config: taken }), (err) => isRelayError(err, 'ADMIN_LISTEN_FAILED') && /EADDRINUSE/.test(err.message));
    // Without a tester the Test button is not offered.
    const page = await fetch(world.admin.url, { headers: { accept: 'text/html' } });
    assert.equal((await page.text()).includes('data-action="test"'), false);
  } finally {
    await world.close();
  }
});
