/**
 * SMTP submission for the sandbox mailbox, shaped like smtp.office365.com:587: plain connection,
 * STARTTLS before AUTH, XOAUTH2 only, the sender must be the authenticated mailbox, and Exchange's own
 * replies where a client (the relay's delivery worker) branches on them (docs/exchange-online.md §2, §6).
 * Accepted messages are streamed to every recipient's mailbox directory.
 */
import { SMTPServer, type SMTPServerAuthentication, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import type { Logger } from '../../log.js';
import { errorFields } from '../../log.js';
import type { AccessTokenChecker, MailboxPrincipal } from './token-check.js';
import { mailboxDirectoryName, type Maildir } from './maildir.js';

/** What the SMTP listener needs. */
export interface SmtpSubmissionOptions {
  tls: { certPem: string; keyPem: string };
  tokens: AccessTokenChecker;
  maildir: Maildir;
  logger: Logger;
}

/** Exchange Online's default message size limit (35 MB), advertised as `SIZE` (RFC 1870). */
export const SANDBOX_MAX_MESSAGE_BYTES = 35 * 1024 * 1024;
/** Exchange Online's recipient limit per message. */
const MAX_RECIPIENTS = 500;

/** Replies copied from Exchange Online, so the relay's reply classification meets the real texts. */
const exchangeReplies = {
  authFailed: { code: 535, text: '5.7.3 Authentication unsuccessful' },
  authRequired: '5.7.57 Client not authenticated to send mail',
  sendAsDenied: {
    code: 554,
    text: '5.2.0 STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied; Failed to process message due to a permanent exception with message Cannot submit message.',
  },
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

/** Creates (does not start) the submission server. */
export function createSmtpSubmission(opts: SmtpSubmissionOptions): SMTPServer {
  const { tokens, maildir, logger } = opts;

  function onAuth(
    auth: SMTPServerAuthentication,
    session: SMTPServerSession,
    callback: (err: Error | null | undefined, response?: { user: MailboxPrincipal }) => void,
  ): void {
    const log = logger.child({ protocol: 'smtp', connection: session.id, user: auth.username });
    tokens.checkCredentials(auth.username ?? '', auth.accessToken ?? '', 'smtp').then(
      (verdict) => {
        if (verdict.accepted) {
          log.info({ subject: verdict.principal.subject, kind: verdict.principal.kind }, 'authenticated');
          callback(null, { user: verdict.principal });
        } else {
          // Exchange answers a bad token with a final 535 (no RFC 7628-style 334 error challenge).
          log.info({ reason: verdict.reason }, 'authentication refused');
          callback(smtpReply(exchangeReplies.authFailed));
        }
      },
      (err: unknown) => {
        log.error(errorFields(err), 'token check failed');
        callback(smtpReply(exchangeReplies.authFailed));
      },
    );
  }

  function onRcptTo(address: { address: string }, session: SMTPServerSession, callback: (err?: Error | null) => void): void {
    if (session.envelope.rcptTo.length >= MAX_RECIPIENTS) return callback(smtpReply(exchangeReplies.tooManyRecipients));
    // Every recipient is "local" in the sandbox, but its address becomes a directory name.
    if (mailboxDirectoryName(address.address) === null) return callback(smtpReply(exchangeReplies.badRecipient));
    callback();
  }

  function onData(stream: SMTPServerDataStream, session: SMTPServerSession, callback: (err?: Error | null, message?: string) => void): void {
    const principal = principalOf(session);
    const log = logger.child({ protocol: 'smtp', connection: session.id, mailbox: principal.mailbox });
    const sender = session.envelope.mailFrom ? session.envelope.mailFrom.address.toLowerCase() : '';
    if (sender !== principal.mailbox) {
      // Exchange accepts MAIL FROM and refuses at the end of DATA; the relay must meet it where Exchange puts it.
      log.info({ sender }, 'send-as refused: sender is not the authenticated mailbox');
      stream.resume();
      return callback(smtpReply(exchangeReplies.sendAsDenied));
    }
    const recipients = session.envelope.rcptTo.map((r) => mailboxDirectoryName(r.address) as string);
    maildir.deliver(stream, recipients, () => !stream.sizeExceeded).then(
      (file) => {
        // With `rejectOversized`, smtp-server replies 552 itself when the size was exceeded.
        if (file === null) return callback(null);
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

  return new SMTPServer({
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
    onAuth,
    onRcptTo,
    onData,
  });
}
