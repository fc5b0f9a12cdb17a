/**
 * SMTP check: EHLO, STARTTLS and AUTH XOAUTH2 against the account's upstream with its real token (nodemailer's
 * verify), one forced refresh if the token is refused, and a real message only when asked (`--send-to`).
 */
import { createTransport } from 'nodemailer';
import type { TokenSource } from '../transport/upstream-login.js';
import { RelayError } from '../errors.js';
import { upstreamTlsOptions } from '../transport/tls-options.js';
import { isTokenRejection, permanentFailureCode } from '../smtp/delivery/exchange-replies.js';

export interface SmtpCheckOptions {
  account: string;
  tokens: TokenSource;
  host: string;
  port: number;
  extraCaPem: string | null;
  sendTo?: string;
}

async function attempt(o: SmtpCheckOptions, mailbox: string, accessToken: string): Promise<string> {
  const transport = createTransport({
    host: o.host,
    port: o.port,
    secure: false,
    requireTLS: true,
    connectionTimeout: 15_000,
    greetingTimeout: 15_000,
    tls: upstreamTlsOptions(o.host, o.extraCaPem),
    auth: { type: 'OAuth2', user: mailbox, accessToken },
  });
  try {
    await transport.verify();
    if (!o.sendTo) return `${o.host}:${o.port} accepted STARTTLS and AUTH XOAUTH2 for ${mailbox} (no message sent; --send-to sends one)`;
    const info = await transport.sendMail({ from: mailbox, to: o.sendTo, subject: 'xoauth2-relay test message', text: `Sent by \`xoauth2-relay test ${o.account}\` through ${o.host}:${o.port}.` });
    return `${o.host}:${o.port} accepted a test message for ${o.sendTo}: ${info.response}`;
  } finally {
    transport.close();
  }
}

function failure(err: unknown, host: string, port: number): RelayError {
  const e = err as { response?: string; code?: string; message?: string };
  if (e.response) {
    const code = /^5/.test(e.response) ? (isTokenRejection(e.response) ? 'UPSTREAM_TOKEN_REJECTED' : permanentFailureCode(e.response)) : 'UPSTREAM_TEMPORARY';
    return new RelayError(code, `${host}:${port} answered: ${e.response}`, { cause: err });
  }
  return new RelayError('UPSTREAM_UNREACHABLE', `${host}:${port}: ${e.code ?? ''} ${e.message ?? ''}`.trim(), { cause: err });
}

export async function checkSmtp(o: SmtpCheckOptions): Promise<string> {
  return o.tokens.withAccessToken(o.account, async (getToken, attempted) => {
    const token = await getToken();
    try {
      const done = await attempt(o, token.mailbox, token.token);
      return attempted === 2 ? `${done} (after one token refresh)` : done;
    } catch (err) {
      throw failure(err, o.host, o.port); // UPSTREAM_TOKEN_REJECTED makes the interface refresh once and run again
    }
  });
}
