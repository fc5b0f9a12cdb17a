/**
 * The admin page in real headless Chromium, against the real daemon and the sandbox identity simulator:
 * a held message shows with its reason, Get token shows the device code and a ticking countdown, approving the
 * code turns the account *acquired* with no reload, the held message is released by itself and (upstream down)
 * deferred, Retry sends it once the upstream is up, Test shows pass/fail per protocol, Delete token asks first
 * and turns the account *not acquired*, Drop asks first and removes a message. Screenshots: test-artifacts/.
 *
 * The steps share one page and one relay and run in order: each starts where the previous one left off.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { SANDBOX_MAILBOX } from '../../src/sandbox/sandbox-config.js';
import { eventually } from '../support/sandbox-env.js';
import { startAdminWorld, type AdminWorld } from './support/admin-world.js';
import { browserTestsSkip, launchBrowser, requireBrowser, screenshot, type Browser } from './support/browser.js';

const skip = browserTestsSkip();
let world: AdminWorld;
let browser: Browser;
let page: Page;
const account = '[data-account="scanner"]';
/** The id of the message sent while the account had no token. */
let heldId = '';

before(async () => {
  if (skip) return;
  requireBrowser();
  world = await startAdminWorld({ mailboxUp: false });
  browser = await launchBrowser();
  page = browser.page;
  page.setDefaultTimeout(20_000);
});

after(async () => {
  await browser?.close();
  await world?.close();
});

async function stateOf(p: Page): Promise<string> {
  return (await p.textContent(`${account} [data-field="state"]`))?.trim() ?? '';
}

test('the page lists the account; a scan sent while it has no token is held, shown with the reason', { skip }, async () => {
  await page.goto(world.admin.url);
  assert.equal(await stateOf(page), 'not acquired');
  assert.equal(await page.textContent(`${account} [data-field="mailbox"]`), SANDBOX_MAILBOX);
  assert.equal(await page.textContent(`${account} [data-field="flow"]`), 'device-code');
  assert.equal(await page.textContent(`${account} [data-field="expires"]`), '-');
  await page.evaluate('window.__sameDocument = "yes"');

  assert.match(await world.sendScan('held scan'), /^250 /);
  const row = page.locator('#spool tr[data-status="held"]');
  await row.waitFor(); // arrives through the page's own refresh: no reload
  heldId = (await row.getAttribute('data-message')) ?? '';
  assert.match(heldId, /^[0-9a-z]{9}-[0-9a-f]{10}$/);
  assert.match((await row.locator('td.reason').textContent()) ?? '', /no token for this account yet/);
  assert.match((await page.textContent('[data-count="held"]')) ?? '', /held 1/);
  assert.notEqual(await page.textContent('[data-age-since]'), null, 'the oldest message age is shown');
  await screenshot(page, 'admin-01-held-not-acquired');
});

test('Get token shows the code large, the link and a live countdown; approving it turns the page to acquired without a reload', { skip }, async () => {
  await page.click(`${account} form[data-action="get-token"] button`);
  const codeCell = page.locator(`${account} [data-field="user-code"]`);
  await codeCell.waitFor();
  const userCode = ((await codeCell.textContent()) ?? '').trim();
  assert.match(userCode, /^[A-Z0-9-]{6,}$/);
  assert.equal(await stateOf(page), 'waiting for authorization');
  assert.equal(await page.getAttribute(`${account} [data-field="verification-uri"]`, 'href'), new URL(world.env.sim.verificationUri).href);
  const fontSize = await codeCell.evaluate((el) => Number.parseFloat((globalThis as any).getComputedStyle(el).fontSize));
  assert.ok(fontSize >= 32, `the code is shown large (${fontSize}px)`);

  const countdown = page.locator(`${account} .countdown`);
  const first = (await countdown.textContent()) ?? '';
  await page.waitForTimeout(2100);
  const second = (await countdown.textContent()) ?? '';
  assert.match(first, /^\d{1,2}:\d\d$/);
  assert.match(second, /^\d{1,2}:\d\d$/);
  assert.notEqual(first, second, 'the countdown ticks');
  assert.match((await page.textContent('#notice')) ?? '', new RegExp(`Enter code ${userCode}`));
  await screenshot(page, 'admin-02-device-code');

  world.env.sim.approve(userCode, SANDBOX_MAILBOX);
  await page.locator(`article${account}[data-state="acquired"]`).waitFor();
  assert.equal(await stateOf(page), 'acquired');
  assert.equal(await page.evaluate('window.__sameDocument'), 'yes', 'the page was not reloaded');
  assert.match((await page.textContent(`${account} [data-field="expires"]`)) ?? '', /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);
  assert.equal(await page.locator(`${account} [data-field="user-code"]`).count(), 0, 'the code is gone');
  await screenshot(page, 'admin-03-acquired');
});

