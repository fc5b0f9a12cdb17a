/**
 * The admin page over HTTPS (admin.tls), in real headless Chromium: the login form, the right password, the page,
 * and a session cookie marked Secure (and HttpOnly); plain HTTP on that port gets no page. check-config refuses
 * a network-facing admin page without TLS unless admin.allowPlainHttp says a TLS proxy takes care of it.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import type { Page } from 'playwright-core';
import { adminExposure } from '../../src/admin/admin-tls.js';
import { hashPassword } from '../../src/auth/password-hash.js';
import { checkConfigText } from '../../src/config/load.js';
import { configSchema } from '../../src/config/schema.js';
import { startAdminWorld, type AdminWorld } from './support/admin-world.js';
import { browserTestsSkip, launchBrowser, requireBrowser, screenshot, type Browser } from './support/browser.js';

const skip = browserTestsSkip();
const password = 'correct horse battery staple';
let world: AdminWorld;
let browser: Browser;
let page: Page;

before(async () => {
  if (skip) return;
  requireBrowser();
  world = await startAdminWorld({ adminPasswordHash: await hashPassword(password), adminTls: true });
  browser = await launchBrowser({ ignoreHttpsErrors: true });
  page = browser.page;
  page.setDefaultTimeout(20_000);
});

after(async () => {
  await browser?.close();
  await world?.close();
});

test('admin login over HTTPS in Chromium: the form, the page, a Secure HttpOnly session cookie', { skip }, async () => {
  assert.match(world.admin.url, /^https:\/\/127\.0\.0\.1:\d+\/$/);
  await page.goto(world.admin.url);
  assert.equal(new URL(page.url()).pathname, '/login');
  await page.fill('#password', password);
  await page.click('button[type="submit"]');
  await page.locator('[data-account="scanner"] [data-field="state"]').waitFor();
  assert.equal(new URL(page.url()).pathname, '/');
  const cookies = await browser.context.cookies(world.admin.url);
  const session = cookies.find((c) => c.name === 'xoauth2_relay_admin');
  assert.ok(session, 'a session cookie');
  assert.equal(session.secure, true, 'Secure: never sent over plain HTTP');
  assert.equal(session.httpOnly, true);
  const status = await page.evaluate(async () => (await fetch('/api/status')).status);
  assert.equal(status, 200, 'the session reads the API');
  await screenshot(page, 'admin-https-01-logged-in');
});

test('plain HTTP to the HTTPS admin port gets no page', { skip }, async () => {
  const port = new URL(world.admin.url).port;
  const outcome = await new Promise<string>((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/healthz', timeout: 5000 }, (res) => resolve(`HTTP ${res.statusCode}`));
    req.on('error', (err) => resolve(`error ${(err as NodeJS.ErrnoException).code ?? err.message}`));
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end();
  });
  // Node's TLS server answers a plain request with "400 Bad Request" and closes, or resets: never the page.
  assert.ok(/^error |^HTTP 400$/.test(outcome), outcome);
});

test('check-config refuses a network-facing admin page over plain HTTP; admin.tls or an explicit allowPlainHttp satisfy it', () => {
  const base = `
accounts: { scanner: { mailbox: scanner@contoso.com, tenantId: contoso.com, clientId: 66666666-7777-8888-9999-000000000000 } }
tls: { certFile: /etc/xoauth2-relay/cert.pem, keyFile: /etc/xoauth2-relay/key.pem }
`;
  const hash = 'scrypt$32768$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=';
  const problemsOf = (admin: string) => {
    const checked = checkConfigText(`${base}admin: ${admin}\n`, '/etc/xoauth2-relay/config.yaml', {});
    return checked.ok ? [] : checked.problems.filter((p) => p.path.startsWith('admin'));
  };
  const plain = problemsOf(`{ listen: "192.0.2.10:8025", passwordHash: "${hash}" }`);
  assert.equal(plain.length, 1, JSON.stringify(plain));
  assert.match(plain[0]!.message, /plain HTTP/);
  assert.match(plain[0]!.hint ?? '', /admin\.tls\.enabled: true/);
  assert.deepEqual(problemsOf(`{ listen: "192.0.2.10:8025", passwordHash: "${hash}", tls: { enabled: true } }`), [], 'HTTPS with the device-facing certificate');
  assert.deepEqual(problemsOf(`{ listen: "192.0.2.10:8025", passwordHash: "${hash}", allowPlainHttp: true }`), [], 'the explicit opt-out');
  assert.deepEqual(problemsOf('{ listen: "127.0.0.1:8025" }'), [], 'loopback stays plain HTTP');

  const accounts = { scanner: { mailbox: 'scanner@contoso.com', tenantId: 'contoso.com', clientId: '66666666-7777-8888-9999-000000000000' } };
  const exposure = (admin: Record<string, unknown>) => adminExposure(configSchema.parse({ accounts, admin }));
  assert.equal(exposure({ listen: '0.0.0.0:8025', allowPlainHttp: true }), 'plain-http-allowed', 'started with a warning');
  assert.equal(exposure({ listen: '0.0.0.0:8025' }), 'plain-http-refused', 'startAdminServer refuses it too (ADMIN_PLAIN_HTTP)');
});
