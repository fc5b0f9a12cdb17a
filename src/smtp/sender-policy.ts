/**
 * Whose address a device's message goes out as. Exchange Online checks the envelope sender at MAIL FROM
 * (`550 5.7.60`) and the From header after the data (`554 5.2.0 …SendAsDenied`) against the mailbox's Send As
 * rights (docs/exchange-online.md §6); rewriting only the envelope is not enough. Policies (config
 * `accounts.*.senderPolicy`, overridable per device):
 *   auto – a sender the mailbox may send as (itself, or one the operator lists in `sendAsGranted`) is kept;
 *          any other is replaced by the mailbox in MAIL FROM and From (display name kept), the original going
 *          to Reply-To (unless one is set) and to X-Original-From. Delivers with no change in Exchange.
 *   keep – as the device says: for tenants that granted Send As (MyQ's "send scan as user").
 * `rewrite-envelope` and `rewrite-from`, the policies before 2026, act as auto (check-config says so).
 */
import type { AccountConfig, DeviceConfig } from '../config/schema.js';
import { splitHeaderFields } from './header-block.js';

/** A policy as configured, old names included. */
export type ConfiguredSenderPolicy = AccountConfig['senderPolicy'];
/** What the relay does. */
export type SenderPolicy = 'auto' | 'keep';

/** The policies that are read as `auto` and get a deprecation line from check-config. */
export const deprecatedSenderPolicies: readonly ConfiguredSenderPolicy[] = ['rewrite-envelope', 'rewrite-from'];

/** Who may appear as sender, and how the relay treats the others. */
export interface SenderRules {
  policy: SenderPolicy;
  mailbox: string;
  /** Addresses and `@domain` entries the mailbox has Send As rights for. */
  granted: readonly string[];
}

/** The rules for a device of an account: the device's own policy, else the account's (old names read as auto). */
export function senderRulesFor(account: AccountConfig, device?: Pick<DeviceConfig, 'senderPolicy'> | null): SenderRules {
  const configured = device?.senderPolicy ?? account.senderPolicy;
  return { policy: configured === 'keep' ? 'keep' : 'auto', mailbox: account.mailbox, granted: account.sendAsGranted };
}

/** True when Exchange lets the mailbox send as `address`: the mailbox itself or a granted address or domain. */
export function maySendAs(rules: Pick<SenderRules, 'mailbox' | 'granted'>, address: string): boolean {
  const lower = address.trim().toLowerCase();
  if (lower === '') return false;
  if (lower === rules.mailbox.toLowerCase()) return true;
  return rules.granted.some((g) => (g.startsWith('@') ? lower.endsWith(g.toLowerCase()) : lower === g.toLowerCase()));
}

/** MAIL FROM upstream: the device's sender when the policy keeps it, else the mailbox. An empty sender (a bounce) becomes the mailbox. */
export function envelopeSender(rules: SenderRules, deviceSender: string): string {
  if (deviceSender === '') return rules.mailbox;
  return rules.policy === 'keep' || maySendAs(rules, deviceSender) ? deviceSender : rules.mailbox;
}

/** The address inside a From value (`"Name" <a@b>` or `a@b`), and its display name. */
function parseMailbox(value: string): { display: string; address: string } {
  const angle = /^(.*)<([^<>]*)>\s*$/s.exec(value.trim());
  if (angle) return { display: angle[1]!.trim(), address: angle[2]!.trim() };
  return { display: '', address: value.trim() };
}

/** The header block as the policy wants it: unchanged under keep or when From is a sender the mailbox may use. */
export function applySenderPolicy(header: string, rules: SenderRules): string {
  if (rules.policy === 'keep') return header;
  const from = splitHeaderFields(header).find((f) => f.name === 'from');
  const value = from ? unfold(from.text) : '';
  if (value !== '' && maySendAs(rules, parseMailbox(value).address)) return header;
  return rewriteFromHeader(header, rules.mailbox);
}

function unfold(fieldText: string): string {
  return fieldText.slice(fieldText.indexOf(':') + 1).replace(/\r\n[ \t]+/g, ' ').trim();
}

/** The header block with From set to the mailbox, the original kept for replies and tracing. */
export function rewriteFromHeader(header: string, mailbox: string): string {
  const fields = splitHeaderFields(header);
  const from = fields.find((f) => f.name === 'from');
  const original = from ? unfold(from.text) : '';
  if (original !== '' && parseMailbox(original).address.toLowerCase() === mailbox.toLowerCase()) return header;
  const display = original ? parseMailbox(original).display : '';
  const out: string[] = [];
  for (const f of fields) {
    if (f.name === 'from') {
      out.push(`From: ${display ? `${display} <${mailbox}>` : mailbox}`);
      if (original) out.push(`X-Original-From: ${original}`);
    } else if (f.name !== 'sender') {
      // Sender: would name the device's address again and trip SendAsDenied.
      out.push(f.text);
    }
  }
  if (!from) out.push(`From: ${mailbox}`);
  if (original && !fields.some((f) => f.name === 'reply-to')) out.push(`Reply-To: ${original}`);
  return out.join('\r\n');
}
