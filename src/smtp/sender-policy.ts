/**
 * Sender policy per account (config `accounts.*.senderPolicy`). Exchange refuses a sender that is not the
 * authenticated mailbox unless the mailbox has Send As rights for it (550 5.7.60 / SendAsDenied), and
 * scanners often have a fixed sender like scanner@printer.local. So the relay can:
 *   keep             – send as the device says (needs Send As);
 *   rewrite-envelope – MAIL FROM becomes the mailbox (enough when Exchange checks only the envelope);
 *   rewrite-from     – also the From header; the original goes to Reply-To (if none) and X-Original-From.
 */
import type { AccountConfig } from '../config/schema.js';
import { splitHeaderFields } from './header-block.js';

export type SenderPolicy = AccountConfig['senderPolicy'];

export function envelopeSender(policy: SenderPolicy, deviceSender: string, mailbox: string): string {
  return policy === 'keep' && deviceSender !== '' ? deviceSender : mailbox;
}

/** The address inside a From value (`"Name" <a@b>` or `a@b`), and its display name. */
function parseMailbox(value: string): { display: string; address: string } {
  const angle = /^(.*)<([^<>]*)>\s*$/s.exec(value.trim());
  if (angle) return { display: angle[1]!.trim(), address: angle[2]!.trim() };
  return { display: '', address: value.trim() };
}

/** The header block with From set to the mailbox, the original kept for replies and tracing. */
export function rewriteFromHeader(header: string, mailbox: string): string {
  const fields = splitHeaderFields(header);
  const from = fields.find((f) => f.name === 'from');
  const original = from ? from.text.slice(from.text.indexOf(':') + 1).replace(/\r\n[ \t]+/g, ' ').trim() : '';
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
