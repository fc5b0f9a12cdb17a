/** The doctor's IMAP and POP3 steps: the relay's own upstream logins (src/checks/), failures mapped to their cause. */
import type { AccountTokens } from '../../auth/account-tokens.js';
import type { AccountConfig } from '../../config/schema.js';
import { isRelayError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { checkImap } from '../imap-check.js';
import { checkPop3 } from '../pop3-check.js';
import { failed, passed, type DoctorStep } from './findings.js';
import { applicationRole, delegatedPermission } from './token-steps.js';

export interface MailboxStepInput {
  account: string;
  config: AccountConfig;
  kind: 'user' | 'app';
  tokens: AccountTokens;
  upstream: { host: string; port: number };
  extraCaPem: string | null;
  logger: Logger;
}

/** Logs in upstream with `protocol`; never throws. */
export async function mailboxStep(protocol: 'imap' | 'pop3', input: MailboxStepInput): Promise<DoctorStep> {
  const common = { account: input.account, tokens: input.tokens, extraCaPem: input.extraCaPem, ...input.upstream };
  const names = {
    account: input.account,
    mailbox: input.config.mailbox,
    app: input.config.clientId,
    role: applicationRole[protocol],
    permission: delegatedPermission[protocol],
    protocol: protocol === 'imap' ? 'Imap' : 'Pop',
    scope: 'xoauth2-relay mailboxes',
  };
  try {
    const detail = protocol === 'imap' ? await checkImap(common) : await checkPop3({ ...common, logger: input.logger });
    return passed(protocol, detail);
  } catch (err) {
    const detail = err instanceof Error ? (isRelayError(err) ? (err.detail ?? err.message) : err.message) : String(err);
    if (isRelayError(err, 'UPSTREAM_AUTH_REJECTED')) return failed(protocol, input.kind === 'app' ? 'DOCTOR_APP_ROLE_MISSING' : 'DOCTOR_MAILBOX_LOGIN_REFUSED', detail, names);
    return failed(protocol, 'DOCTOR_MAILBOX_UNREACHABLE', detail, names);
  }
}