test('with the token back the held message is tried by itself; the upstream is down, so it is deferred with the reason', { skip }, async () => {
  const row = page.locator(`#spool tr[data-message="${heldId}"][data-status="deferred"]`);
  await row.waitFor();
  assert.match((await row.locator('td.reason').textContent()) ?? '', /could not be reached/);
  await page.locator(`#deliveries tr[data-outcome="deferred"][data-message="${heldId}"]`).waitFor();
  await screenshot(page, 'admin-04-deferred');
});

test('Retry sends the deferred message once the upstream is up: it leaves the spool view and arrives', { skip }, async () => {
  const mailbox = await world.startMailbox();
  await page.click(`#spool tr[data-message="${heldId}"] form[data-action="retry"] button`);
  await page.locator(`#spool tr[data-message="${heldId}"]`).waitFor({ state: 'detached' });
  await page.locator(`#deliveries tr[data-outcome="delivered"][data-message="${heldId}"]`).waitFor();
  const arrived = await eventually(async () => (await mailbox.messages(SANDBOX_MAILBOX)).length === 1, 10_000, 'the scan in the mailbox');
  assert.ok(arrived);
  assert.match((await page.textContent('#spool')) ?? '', /No messages waiting, no dead letters/);
  await screenshot(page, 'admin-05-retried-delivered');
});

test('Test shows the result per protocol', { skip }, async () => {
  await page.click(`${account} form[data-action="test"] button`);
  await page.locator(`${account} [data-field="test-results"] tr[data-protocol="smtp"][data-ok="true"]`).waitFor();
  for (const protocol of ['imap', 'pop3']) await page.locator(`${account} [data-field="test-results"] tr[data-protocol="${protocol}"][data-ok="true"]`).waitFor();
  assert.match((await page.textContent('#notice.ok')) ?? '', /Test of scanner passed: SMTP, IMAP, POP3/);
  assert.match((await page.textContent(`${account} [data-field="test-results"] tr[data-protocol="pop3"]`)) ?? '', /accepted AUTH XOAUTH2 for scanner@sandbox\.test; the maildrop has 1 message/);
  await screenshot(page, 'admin-06-test-passed');
});

test('Doctor lists each check; with SMTP AUTH switched off for the mailbox it shows the cause and the exact fix', { skip }, async () => {
  const mailbox = world.mailbox!;
  const rules = `${mailbox.controlUrl}/mailboxes/${encodeURIComponent(SANDBOX_MAILBOX)}`;
  const put = await fetch(rules, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ smtpAuthDisabled: true }) });
  assert.equal(put.status, 200, await put.text());
  try {
    await page.click(`${account} form[data-action="doctor"] button`);
    const row = page.locator(`${account} [data-field="doctor-results"] tr[data-check="smtp-auth"]`);
    await row.waitFor({ timeout: 30_000 });
    assert.equal(await row.getAttribute('data-status'), 'fail');
    assert.match((await row.locator('[data-field="doctor-fix"]').textContent()) ?? '', /Set-CASMailbox -Identity scanner@sandbox\.test -SmtpClientAuthenticationDisabled \$false/);
    assert.equal(await page.locator(`${account} [data-field="doctor-results"] tr[data-check="token"]`).getAttribute('data-status'), 'pass');
    await screenshot(page, 'admin-05a-doctor');
  } finally {
    await fetch(rules, { method: 'DELETE' });
  }
});

