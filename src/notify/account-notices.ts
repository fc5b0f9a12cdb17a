/**
 * Telling the operator when an account needs a person: one log line per token state change, with the fix
 * (error when the account turned *invalid*, warn while a sign-in waits or no token exists), and, when a
 * webhook is configured, a JSON notice for the two moments someone must act: the account turned invalid, or a
 * device code is waiting to be entered.
 *
 * This is the one place that announces account states: the daemon calls `followAccountStates` instead of
 * logging them itself, so each change is logged once.
 *
 * A notice is built from named fields only (account, mailbox, state, reason, the sign-in code and link), never
 * from the token state object as a whole, so no token can reach a webhook.
 */
import { hostname } from 'node:os';
import type { TokenService } from '../auth/token-service.js';
import type { TokenServices } from '../auth/token-services.js';
import type { TokenState } from '../auth/token-state.js';
import type { Logger } from '../log.js';
import { Webhook, type WebhookNotice, type WebhookOptions } from './webhook.js';

export interface AccountNotifierOptions {
  logger: Logger;
  /** notify.webhookUrl and friends; null or absent: log only. */
  webhook?: Omit<WebhookOptions, 'logger'> | null;
  /** The admin page's address, named in the fix ("press Get token on http://…"). */
  adminUrl?: string | null;
  /** Name of this relay in notices; default the host name. */
  relayName?: string;
}

export interface AccountNotifier {
  /** Stops following (the log lines and notices of later changes). */
  stop(): void;
  /** Resolves when webhook POSTs under way have finished. */
  idle(): Promise<void>;
}

type Account = Pick<TokenService, 'name' | 'mailbox' | 'flow' | 'state' | 'on' | 'off'>;

/**
 * Announces every account's state changes from now on. Accounts that already need a person when this starts
 * (invalid, or a code waiting) are announced at once, so a restart does not hide them.
 */
export function followAccountStates(tokens: Pick<TokenServices, 'all'>, opts: AccountNotifierOptions): AccountNotifier {
  const log = opts.logger.child({ component: 'notify' });
  const webhook = opts.webhook?.url ? new Webhook({ ...opts.webhook, logger: log }) : null;
  const relay = opts.relayName ?? hostname();
  const offs = tokens.all().map((account) => {
    const onState = (state: TokenState) => announce(account, state, false);
    account.on('state', onState);
    return () => account.off('state', onState);
  });

  function announce(account: Account, state: TokenState, atStart: boolean): void {
    logAccountState(log, account, state, opts.adminUrl ?? null, atStart);
    const notice = webhook ? noticeFor(account, state, relay, opts.adminUrl ?? null) : null;
    if (notice) webhook!.send(notice);
  }

  for (const account of tokens.all()) {
    if (account.state.state === 'invalid' || account.state.state === 'waiting-authorization') announce(account, account.state, true);
  }

  return {
    stop: () => offs.forEach((off) => off()),
    idle: () => webhook?.idle() ?? Promise.resolve(),
  };
}

/** What to do, in one sentence, for an account in `state`. */
export function fixFor(account: Pick<TokenService, 'name' | 'mailbox' | 'flow'>, state: TokenState, adminUrl: string | null): string {
  const page = adminUrl ? `press Get token on the admin page (${adminUrl})` : 'press Get token on the admin page';
  switch (state.state) {
    case 'invalid':
      return account.flow === 'client-credentials'
        ? `fix the app's credential or permissions as the reason says, then ${page} or run \`xoauth2-relay login ${account.name}\``
        : `sign in again as ${account.mailbox}: ${page} or run \`xoauth2-relay login ${account.name}\``;
    case 'waiting-authorization':
      return state.userCode
        ? `open ${state.verificationUri}, enter the code ${state.userCode} and sign in as ${account.mailbox} before ${state.expiresAt}`
        : `open the sign-in link on the relay's host and sign in as ${account.mailbox} before ${state.expiresAt}`;
    case 'not-acquired':
      return `${page} or run \`xoauth2-relay login ${account.name}\``;
    case 'acquired':
      return 'nothing to do';
  }
}

function logAccountState(log: Logger, account: Account, state: TokenState, adminUrl: string | null, atStart: boolean): void {
  const fields = { account: account.name, mailbox: account.mailbox, state: state.state, atStart };
  const fix = fixFor(account, state, adminUrl);
  switch (state.state) {
    case 'invalid':
      log.error({ ...fields, reason: state.reason }, `account ${account.name} needs a new sign-in: ${state.reason}; fix: ${fix}`);
      break;
    case 'waiting-authorization':
      log.warn({ ...fields, verificationUri: state.verificationUri, userCode: state.userCode, expiresAt: state.expiresAt }, `account ${account.name} is waiting for a sign-in: ${fix}`);
      break;
    case 'acquired':
      log.info({ ...fields, expiresAt: state.expiresAt }, `account ${account.name} has its token`);
      break;
    case 'not-acquired':
      log.warn(fields, `account ${account.name} has no token: ${fix}`);
      break;
  }
}

/** The webhook notice for a state someone must act on, or null (acquired, not acquired, browser sign-in). */
export function noticeFor(account: Pick<TokenService, 'name' | 'mailbox' | 'flow'>, state: TokenState, relay: string, adminUrl: string | null): WebhookNotice | null {
  const common = { source: 'xoauth2-relay', relay, account: account.name, mailbox: account.mailbox, state: state.state, fix: fixFor(account, state, adminUrl), at: new Date().toISOString(), ...(adminUrl ? { adminUrl } : {}) };
  if (state.state === 'invalid') {
    return {
      key: `invalid:${account.name}:${state.since}`,
      body: { event: 'account-invalid', ...common, reason: state.reason, text: `xoauth2-relay ${relay}: account ${account.name} (${account.mailbox}) needs a new sign-in: ${state.reason}. Fix: ${common.fix}.` },
    };
  }
  // A browser sign-in is waiting for the person who just started it on the admin page: nobody else to tell.
  if (state.state === 'waiting-authorization' && state.userCode) {
    return {
      key: `sign-in:${account.name}:${state.userCode}`,
      body: {
        event: 'sign-in-waiting',
        ...common,
        signIn: { userCode: state.userCode, verificationUri: state.verificationUri, expiresAt: state.expiresAt },
        text: `xoauth2-relay ${relay}: account ${account.name} (${account.mailbox}) is waiting for a sign-in: ${common.fix}.`,
      },
    };
  }
  return null;
}
