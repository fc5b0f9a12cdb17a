/**
 * `xoauth2-relay doctor [account]` and the admin page's Doctor view: for each account, in the order a person
 * fixes them, what works and what to fix: the token, its claims against the protocols the relay serves, SMTP AUTH
 * on the account's upstream, the message size, Send As for every sender its devices are configured or seen to
 * use, the High Volume Email recipient rule, and the IMAP and POP3 logins when those listeners exist. Every
 * failure carries its Exchange/Entra cause and exact fix from the error catalogue.
 */
import type { AccountTokens } from '../../auth/account-tokens.js';
import type { TokenState } from '../../auth/token-state.js';
import type { Config } from '../../config/schema.js';
import { RelayError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { isHighVolumeEmail } from '../../smtp/high-volume-email.js';
import { maySendAs, senderRulesFor } from '../../smtp/sender-policy.js';
import { failed, passed, skipped, type DoctorReport, type DoctorStep } from './findings.js';
import { mailboxStep } from './mailbox-steps.js';
import { smtpSteps } from './smtp-steps.js';
import { claimsStep, servedProtocols, tokenStep } from './token-steps.js';

/** What the doctor reads of an account's token service. */
export interface DoctorAccountView {
  state: TokenState;
  lastSignInFailure: string | null;
}

export interface DoctorOptions {
  config: Config;
  tokens: AccountTokens;
  /** The token service's state of an account (throws UNKNOWN_ACCOUNT for a name not configured). */
  account(name: string): DoctorAccountView;
  extraCaPem: string | null;
  logger: Logger;
  /** Envelope senders of queued and dead messages per account (the senders devices were seen to use). */
  seenSenders?: (account: string) => Promise<string[]>;
  sendTo?: string;
}

/** The senders the relay will present as this account's, beyond the mailbox itself: what needs Send As. */
export function sendersToCheck(config: Config, account: string, seen: string[]): string[] {
  const acc = config.accounts[account]!;
  const out = new Set<string>(acc.sendAsGranted.map((s) => s.toLowerCase()));
  for (const device of config.devices.filter((d) => d.account === account)) {
    const rules = senderRulesFor(acc, device);
    const candidates = [...device.allowedSenders, ...seen];
    for (const sender of candidates) {
      // Under auto a sender the mailbox may not use is replaced, so only a keep device presents it as is.
      if (rules.policy === 'keep' || maySendAs(rules, sender)) out.add(sender.toLowerCase());
    }
  }
  out.delete(acc.mailbox.toLowerCase());
  return [...out].sort();
}

/** Checks one account; never throws for what it finds (only for an unknown account). */
export async function doctorAccount(name: string, o: DoctorOptions): Promise<DoctorReport> {
  const acc = o.config.accounts[name];
  if (!acc) throw new RelayError('UNKNOWN_ACCOUNT', name);
  const view = o.account(name);
  const protocols = servedProtocols(o.config);
  const input = { account: name, config: acc, state: view.state, lastSignInFailure: view.lastSignInFailure, tokens: o.tokens, protocols };
  const steps: DoctorStep[] = [];
  const token = await tokenStep(input);
  steps.push(token.step);
  const hve = isHighVolumeEmail(o.config.smtp.upstream);
  if (!token.facts) {
    steps.push(skipped('claims', 'needs a token first'), skipped('smtp-auth', 'needs a token first'));
  } else {
    steps.push(claimsStep(input, token.facts));
    const seen = (await o.seenSenders?.(name).catch(() => [])) ?? [];
    steps.push(...(await smtpSteps({
      account: name, config: acc, kind: token.facts.kind, tokens: o.tokens, hve,
      target: { ...o.config.smtp.upstream, extraCaPem: o.extraCaPem },
      maxMessageBytes: o.config.smtp.maxMessageBytes,
      senders: sendersToCheck(o.config, name, seen),
      ...(o.sendTo ? { sendTo: o.sendTo } : {}),
    })));
    const common = { account: name, config: acc, kind: token.facts.kind, tokens: o.tokens, extraCaPem: o.extraCaPem, logger: o.logger };
    if (protocols.includes('imap')) steps.push(await mailboxStep('imap', { ...common, upstream: o.config.imap.upstream }));
    if (protocols.includes('pop3')) steps.push(await mailboxStep('pop3', { ...common, upstream: o.config.pop3.upstream }));
  }
  if (hve) steps.push(hveRecipientsStep(o.config, name));
  return { account: name, mailbox: acc.mailbox, flow: acc.flow, ok: steps.every((s) => s.status !== 'fail'), steps };
}

/** HVE takes internal recipients only: every device of the account must be limited to the tenant's domains. */
function hveRecipientsStep(config: Config, account: string): DoctorStep {
  const open = config.devices.filter((d) => d.account === account && d.allowedRecipientDomains.length === 0).map((d) => d.name);
  if (open.length === 0) return passed('hve-recipients', 'High Volume Email: every device of this account is limited to allowedRecipientDomains');
  return failed('hve-recipients', 'DOCTOR_HVE_EXTERNAL', `High Volume Email upstream; devices that may send anywhere: ${open.join(', ')}`, { account, mailbox: config.accounts[account]!.mailbox });
}

/** Every account (or the one named), one after another: the checks share the upstream's per-mailbox limits. */
export async function runDoctor(o: DoctorOptions, only?: string): Promise<DoctorReport[]> {
  const names = only ? [only] : Object.keys(o.config.accounts);
  const reports: DoctorReport[] = [];
  for (const name of names) reports.push(await doctorAccount(name, o));
  return reports;
}
