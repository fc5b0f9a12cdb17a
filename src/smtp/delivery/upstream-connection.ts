/**
 * One SMTP submission connection to Exchange Online, with nodemailer's `SMTPConnection` (lib/smtp-connection, the
 * class nodemailer's own pool is built on) turned into promises: connect (greeting, EHLO, STARTTLS required, TLS
 * 1.2+ verified, EHLO again), log in once with SASL XOAUTH2, then send messages one after another, with RSET before
 * each message after the first.
 *
 * What nodemailer 7 does here, read from its source:
 * - `send(envelope, stream)`: MAIL FROM (with `SIZE=` checked against EHLO's SIZE before any byte is sent, and
 *   `BODY=8BITMIME`), RCPT TO for each address (PIPELINING when offered), DATA; the stream goes through DataStream,
 *   which only dot-stuffs and turns bare LF into CRLF (RFC 5321 §4.5.2); nothing is buffered whole. Addresses are
 *   passed as they are (no addressparser at this layer).
 * - `login({ oauth2 })` with an XOAuth2 that holds only an access token: it can only hand back that token. On a
 *   failed XOAUTH2 exchange Exchange first sends a `334` JSON challenge; nodemailer answers it with an empty line and
 *   tries once more with the same token, then reports the final `535` as EAUTH. Refreshing is the token service's.
 * - Its pool (lib/smtp-pool) sends no RSET and closes the connection after any failed message. Here a connection
 *   that got an SMTP reply to a failed message is kept (RFC 5321 §4.1.1.5: RSET makes any transaction state clean),
 *   so one refused message does not cost the next ones a new TLS handshake and AUTH.
 * - A socket error, timeout or close emits 'error'/'end' and leaves the pending callback uncalled: every operation
 *   here also ends when the connection does.
 */
import { createReadStream } from 'node:fs';
import SMTPConnection from 'nodemailer/lib/smtp-connection/index.js';
import XOAuth2 from 'nodemailer/lib/xoauth2/index.js';
import { upstreamTlsOptions } from '../../transport/tls-options.js';
import { outcomeOfError, outcomeOfSuccess, type SendInfoLike, type SendOutcome } from './send-outcome.js';
import { defaultDeliveryTimeouts, type UpstreamTarget } from './upstream-sender.js';

/** One message to submit on an authenticated connection. */
export interface Submission {
  mailFrom: string;
  rcptTo: string[];
  size: number;
  /** Spool file with the message bytes. */
  messagePath: string;
}

/** How long a QUIT may wait for its reply before the socket is closed anyway. */
const QUIT_WAIT_MS = 2_000;

interface SmtpErrorLike {
  code?: string;
  response?: string;
  responseCode?: number;
  message?: string;
}

export class UpstreamConnection {
  /** Resolves when the connection is gone (closed by either side, or failed): its slot is free again. */
  readonly ended: Promise<void>;
  /** Messages sent on it (whatever their outcome). */
  messages = 0;
  private readonly smtp: SMTPConnection;
  private isEnded = false;
  private lastError: Error | null = null;
  private readonly endListeners = new Set<() => void>();

  constructor(target: UpstreamTarget) {
    const timeouts = {
      connectionMs: target.timeouts?.connectionMs ?? defaultDeliveryTimeouts.connectionMs,
      greetingMs: target.timeouts?.greetingMs ?? defaultDeliveryTimeouts.greetingMs,
      socketMs: target.timeouts?.socketMs ?? defaultDeliveryTimeouts.socketMs,
    };
    this.smtp = new SMTPConnection({
      host: target.host,
      port: target.port,
      secure: false,
      requireTLS: true,
      tls: upstreamTlsOptions(target.host, target.extraCaPem),
      connectionTimeout: timeouts.connectionMs,
      greetingTimeout: timeouts.greetingMs,
      socketTimeout: timeouts.socketMs,
      // nodemailer's DNS lookup has its own limit (30 s by default); keep it within the connect one.
      dnsTimeout: timeouts.connectionMs,
      logger: false,
      debug: false,
    });
    // Always listened to: an 'error' with no listener would throw from inside nodemailer's socket handlers.
    this.smtp.on('error', (err) => (this.lastError = err));
    this.ended = new Promise<void>((resolve) => {
      this.smtp.once('end', () => {
        this.isEnded = true;
        resolve();
        for (const listener of this.endListeners) listener();
      });
    });
  }

