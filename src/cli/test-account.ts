/**
 * `xoauth2-relay test <account>`: uses the account's token against its real upstreams: SMTP (EHLO, STARTTLS,
 * AUTH XOAUTH2; a message only with --send-to), IMAP (login, INBOX), POP3 (login, STAT). One line per protocol,
 * and the fix when one fails.
 */
import { TokenServices } from '../auth/token-services.js';
import { testAccount } from '../checks/account-check.js';
import type { CheckedProtocol } from '../checks/check-result.js';
import { loadUpstreamExtraCa } from '../transport/tls-options.js';
import { commandContext, type GlobalOptions } from './context.js';
import { exitCodes } from './exit-codes.js';

export interface TestOptions extends GlobalOptions {
  sendTo?: string;
  only?: string;
}

export async function testAccountCommand(account: string, opts: TestOptions): Promise<number> {
  const protocols = opts.only?.split(',').map((p) => p.trim()) as CheckedProtocol[] | undefined;
  if (protocols?.some((p) => !['smtp', 'imap', 'pop3'].includes(p))) {
    process.stderr.write(`xoauth2-relay: --only ${JSON.stringify(opts.only)}: use smtp, imap, pop3 (comma-separated)\n`);
    return exitCodes.usage;
  }
  const { loaded, logger } = commandContext(opts);
  const tokens = await TokenServices.create(loaded.config, logger);
  try {
    await tokens.start();
    const report = await testAccount(account, { config: loaded.config, tokens, extraCaPem: loadUpstreamExtraCa(loaded.config), logger, ...(protocols ? { protocols } : {}), ...(opts.sendTo ? { sendTo: opts.sendTo } : {}) });
    for (const r of report.results) {
      process.stdout.write(`${r.ok ? 'pass' : 'FAIL'}  ${r.protocol.padEnd(4)}  ${r.detail}  (${r.ms} ms)\n`);
      if (r.fix) process.stdout.write(`      fix: ${r.fix}\n`);
    }
    return report.results.every((r) => r.ok) ? exitCodes.ok : exitCodes.failed;
  } finally {
    await tokens.stop();
  }
}
