/**
 * One SMTP submission to Exchange Online with nodemailer: STARTTLS required (TLS 1.2+, certificate checked
 * against the system roots plus an optional extra CA), SASL XOAUTH2 with an access token from the token
 * service, the message streamed from its spool file.
 *
 * What nodemailer 7 does here, read from its source:
 * - `raw: <stream>`: lib/mime-node pipes the stream as is into lib/smtp-connection's DataStream, which only
 *   dot-stuffs and turns bare LF into CRLF (RFC 5321 §4.5.2); nothing is buffered whole, and back-pressure
 *   runs from the socket back to the file.
 * - `auth: { type: 'OAuth2', user, accessToken }` with no refreshToken, clientSecret, serviceClient or
 *   provisionCallback: lib/xoauth2 `getToken` can only hand back the token it was given; it never calls a
 *   token endpoint. On a failed XOAUTH2 exchange Exchange first sends a `334` JSON challenge; nodemailer answers
 *   it with an empty line and then tries once more with that same token (a "renewal" that cannot renew), and
 *   reports the final `535` as EAUTH. Refreshing is ours: the worker asks the token service, once.
 * - `envelope.size`: sent as `SIZE=` and checked against the size in EHLO before any byte of DATA
 *   (EMESSAGE "larger than allowed"), so a too-large scan is refused without uploading 40 MB first.
 * - A new connection per message (no pool): each send authenticates with the token current at its start.
 */
import { createReadStream } from 'node:fs';
import { createTransport } from 'nodemailer';
import { upstreamTlsOptions } from '../../transport/tls-options.js';
import type Mail from 'nodemailer/lib/mailer/index.js';
import type SMTPTransport from 'nodemailer/lib/smtp-transport/index.js';
import { outcomeOfError, outcomeOfSuccess, type SendInfoLike, type SendOutcome } from './send-outcome.js';

export interface UpstreamTarget {
  host: string;
  port: number;
  /** Extra CA (PEM) trusted besides the system roots (upstreamTls.extraCaFile): tests, private peers. */
  extraCaPem: string | null;
  /**
   * Socket timeouts in ms; `defaultDeliveryTimeouts` where absent. Never nodemailer's own (2 min connect, 10 min
   * idle): a server that stops answering mid-DATA (no FIN, no RST) held all of a mailbox's slots for 10 minutes.
   */
  timeouts?: { connectionMs?: number; greetingMs?: number; socketMs?: number };
}

/** smtp.upstream's defaults: connect 30 s; greeting, each reply and progress while sending 60 s. */
export const defaultDeliveryTimeouts = { connectionMs: 30_000, greetingMs: 60_000, socketMs: 60_000 } as const;

/**
 * The timeouts of smtp.upstream: `socketMs` is the socket's inactivity limit, which covers a silent reply and
 * a stalled DATA alike (a server that stops reading stops the writes, and so all activity).
 */
export function deliveryTimeouts(upstream: { connectTimeoutSeconds: number; stallTimeoutSeconds: number }): Required<NonNullable<UpstreamTarget['timeouts']>> {
  const stallMs = upstream.stallTimeoutSeconds * 1000;
  return { connectionMs: upstream.connectTimeoutSeconds * 1000, greetingMs: stallMs, socketMs: stallMs };
}

export interface Submission {
  /** XOAUTH2 `user=`: the account's mailbox. */
  mailbox: string;
  accessToken: string;
  mailFrom: string;
  rcptTo: string[];
  size: number;
  /** Spool file with the message bytes. */
  messagePath: string;
}

/** Sends one message; never throws: every result, good or bad, is a SendOutcome. */
export async function submitToUpstream(target: UpstreamTarget, submission: Submission): Promise<SendOutcome> {
  const options: SMTPTransport.Options = {
    host: target.host,
    port: target.port,
    secure: false,
    requireTLS: true,
    tls: upstreamTlsOptions(target.host, target.extraCaPem),
    auth: { type: 'OAuth2', user: submission.mailbox, accessToken: submission.accessToken },
    connectionTimeout: target.timeouts?.connectionMs ?? defaultDeliveryTimeouts.connectionMs,
    greetingTimeout: target.timeouts?.greetingMs ?? defaultDeliveryTimeouts.greetingMs,
    socketTimeout: target.timeouts?.socketMs ?? defaultDeliveryTimeouts.socketMs,
    // nodemailer's DNS lookup has its own limit (30 s by default); keep it within the connect one.
    dnsTimeout: target.timeouts?.connectionMs ?? defaultDeliveryTimeouts.connectionMs,
    logger: false,
    debug: false,
  };
  const transport = createTransport(options);
  const message = createReadStream(submission.messagePath);
  try {
    // Address objects, not strings: strings would go through addressparser (lib/mime-node `_parseAddresses`),
    // which may rewrite what the device sent. `size` and `use8BitMime` are read by lib/smtp-connection
    // `_setEnvelope`; @types/nodemailer knows neither, nor address objects here.
    const envelope = {
      from: submission.mailFrom ? { name: '', address: submission.mailFrom } : '',
      to: submission.rcptTo.map((address) => ({ name: '', address })),
      size: submission.size,
      use8BitMime: true,
    };
    const info = await transport.sendMail({ envelope: envelope as unknown as Mail.Envelope, raw: message });
    return outcomeOfSuccess(info as SendInfoLike);
  } catch (err) {
    return outcomeOfError(err);
  } finally {
    message.destroy();
    transport.close();
  }
}