  /** True while the connection is open and nothing failed below SMTP. */
  get usable(): boolean {
    return !this.isEnded;
  }

  /** Greeting, EHLO, STARTTLS, EHLO. Rejects with nodemailer's error (ECONNECTION, ETIMEDOUT, ETLS, …). */
  connect(): Promise<void> {
    return this.operation<void>((done) => this.smtp.connect(() => done(null)), 'CONN');
  }

  /** AUTH XOAUTH2 as `mailbox` (RFC 7628 / Microsoft's XOAUTH2). Rejects with EAUTH and Exchange's reply. */
  login(mailbox: string, accessToken: string): Promise<void> {
    const oauth2 = new XOAuth2({ user: mailbox, accessToken });
    return this.operation<void>((done) => this.smtp.login({ oauth2 } as SMTPConnection.AuthenticationOAuth2, (err) => done(err ?? null)), 'AUTH XOAUTH2');
  }

  /**
   * RSET (RFC 5321 §4.1.1.5) before a message on a used connection. It also probes the connection: one the server
   * dropped while idle fails here, before the message's transaction starts, and costs the message nothing.
   */
  async reset(): Promise<boolean> {
    if (!this.usable) return false;
    try {
      await this.operation<void>((done) => this.smtp.reset((err) => done(err ?? null)), 'RSET');
      return true;
    } catch {
      return false;
    }
  }

  /** Sends one message; never throws. `reusable`: whether the connection may carry another message. */
  async send(submission: Submission): Promise<{ outcome: SendOutcome; reusable: boolean }> {
    this.messages += 1;
    const message = createReadStream(submission.messagePath);
    try {
      const envelope = { from: submission.mailFrom, to: submission.rcptTo, size: submission.size, use8BitMime: true };
      const info = await this.operation<SendInfoLike>((done) => this.smtp.send(envelope as SMTPConnection.Envelope, message, (err, sent) => done(err, sent)), 'DATA');
      return { outcome: outcomeOfSuccess(info), reusable: this.usable };
    } catch (err) {
      return { outcome: outcomeOfError(err), reusable: this.usable && reusableAfter(err as SmtpErrorLike) };
    } finally {
      message.destroy();
    }
  }

  /** QUIT (RFC 5321 §4.1.1.10), closing the socket if no reply comes soon. */
  quit(): void {
    if (!this.usable) return;
    const force = setTimeout(() => this.close(), QUIT_WAIT_MS);
    force.unref();
    this.endListeners.add(() => clearTimeout(force));
    try {
      this.smtp.quit();
    } catch {
      this.close();
    }
  }

  /** Closes at once (a failed login, a connection that must not be used again). */
  close(): void {
    this.smtp.close();
  }

  /** Runs one nodemailer call; settles with its callback, or rejects when the connection ends first. */
  private operation<T>(start: (done: (err: Error | null, value?: T) => void) => void, command: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const onEnd = () => finish(this.lastError ?? Object.assign(new Error('Connection closed unexpectedly'), { code: 'ECONNECTION', command }));
      const finish = (err: Error | null, value?: T) => {
        if (settled) return;
        settled = true;
        this.endListeners.delete(onEnd);
        if (err) reject(err);
        else resolve(value as T);
      };
      if (this.isEnded) return onEnd();
      this.endListeners.add(onEnd);
      try {
        start(finish);
      } catch (err) {
        finish(err instanceof Error ? err : new Error(String(err)));
      }
    });
  }
}

/**
 * After a failed message: may the connection carry the next one (after RSET)? Only when the server answered with an
 * SMTP reply at the envelope or after the data, and that reply does not end the session: `421` closes the channel
 * (RFC 5321 §3.8; Exchange's 421 4.7.x throttling) and `432 4.3.2` is Exchange's per-mailbox connection limit. A
 * failure without a reply (network, timeout, a broken spool file mid-DATA) leaves the session in an unknown state.
 */
export function reusableAfter(err: SmtpErrorLike): boolean {
  // nodemailer's own size check against EHLO's SIZE, before MAIL FROM: nothing was sent.
  if (err.code === 'EMESSAGE' && !err.response && /larger than allowed/i.test(err.message ?? '')) return true;
  const code = err.responseCode;
  if (code === undefined || code < 400 || code > 599) return false;
  if (code === 421 || code === 432) return false;
  return err.code === 'EENVELOPE' || err.code === 'EMESSAGE';
}
