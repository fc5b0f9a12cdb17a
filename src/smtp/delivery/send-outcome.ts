/**
 * What one delivery attempt came to, decided from nodemailer's result or error and from the token service's
 * errors. Pure functions: the worker acts on the outcome, this file only names it.
 */
import { isRelayError, type ErrorCode } from '../../errors.js';
import { isTokenRejection, permanentFailureCode, replyClass, replyCode } from './exchange-replies.js';

/** A recipient Exchange refused at RCPT TO (RFC 5321 §3.3: the others may still get the message). */
export interface RecipientFailure {
  address: string;
  reply: string;
  permanent: boolean;
}

export type SendOutcome =
  /** Accepted for at least one recipient; `rejected` lists the others (empty when all went). */
  | { kind: 'delivered'; reply: string; rejected: RecipientFailure[] }
  /** Every recipient refused at RCPT TO; nothing was sent. */
  | { kind: 'recipients-refused'; rejected: RecipientFailure[] }
  /** `535` for the access token: worth one forced refresh. */
  | { kind: 'token-rejected'; reply: string }
  /** Try again later (4xx, network, TLS, token refresh trouble). `reply` is Exchange's, or the local error text. */
  | { kind: 'temporary'; code: ErrorCode; reply: string }
  /** Do not repeat as is (5xx, message too large for the upstream). `reason`: the fix with this message's own names, when it has one. */
  | { kind: 'permanent'; code: ErrorCode; reply: string; reason?: string }
  /** The account has no usable token: wait for a sign-in, do not count an attempt. */
  | { kind: 'token-unavailable'; code: ErrorCode; reply: string };

/** The fields of nodemailer's SMTP errors we read (lib/smtp-connection `_formatError`). */
interface SmtpErrorLike {
  message?: string;
  code?: string;
  response?: string;
  responseCode?: number;
  rejectedErrors?: Array<{ recipient?: string; response?: string }>;
}

/** nodemailer's SMTP transport result fields we read. */
export interface SendInfoLike {
  response?: string;
  accepted?: unknown[];
  rejectedErrors?: Array<{ recipient?: string; response?: string }>;
}

// nodemailer error codes for trouble below SMTP: the connection, DNS, timeouts.
const networkCodes = new Set(['ECONNECTION', 'ESOCKET', 'ETIMEDOUT', 'EDNS', 'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EPROXY']);

/** A successful sendMail: delivered to the accepted recipients, some may have been refused. */
export function outcomeOfSuccess(info: SendInfoLike): SendOutcome {
  return { kind: 'delivered', reply: info.response ?? '250', rejected: recipientFailures(info.rejectedErrors) };
}

/** A failed sendMail. */
export function outcomeOfError(err: unknown): SendOutcome {
  const e = (err ?? {}) as SmtpErrorLike;
  const reply = e.response ?? e.message ?? String(err);
  const code = e.responseCode ?? replyCode(e.response);
  if (e.code === 'EAUTH' && e.response && isTokenRejection(e.response)) return { kind: 'token-rejected', reply };
  if (e.code === 'EENVELOPE' && e.rejectedErrors?.length) return { kind: 'recipients-refused', rejected: recipientFailures(e.rejectedErrors) };
  const cls = code === null ? null : replyClass(code);
  if (cls === 'permanent') return { kind: 'permanent', code: permanentFailureCode(reply), reply };
  if (cls === 'temporary') return { kind: 'temporary', code: 'UPSTREAM_TEMPORARY', reply };
  // No SMTP reply: something local or below SMTP.
  if (e.code === 'EMESSAGE' && /larger than allowed/i.test(e.message ?? '')) return { kind: 'permanent', code: 'UPSTREAM_MESSAGE_TOO_LARGE', reply };
  // nodemailer refused the envelope itself (an address with CR, LF, < or >): no retry can change that.
  if (e.code === 'EENVELOPE' && /^Invalid (sender|recipient)/.test(e.message ?? '')) return { kind: 'permanent', code: 'UPSTREAM_REJECTED', reply };
  if (e.code === 'ETLS' || /certificate|TLS|SSL/i.test(e.message ?? '')) return { kind: 'temporary', code: 'UPSTREAM_TLS_FAILED', reply };
  if (e.code !== undefined && networkCodes.has(e.code)) return { kind: 'temporary', code: 'UPSTREAM_UNREACHABLE', reply };
  // Unknown: never bury a message on a guess.
  return { kind: 'temporary', code: 'UPSTREAM_UNREACHABLE', reply };
}

/**
 * A SendAs refusal names its own fix: the exact grant for this sender and mailbox, or the default policy. At MAIL
 * FROM (`550 5.7.60`) the envelope sender is the one refused; after the data (`554 5.2.0`) it is the From header,
 * which under `keep` is the device's sender too.
 */
export function withSendAsFix(outcome: SendOutcome, message: { mailFrom: string; account: string }, mailbox: string): SendOutcome {
  if (outcome.kind !== 'permanent' || outcome.code !== 'UPSTREAM_SEND_AS_DENIED') return outcome;
  const sender = message.mailFrom || '<sender>';
  const which = /\b5\.7\.60\b/.test(outcome.reply) ? `the envelope sender ${sender}` : `the From header (the device sent as ${sender})`;
  const reason =
    `Exchange refused ${which} for ${mailbox}: the mailbox has no Send As right on it. Fix: use the default ` +
    `senderPolicy (auto) for account ${message.account} or its device, which sends as ${mailbox} and keeps ${sender} in Reply-To; ` +
    `or grant it in Exchange Online PowerShell: Add-RecipientPermission -Identity ${sender} -Trustee ${mailbox} -AccessRights SendAs ` +
    `and add ${sender} to accounts.${message.account}.sendAsGranted. Then \`xoauth2-relay queue retry <id>\`.`;
  return { ...outcome, reason };
}

/** The token service refused to give a token (RelayError TOKEN_*), or something failed before sending. */
export function outcomeOfTokenError(err: unknown): SendOutcome {
  const reply = err instanceof Error ? err.message : String(err);
  if (isRelayError(err, 'TOKEN_INVALID') || isRelayError(err, 'TOKEN_NOT_ACQUIRED') || isRelayError(err, 'UNKNOWN_ACCOUNT')) {
    return { kind: 'token-unavailable', code: err.code, reply };
  }
  if (isRelayError(err)) return { kind: 'temporary', code: err.code, reply };
  return { kind: 'temporary', code: 'INTERNAL', reply };
}

function recipientFailures(errors: SmtpErrorLike['rejectedErrors']): RecipientFailure[] {
  return (errors ?? []).map((r) => {
    const reply = r.response ?? '';
    return { address: r.recipient ?? '', reply, permanent: replyClass(replyCode(reply) ?? 0) === 'permanent' };
  });
}
