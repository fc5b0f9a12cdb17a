/** `xoauth2-relay status [--json]`: one line per account: state, mailbox, expiry, reason. Reads the state dir; no network. */
import { TokenServices } from '../auth/token-services.js';
import { accountStatus, type AccountStatus } from '../auth/account-status.js';
import { commandContext, type GlobalOptions } from './context.js';
import { exitCodes } from './exit-codes.js';

function line(a: AccountStatus): string {
  const detail =
    a.state === 'acquired' ? `expires ${a.expiresAt ?? 'unknown'}, last refresh ${a.lastRefresh ?? 'unknown'}${a.userCode ? `; a new sign-in waits: code ${a.userCode} at ${a.verificationUri}, until ${a.signInExpiresAt}` : ''}`
    : a.state === 'invalid' ? `reason: ${a.reason}`
    : a.state === 'waiting-authorization' ? `code ${a.userCode ?? '-'} at ${a.verificationUri}, until ${a.expiresAt}`
    : `run: xoauth2-relay login ${a.account}`;
  return `${a.account.padEnd(12)} ${a.state.padEnd(22)} ${a.mailbox.padEnd(28)} ${detail}`;
}

export async function statusCommand(opts: GlobalOptions & { json?: boolean }): Promise<number> {
  const { loaded, logger } = commandContext(opts);
  const services = await TokenServices.create(loaded.config, logger);
  try {
    await services.start();
    const rows = services.all().map(accountStatus);
    process.stdout.write(opts.json ? `${JSON.stringify(rows, null, 2)}\n` : `${rows.map(line).join('\n')}\n`);
    return rows.every((r) => r.state === 'acquired') ? exitCodes.ok : exitCodes.failed;
  } finally {
    await services.stop();
  }
}
