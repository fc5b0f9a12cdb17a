/**
 * Checks an account's upstream access for real, protocol by protocol, with the relay's own token: what
 * `xoauth2-relay test <account>` prints and the admin page's Test button shows.
 */
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { TokenServices } from '../auth/token-services.js';
import { timedCheck, type AccountTestReport, type CheckedProtocol } from './check-result.js';
import { checkImap } from './imap-check.js';
import { checkPop3 } from './pop3-check.js';
import { checkSmtp } from './smtp-check.js';

export interface AccountCheckOptions {
  config: Config;
  tokens: TokenServices;
  extraCaPem: string | null;
  logger: Logger;
  protocols?: CheckedProtocol[];
  sendTo?: string;
}

export async function testAccount(account: string, o: AccountCheckOptions): Promise<AccountTestReport> {
  const service = o.tokens.get(account); // UNKNOWN_ACCOUNT for a name not in the config
  const wanted = new Set(o.protocols ?? ['smtp', 'imap', 'pop3']);
  const common = { account, tokens: o.tokens, extraCaPem: o.extraCaPem };
  const results = [];
  if (wanted.has('smtp')) results.push(await timedCheck('smtp', () => checkSmtp({ ...common, ...o.config.smtp.upstream, ...(o.sendTo ? { sendTo: o.sendTo } : {}) })));
  if (wanted.has('imap')) results.push(await timedCheck('imap', () => checkImap({ ...common, ...o.config.imap.upstream })));
  if (wanted.has('pop3')) results.push(await timedCheck('pop3', () => checkPop3({ ...common, ...o.config.pop3.upstream, logger: o.logger })));
  return { account, mailbox: service.mailbox, results };
}
