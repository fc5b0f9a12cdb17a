/**
 * SMTP submission for the sandbox mailbox, shaped like smtp.office365.com:587: plain connection, STARTTLS
 * before AUTH, XOAUTH2 only, and Exchange's own replies where a client (the relay's delivery worker, the
 * doctor) branches on them (docs/exchange-online.md §2, §6). What Exchange checks, the sandbox checks, each
 * switchable per mailbox (mailbox-rules.ts): SMTP AUTH disabled (tenant or mailbox), Send As at MAIL FROM and
 * for the From header after the data, app-only role scope, 3 sessions per mailbox, the mailbox's message size,
 * 500 recipients, and for High Volume Email accounts internal recipients only and no token near expiry.
 * Accepted messages are streamed to every recipient's mailbox directory.
 */
import { SMTPServer, type SMTPServerAddress, type SMTPServerAuthentication, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import type { Logger } from '../../log.js';
import { greetPromptly } from '../../smtp/prompt-greeting.js';
import { errorFields } from '../../log.js';
import type { AccessTokenChecker, MailboxPrincipal } from './token-check.js';
import { mailboxDirectoryName, type Maildir } from './maildir.js';
import type { MailboxRulebook } from './mailbox-rules.js';
import { HeaderCapture } from './submitted-header.js';

/** What the SMTP listener needs. */
export interface SmtpSubmissionOptions {
  tls: { certPem: string; keyPem: string };
  tokens: AccessTokenChecker;
  maildir: Maildir;
  rules: MailboxRulebook;
  logger: Logger;
}

/** Exchange Online's default message size limit (35 MB), advertised as `SIZE` (RFC 1870); a mailbox's own limit can be lower. */
export const SANDBOX_MAX_MESSAGE_BYTES = 35 * 1024 * 1024;
/** Exchange Online's recipient limit per message. */
const MAX_RECIPIENTS = 500;

/** Replies copied from Exchange Online, so the relay's reply classification meets the real texts. */
export const exchangeReplies = {
  authFailed: { code: 535, text: '5.7.3 Authentication unsuccessful' },
  smtpAuthDisabled: (where: 'Tenant' | 'Mailbox') => ({
    code: 535,
    text: `5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the ${where}. Visit https://aka.ms/smtp_auth_disabled for more information.`,
  }),
  tokenExpiresSoon: { code: 501, text: '5.5.127 Invalid XOAUTH2 auth data - Token will expire soon' },
  authRequired: '5.7.57 Client not authenticated to send mail',
  sendAsDeniedAtMailFrom: { code: 550, text: '5.7.60 SMTP; Client does not have permissions to send as this sender' },
  sendAsDenied: {
    code: 554,
    text: '5.2.0 STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied; Failed to process message due to a permanent exception with message Cannot submit message.',
  },
  threadLimit: { code: 432, text: '4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded' },
  tooLarge: { code: 552, text: '5.3.4 Message size exceeds fixed maximum message size' },
  // Exchange's words for a recipient outside the accepted domains; Microsoft does not publish HVE's own text.
  notInternal: { code: 550, text: '5.7.54 SMTP; Unable to relay recipient in non-accepted domain' },
  badRecipient: { code: 501, text: '5.1.3 Invalid address' },
  tooManyRecipients: { code: 452, text: '4.5.3 Too many recipients' },
  storeFailed: { code: 451, text: '4.3.0 Mail server temporarily unable to store the message' },
} as const;

/** An error smtp-server turns into a reply line: `responseCode` then the message. */
function smtpReply(reply: { code: number; text: string }): Error & { responseCode: number } {
  return Object.assign(new Error(reply.text), { responseCode: reply.code });
}

function principalOf(session: SMTPServerSession): MailboxPrincipal {
  return session.user as MailboxPrincipal;
}

/** Authenticated sessions per mailbox, in the order they logged in (Exchange's "sender thread" count). */
class SessionsPerMailbox {
  private readonly open = new Map<string, string[]>();
  add(mailbox: string, session: string): void {
    this.open.set(mailbox, [...(this.open.get(mailbox) ?? []), session]);
  }
  rank(mailbox: string, session: string): number {
    return (this.open.get(mailbox) ?? []).indexOf(session);
  }
  remove(session: string): void {
    for (const [mailbox, ids] of this.open) {
      const left = ids.filter((id) => id !== session);
      if (left.length === 0) this.open.delete(mailbox);
      else this.open.set(mailbox, left);
    }
  }
}

/** Creates (does not start) the submission server. */
export function createSmtpSubmission(opts: SmtpSubmissionOptions): SMTPServer {
  const { tokens, maildir, rules, logger } = opts;
  const sessions = new SessionsPerMailbox();

  /** Exchange's order after a valid token: SMTP AUTH switched off, then (HVE) a token about to expire. */
  function refusalAfterToken(principal: MailboxPrincipal): { code: number; text: string } | null {
    const off = rules.smtpAuthOff(principal.mailbox);
    if (off) return exchangeReplies.smtpAuthDisabled(off);
    const minLife = rules.tenant.hveMinTokenLifetimeSeconds;
    if (rules.for(principal.mailbox).hve && principal.expiresAt - Date.now() / 1000 < minLife) return exchangeReplies.tokenExpiresSoon;
    return null;
  }

  function onAuth(
    auth: SMTPServerAuthentication,
    session: SMTPServerSession,
    callback: (err: Error | null | undefined, response?: { user: MailboxPrincipal }) => void,
  ): void {
    const log = logger.child({ protocol: 'smtp', connection: session.id, user: auth.username });
    tokens.checkCredentials(auth.username ?? '', auth.accessToken ?? '', 'smtp').then(
      (verdict) => {
        if (!verdict.accepted) {
          // Exchange answers a bad token with a final 535 (no RFC 7628-style 334 error challenge).
          log.info({ reason: verdict.reason }, 'authentication refused');
          return callback(smtpReply(exchangeReplies.authFailed));
        }
        const refusal = refusalAfterToken(verdict.principal);
        if (refusal) {
          log.info({ reply: `${refusal.code} ${refusal.text}` }, 'authentication refused by a mailbox or tenant setting');
          return callback(smtpReply(refusal));
        }
        log.info({ subject: verdict.principal.subject, kind: verdict.principal.kind }, 'authenticated');
        sessions.add(verdict.principal.mailbox, session.id);
        callback(null, { user: verdict.principal });
      },
      (err: unknown) => {
        log.error(errorFields(err), 'token check failed');
        callback(smtpReply(exchangeReplies.authFailed));
      },
    );
  }

  function onMailFrom(address: SMTPServerAddress, session: SMTPServerSession, callback: (err?: Error | null) => void): void {
    const principal = principalOf(session);
    const mailboxRules = rules.for(principal.mailbox);
    if (sessions.rank(principal.mailbox, session.id) >= mailboxRules.maxSmtpConnections) return callback(smtpReply(exchangeReplies.threadLimit));
    const declared = Number((address.args || {}).SIZE ?? 0);
    if (declared > mailboxRules.maxMessageBytes) return callback(smtpReply(exchangeReplies.tooLarge));
    // The null sender (bounces) is the mailbox's own; any other must be the mailbox or granted Send As.
    if (address.address !== '' && !rules.maySendAs(principal.mailbox, address.address)) {
      logger.info({ protocol: 'smtp', connection: session.id, mailbox: principal.mailbox, sender: address.address }, 'send-as refused at MAIL FROM');
      return callback(smtpReply(exchangeReplies.sendAsDeniedAtMailFrom));
    }
    callback();
  }

  function onRcptTo(address: { address: string }, session: SMTPServerSession, callback: (err?: Error | null) => void): void {
    if (session.envelope.rcptTo.length >= MAX_RECIPIENTS) return callback(smtpReply(exchangeReplies.tooManyRecipients));
    // Every recipient is "local" in the sandbox, but its address becomes a directory name.
    if (mailboxDirectoryName(address.address) === null) return callback(smtpReply(exchangeReplies.badRecipient));
    const mailbox = principalOf(session).mailbox;
    if (rules.for(mailbox).hve && !rules.isInternal(mailbox, address.address)) return callback(smtpReply(exchangeReplies.notInternal));
    callback();
  }

  function onData(stream: SMTPServerDataStream, session: SMTPServerSession, callback: (err?: Error | null, message?: string) => void): void {
    const principal = principalOf(session);
    const log = logger.child({ protocol: 'smtp', connection: session.id, mailbox: principal.mailbox });
    const limit = rules.for(principal.mailbox).maxMessageBytes;
    const header = new HeaderCapture();
    const from = () => header.fromAddress();
    const fromAllowed = () => {
      const address = from();
      return address === null || rules.maySendAs(principal.mailbox, address);
    };
    const recipients = session.envelope.rcptTo.map((r) => mailboxDirectoryName(r.address) as string);
    maildir.deliver(stream.pipe(header), recipients, () => !stream.sizeExceeded && stream.byteLength <= limit && fromAllowed()).then(
      (file) => {
        // With `rejectOversized`, smtp-server replies 552 itself when the size was exceeded.
        if (file === null && stream.sizeExceeded) return callback(null);
        if (file === null && stream.byteLength > limit) return callback(smtpReply(exchangeReplies.tooLarge));
        if (file === null) {
          // Exchange takes the data and refuses at its end: the From header is checked, not only the envelope.
          log.info({ from: from() }, 'send-as refused: the From header is not a sender the mailbox may use');
          return callback(smtpReply(exchangeReplies.sendAsDenied));
        }
        log.info({ file, recipients: recipients.length, bytes: stream.byteLength }, 'message stored');
        callback(null, `2.0.0 OK <${file}> queued`);
      },
      (err: unknown) => {
        log.error(errorFields(err), 'storing the message failed');
        stream.resume();
        callback(smtpReply(exchangeReplies.storeFailed));
      },
    );
  }

  // Greeted at once, like Exchange (no 100 ms early-talker wait, no reverse lookup): the benches' direct baseline.
  return greetPromptly(new SMTPServer({
    secure: false,
    key: opts.tls.keyPem,
    cert: opts.tls.certPem,
    name: 'localhost',
    banner: 'xoauth2-relay sandbox mailbox (Exchange Online look-alike)',
    authMethods: ['XOAUTH2'],
    authOptional: false,
    allowInsecureAuth: false, // RFC 4954 §4: no credentials before STARTTLS (Exchange says 538/504 alike)
    authRequiredMessage: exchangeReplies.authRequired,
    size: SANDBOX_MAX_MESSAGE_BYTES,
    rejectOversized: true,
    maxClients: 100,
    socketTimeout: 5 * 60_000,
    closeTimeout: 2_000, // close() is for tests and demo shut-down: don't hang 30 s on idle clients
    logger: false,
    disableReverseLookup: true,
    onAuth,
    onMailFrom,
    onRcptTo,
    onData,
    onClose: (session) => sessions.remove(session.id),
  }));
}
