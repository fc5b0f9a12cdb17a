/**
 * Exchange Online SMTP replies, translated for the operator (docs/exchange-online.md §6). Pure data and
 * functions: the reply text in, a catalogue code (whose message says what to do) out.
 */
import { catalogue, type ErrorCode } from '../../errors.js';

/** SMTP reply classes (RFC 5321 §4.2.1): 2yz done, 4yz try again later, 5yz do not repeat as is. */
export type ReplyClass = 'success' | 'temporary' | 'permanent';

export function replyClass(code: number): ReplyClass | null {
  if (code >= 200 && code < 300) return 'success';
  if (code >= 400 && code < 500) return 'temporary';
  if (code >= 500 && code < 600) return 'permanent';
  return null;
}

/** The three-digit code at the start of a reply, or null. */
export function replyCode(reply: string | null | undefined): number | null {
  const m = /^([2-5]\d\d)\b/.exec(reply ?? '');
  return m ? Number(m[1]) : null;
}

/**
 * Permanent replies worth their own advice, first match wins. Text before enhanced codes: Exchange sends
 * `554 5.2.0` for both SendAsDenied and SubmissionQuotaExceeded, the words tell them apart.
 */
const permanentReplies: ReadonlyArray<{ match: RegExp; code: ErrorCode }> = [
  { match: /SendAsDenied|\b5\.7\.60\b/i, code: 'UPSTREAM_SEND_AS_DENIED' },
  { match: /SubmissionQuotaExceeded/i, code: 'UPSTREAM_QUOTA_EXCEEDED' },
  { match: /\b5\.5\.127\b|Token will expire soon/i, code: 'UPSTREAM_TOKEN_EXPIRES_SOON' },
  { match: /\b5\.7\.54\b|non-accepted domain/i, code: 'UPSTREAM_EXTERNAL_RECIPIENT' },
  { match: /SmtpClientAuthentication|\b5\.7\.139\b/i, code: 'UPSTREAM_SMTP_AUTH_DISABLED' },
  { match: /\b5\.7\.30\b|Basic authentication is not supported/i, code: 'UPSTREAM_BASIC_AUTH_REFUSED' },
  { match: /\b5\.7\.57\b/, code: 'UPSTREAM_NOT_AUTHENTICATED' },
  { match: /^552\b|\b5\.2\.270\b|\b5\.3\.4\b|\b5\.2\.3\b/, code: 'UPSTREAM_MESSAGE_TOO_LARGE' },
  { match: /\b5\.1\.\d{1,3}\b/, code: 'UPSTREAM_RECIPIENT_REJECTED' },
];

/** The catalogue code for a permanent (5xx) reply. */
export function permanentFailureCode(reply: string): ErrorCode {
  return permanentReplies.find((r) => r.match.test(reply))?.code ?? 'UPSTREAM_REJECTED';
}

/**
 * A refusal that a fresh token may cure: `535 5.7.3` (expired or not yet accepted token) and High Volume Email's
 * `501 5.5.127` (token too close to expiry). A `535 5.7.139` is a tenant or mailbox setting: refreshing cannot
 * help, it is permanent.
 */
export function isTokenRejection(reply: string): boolean {
  const code = permanentFailureCode(reply);
  if (code === 'UPSTREAM_TOKEN_EXPIRES_SOON') return true;
  return replyCode(reply) === 535 && code !== 'UPSTREAM_SMTP_AUTH_DISABLED';
}

/** The operator's sentence for a code. */
export function reasonFor(code: ErrorCode): string {
  return catalogue[code].message;
}