test('Get token on an acquired account asks first; while the new code waits the account stays acquired and shows the code; declined, it stays acquired', { skip }, async () => {
  assert.equal(await stateOf(page), 'acquired');
  const questions: string[] = [];
  page.once('dialog', (dialog) => {
    questions.push(dialog.message());
    void dialog.dismiss();
  });
  await page.click(`${account} form[data-action="get-token"] button`);
  await page.waitForTimeout(300);
  assert.match(questions[0] ?? '', /has a working token.*keeps serving until the new sign-in completes/);
  assert.equal(await page.locator(`${account} [data-field="user-code"]`).count(), 0, 'cancelled: no sign-in started');

  page.once('dialog', (dialog) => void dialog.accept());
  await page.click(`${account} form[data-action="get-token"] button`);
  const codeCell = page.locator(`${account} [data-field="user-code"]`);
  await codeCell.waitFor();
  assert.equal(await stateOf(page), 'acquired', 'the working token keeps serving while the code waits');
  assert.match((await page.textContent(`${account} [data-field="sign-in-keeps"]`)) ?? '', /keeps serving/);
  await screenshot(page, 'admin-05b-re-sign-in-waiting');
  world.env.sim.decline(((await codeCell.textContent()) ?? '').trim());
  await page.locator(`${account} [data-field="user-code"]`).waitFor({ state: 'detached' });
  assert.equal(await stateOf(page), 'acquired');
  assert.match((await page.textContent(`${account} [data-field="sign-in-failure"]`)) ?? '', /declined/);
});

test('Delete token asks first; cancelled it keeps the token, confirmed the account is not acquired (and Test fails)', { skip }, async () => {
  const questions: string[] = [];
  page.once('dialog', (dialog) => {
    questions.push(dialog.message());
    void dialog.dismiss();
  });
  await page.click(`${account} form[data-action="delete-token"] button`);
  await page.waitForTimeout(500);
  assert.equal(questions.length, 1);
  assert.match(questions[0]!, /Delete the token of scanner \(scanner@sandbox\.test\)\?/);
  assert.equal(world.daemon.tokens.get('scanner').state.state, 'acquired', 'cancelled: nothing deleted');

  page.once('dialog', (dialog) => void dialog.accept());
  await page.click(`${account} form[data-action="delete-token"] button`);
  await page.locator(`article${account}[data-state="not-acquired"]`).waitFor();
  assert.equal(await stateOf(page), 'not acquired');
  assert.equal(world.daemon.tokens.get('scanner').state.state, 'not-acquired');

  await page.click(`${account} form[data-action="test"] button`);
  await page.locator(`${account} [data-field="test-results"] tr[data-protocol="smtp"][data-ok="false"]`).waitFor();
  assert.match((await page.textContent(`${account} [data-field="test-results"] tr[data-protocol="smtp"]`)) ?? '', /no token for this account yet/);
  await page.locator('#notice.failed').waitFor();
  assert.match((await page.textContent('#notice')) ?? '', /Test of scanner failed: SMTP, IMAP, POP3/);
  await screenshot(page, 'admin-07-token-deleted');
});

test('Drop asks first, then removes the message from the spool', { skip }, async () => {
  assert.match(await world.sendScan('scan to drop'), /^250 /);
  const row = page.locator('#spool tr[data-status="held"]');
  await row.waitFor();
  const id = (await row.getAttribute('data-message')) ?? '';
  page.once('dialog', (dialog) => void dialog.accept());
  await row.locator('form[data-action="drop"] button').click();
  await page.locator(`#spool tr[data-message="${id}"]`).waitFor({ state: 'detached' });
  assert.equal(await world.daemon.spool.get(id), null);
  assert.match((await page.textContent('#notice')) ?? '', new RegExp(`Message ${id} dropped`));
});
