/** IMAP check with imapflow: log in with XOAUTH2 as the account's mailbox, open INBOX read-only, log out. */
import { ImapFlow } from 'imapflow';
import { RelayError } from '../errors.js';
import { upstreamTlsOptions } from '../transport/tls-options.js';
import type { TokenSource } from '../transport/upstream-login.js';

export interface ImapCheckOptions {
  account: string;
  tokens: TokenSource;
  host: string;
  port: number;
  extraCaPem: string | null;
}

async function attempt(o: ImapCheckOptions, mailbox: string, accessToken: string): Promise<string> {
  const client = new ImapFlow({
    host: o.host,
    port: o.port,
    secure: true,
    auth: { user: mailbox, accessToken },
    tls: upstreamTlsOptions(o.host, o.extraCaPem),
    logger: false,
    connectionTimeout: 15_000,
    greetingTimeout: 15_000,
  });
  client.on('error', () => undefined); // reported through the rejected promise below
  // A refused login leaves imapflow's socket open: close it, or a CLI process (doctor, test) never exits.
  await client.connect().catch((err: unknown) => {
    client.close();
    throw err;
  });
  try {
    const inbox = await client.mailboxOpen('INBOX', { readOnly: true });
    return `${o.host}:${o.port} accepted AUTHENTICATE XOAUTH2 for ${mailbox}; INBOX has ${inbox.exists} message${inbox.exists === 1 ? '' : 's'}`;
  } finally {
    await client.logout().catch(() => client.close());
  }
}

/** imapflow marks a refused login with `authenticationFailed`. */
const refused = (err: unknown) => Boolean((err as { authenticationFailed?: boolean }).authenticationFailed);

function failure(err: unknown, o: ImapCheckOptions): RelayError {
  const e = err as { responseText?: string; code?: string; message?: string };
  if (refused(err)) return new RelayError('UPSTREAM_AUTH_REJECTED', `${o.host}:${o.port}: ${e.responseText ?? e.message ?? 'authentication failed'}`, { cause: err });
  return new RelayError('UPSTREAM_UNAVAILABLE', `${o.host}:${o.port}: ${e.code ?? ''} ${e.responseText ?? e.message ?? ''}`.trim(), { cause: err });
}

export async function checkImap(o: ImapCheckOptions): Promise<string> {
  return o.tokens.withAccessToken(o.account, async (getToken, attempted) => {
    const token = await getToken();
    try {
      const done = await attempt(o, token.mailbox, token.token);
      return attempted === 2 ? `${done} (after one token refresh)` : done;
    } catch (err) {
      throw failure(err, o); // UPSTREAM_AUTH_REJECTED makes the interface refresh once and run again
    }
  });
}
