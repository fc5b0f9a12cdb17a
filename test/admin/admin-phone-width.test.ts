/**
 * The admin page at phone width (390 px, where an admin at the printer reads the device code) and at desktop
 * width (1280 px), in real headless Chromium, with everything the page can show at once: a device code
 * waiting, a held message in the spool, a delivery in the recent list, and a test result. Nothing may push the
 * page wider than the screen; the code, the link and the mailbox must be whole and inside it.
 * Screenshots: test-artifacts/admin-width-390.png and admin-width-1280.png.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { SANDBOX_MAILBOX } from '../../src/sandbox/sandbox-config.js';
import { startAdminWorld, type AdminWorld } from './support/admin-world.js';
import { browserTestsSkip, launchBrowser, requireBrowser, screenshot, type Browser } from './support/browser.js';

const skip = browserTestsSkip();
const account = '[data-account="scanner"]';
let world: AdminWorld;
let browser: Browser;
let page: Page;

before(async () => {
  if (skip) return;
  requireBrowser();
  world = await startAdminWorld();
  browser = await launchBrowser();
  page = browser.page;
  page.setDefaultTimeout(20_000);

  // A delivery in the recent list: sign in, relay one scan.
  const service = world.daemon.tokens.get('scanner');
  const prompt = await service.startDeviceCode();
  world.env.sim.approve(prompt.userCode, SANDBOX_MAILBOX);
  await prompt.done;
  assert.match(await world.sendScan('delivered scan with a subject long enough to matter'), /^250 /);
  await page.goto(world.admin.url);
  await page.locator('#deliveries tr[data-outcome="delivered"]').waitFor();
  // A test result, then back to no token: Get token shows a code, and a new scan is held.
  await page.click(`${account} form[data-action="test"] button`);
  await page.locator(`${account} [data-field="test-results"] tr[data-protocol="pop3"]`).waitFor();
  // The held scan goes first: a scan sent while a sign-in waits currently turns the account back to
  // not acquired (token service), which would take the code off the page this test measures.
  await service.logout();
  assert.match(await world.sendScan('held scan'), /^250 /);
  await page.locator('#spool tr[data-status="held"]').waitFor();
  await page.click(`${account} form[data-action="get-token"] button`);
  await page.locator(`${account} [data-field="user-code"]`).waitFor();
  await page.locator(`${account} [data-field="test-results"]`).waitFor();
});

after(async () => {
  await browser?.close();
  await world?.close();
});

interface Fit {
  innerWidth: number;
  scrollWidth: number;
  /** Elements that reach past the right edge of the window, or are cut off inside their own box. */
  outside: string[];
}

/** Measures in the page: document width, and every element of interest against the window and its own box. */
async function fitAt(width: number): Promise<Fit> {
  await page.setViewportSize({ width, height: 900 });
  await page.waitForTimeout(300);
  return page.evaluate(() => {
    const doc = (globalThis as any).document;
    const win = globalThis as any;
    const outside: string[] = [];
    const watched = ['[data-field="user-code"]', '[data-field="verification-uri"]', '[data-field="mailbox"]', 'h3', 'table', 'td', 'th', 'button', '.notice', '[data-field="sign-in"] p', 'header'];
    for (const selector of watched) {
      for (const el of doc.querySelectorAll(selector)) {
        const box = el.getBoundingClientRect();
        const label = `${selector} "${String(el.textContent).trim().slice(0, 40)}"`;
        if (box.right > win.innerWidth + 0.5 || box.left < -0.5) outside.push(`${label} spans ${Math.round(box.left)}..${Math.round(box.right)}`);
        else if (el.scrollWidth > el.clientWidth + 1 && (selector === '[data-field="user-code"]' || selector === '[data-field="mailbox"]' || selector === 'td')) outside.push(`${label} is cut (${el.scrollWidth} > ${el.clientWidth})`);
      }
    }
    return { innerWidth: win.innerWidth, scrollWidth: doc.documentElement.scrollWidth, outside };
  });
}

for (const width of [390, 1280]) {
  test(`at ${width} px: no horizontal overflow; the device code, the link and the mailbox whole and on screen`, { skip }, async () => {
    const fit = await fitAt(width);
    await screenshot(page, `admin-width-${width}`);
    console.log(`admin page at ${width} px: scrollWidth ${fit.scrollWidth}, innerWidth ${fit.innerWidth}`);
    assert.ok(fit.scrollWidth <= fit.innerWidth, `the page is ${fit.scrollWidth} px wide in a ${fit.innerWidth} px window`);
    assert.deepEqual(fit.outside, []);

    const code = page.locator(`${account} [data-field="user-code"]`);
    const codeText = ((await code.textContent()) ?? '').trim();
    assert.match(codeText, /^[A-Z0-9-]{6,}$/);
    const codeLines = await code.evaluate((el) => {
      const range = (globalThis as any).document.createRange();
      range.selectNodeContents(el);
      return new Set([...range.getClientRects()].map((r: { top: number }) => Math.round(r.top))).size;
    });
    assert.equal(codeLines, 1, 'the code is on one line, not broken in the middle');
    const fontSize = await code.evaluate((el) => Number.parseFloat((globalThis as any).getComputedStyle(el).fontSize));
    assert.ok(fontSize >= 24, `the code is large (${fontSize}px)`);
    assert.equal(await page.textContent(`${account} [data-field="mailbox"]`), SANDBOX_MAILBOX);
    if (width === 390) {
      const linkLines = await page.locator(`${account} [data-field="verification-uri"]`).evaluate((el) => el.getClientRects().length);
      assert.ok(linkLines >= 1);
    }
  });
}
