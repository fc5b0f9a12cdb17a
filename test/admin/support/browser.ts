/**
 * Real headless Chromium (Debian's `chromium` package) driven by playwright-core. Playwright's own browser
 * downloads are never used: the executable is /usr/bin/chromium, with a fresh profile directory per launch and
 * everything that would phone home switched off (tests only ever talk to 127.0.0.1).
 *
 * Without Chromium the browser tests are skipped with the reason, except in CI (CI=true), where they fail:
 * the CI machine installs it (scripts/setup-debian.sh).
 */
import { accessSync, constants } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Where screenshots go (gitignored; CI keeps the folder as an artifact). */
export const ARTIFACTS = resolve('test-artifacts');

function chromiumMissing(): string | null {
  try {
    accessSync(CHROMIUM, constants.X_OK);
    return null;
  } catch {
    return `${CHROMIUM} not found: install it with \`apt-get install --no-install-recommends chromium\` (scripts/setup-debian.sh does)`;
  }
}

/** `false` to run, or the reason to skip: only outside CI (CI=true must run them; see `requireBrowser`). */
export function browserTestsSkip(): string | false {
  const missing = chromiumMissing();
  return missing && !process.env.CI ? missing : false;
}

/** Throws when Chromium is missing (in CI the tests run, so they fail here rather than pass unseen). */
export function requireBrowser(): void {
  const missing = chromiumMissing();
  if (missing) throw new Error(`the browser tests must run in CI: ${missing}`);
}

export interface Browser {
  page: Page;
  context: BrowserContext;
  close(): Promise<void>;
}

/** `ignoreHttpsErrors`: accept the test CA's certificates (the admin page over HTTPS on 127.0.0.1). */
export async function launchBrowser(o: { ignoreHttpsErrors?: boolean } = {}): Promise<Browser> {
  const profile = await mkdtemp(join(tmpdir(), 'xoauth2-relay-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 900 },
    ignoreHTTPSErrors: o.ignoreHttpsErrors ?? false,
  });
  const page = context.pages()[0] ?? (await context.newPage());
  return {
    page,
    context,
    async close() {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}

/** Saves a full-page screenshot as test-artifacts/<name>.png; resolves the path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  await mkdir(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}
