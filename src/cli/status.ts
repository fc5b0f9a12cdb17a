/** `xoauth2-relay status [--json]`: one line per account: state, mailbox, expiry, reason. Reads the state dir; no network. */
import { TokenServices } from '../auth/token-services.js';
import type { TokenService } from '../auth/token-service.js';
import { commandContext, type GlobalOptions } from './context.js';
import { exitCodes } from './exit-codes.js';

export function accountStatus(s: TokenService) {
  const st = s.state;
  return {
    account: s.name,
    mailbox: s.mailbox,
    flow: s.flow,
    state: st.state,
    expiresAt: st.state === 'acquired' ? st.expiresAt : st.state === 'waiting-authorization' ? st.expiresAt : null,
    lastRefresh: s.lastRefreshAt?.toISOString() ?? null,
    reason: st.state === 'invalid' ? st.reason : null,
    userCode: st.state === 'waiting-authorization' ? st.userCode : null,
    verificationUri: st.state === 'waiting-authorization' ? st.verificationUri : null,
  };
}

function line(a: ReturnType<typeof accountStatus>): string {
  const detail =
    a.state === 'acquired' ? `expires ${a.expiresAt ?? 'unknown'}, last refresh ${a.lastRefresh ?? 'unknown'}`
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
