/**
 * The admin page with admin.passwordHash set, in real headless Chromium: the login form, a wrong password, the
 * right one, a state change (Get token, through the page's script) and Log out (a plain form post). Browsers
 * send `Origin: null` on form posts under `Referrer-Policy: no-referrer`; the page must work as a browser really
 * behaves, so these steps go through clicks only. Screenshots: test-artifacts/admin-login-*.png.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Page, Request } from 'playwright-core';
import { hashPassword } from '../../src/auth/password-hash.js';
import { startAdminWorld, type AdminWorld } from './support/admin-world.js';
import { browserTestsSkip, launchBrowser, requireBrowser, screenshot, type Browser } from './support/browser.js';

const skip = browserTestsSkip();
const password = 'correct horse battery staple';
const account = '[data-account="scanner"]';
let world: AdminWorld;
let browser: Browser;
let page: Page;
/** Origin headers of the form posts the browser made, by path. */
const origins: Array<[string, string | null]> = [];

before(async () => {
  if (skip) return;
  requireBrowser();
  world = await startAdminWorld({ adminPasswordHash: await hashPassword(password) });
  browser = await launchBrowser();
  page = browser.page;
  page.setDefaultTimeout(20_000);
  page.on('request', (req: Request) => {
    if (req.method() === 'POST') origins.push([new URL(req.url()).pathname, req.headers().origin ?? null]);
  });
});

after(async () => {
  await browser?.close();
  await world?.close();
});

test('the page sends a browser without a session to the login form; a wrong password is refused on the form', { skip }, async () => {
  const response = await page.goto(world.admin.url);
  assert.equal(new URL(page.url()).pathname, '/login');
  assert.equal(response?.headers()['referrer-policy'], 'same-origin');
  await page.fill('#password', 'not the password');
  await page.click('button[type="submit"]');
  await page.locator('.notice.failed').waitFor();
  assert.match((await page.textContent('.notice.failed')) ?? '', /wrong admin password/);
  assert.equal(new URL(page.url()).pathname, '/login');
  await screenshot(page, 'admin-login-01-wrong-password');
});

test('the right password opens the page; Get token changes state through the page; Log out ends the session', { skip }, async () => {
  await page.fill('#password', password);
  await page.click('button[type="submit"]');
  await page.locator(`${account} [data-field="state"]`).waitFor();
  assert.equal(new URL(page.url()).pathname, '/');
  assert.equal((await page.textContent(`${account} [data-field="state"]`))?.trim(), 'not acquired');
  assert.equal(await page.locator('header form[action="/logout"] button').count(), 1, 'a Log out button');
  await screenshot(page, 'admin-login-02-logged-in');

  await page.click(`${account} form[data-action="get-token"] button`);
  await page.locator(`${account} [data-field="user-code"]`).waitFor();
  assert.equal(world.daemon.tokens.get('scanner').state.state, 'waiting-authorization', 'the relay changed state');
  assert.match((await page.textContent('#notice')) ?? '', /Enter code/);
  await screenshot(page, 'admin-login-03-state-changed');

  await page.click('header form[action="/logout"] button');
  await page.locator('#password').waitFor();
  assert.equal(new URL(page.url()).pathname, '/login');
  const cookies = await browser.context.cookies(world.admin.url);
  assert.equal(cookies.find((c) => c.name === 'xoauth2_relay_admin'), undefined, 'the session cookie is gone');
  const status = await page.evaluate(async () => (await fetch('/api/status')).status);
  assert.equal(status, 403, 'the old session no longer reads the API');
  await screenshot(page, 'admin-login-04-logged-out');

  const origin = new URL(world.admin.url).origin;
  for (const path of ['/login', '/logout']) {
    const sent = origins.filter(([p]) => p === path).map(([, o]) => o);
    assert.ok(sent.length > 0, `the browser posted ${path}`);
    assert.ok(sent.every((o) => o === origin), `${path} carried Origin ${origin} (got ${sent.join(', ')})`);
  }
});
