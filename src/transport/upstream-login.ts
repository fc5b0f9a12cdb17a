/**
 * The upstream half of a device login, the same for IMAP and POP3: connect (TLS, verified), read the greeting,
 * only then ask for a token (so an unreachable server never touches tokens), authenticate with XOAUTH2. The
 * token services' one interface (auth/account-tokens.ts) runs it a second time on a fresh connection with a
 * refreshed token when the server refused the first; a second refusal is UPSTREAM_AUTH_REJECTED.
 */
import type { TLSSocket } from 'node:tls';
import type { AccountTokens } from '../auth/account-tokens.js';
import { RelayError, isRelayError } from '../errors.js';
import { fingerprint, type Logger } from '../log.js';
import { UpstreamConnection, type UpstreamTarget } from './upstream-connect.js';

/** The part of the token services protocol code uses. */
export type TokenSource = AccountTokens;

/**
 * One protocol's upstream login. `authenticate` throws RelayError UPSTREAM_AUTH_REJECTED when the server refused
 * the token (the only failure that is retried), and UPSTREAM_PROTOCOL_ERROR / UPSTREAM_UNAVAILABLE otherwise.
 */
export interface UpstreamDialect<T> {
  greet(conn: UpstreamConnection): Promise<void>;
  authenticate(conn: UpstreamConnection, mailbox: string, accessToken: string): Promise<T>;
}

export interface UpstreamSession<T> {
  socket: TLSSocket;
  /** Bytes the server sent after its login reply (forwarded to the device first). */
  leftover: Buffer;
  /** What the dialect's `authenticate` returned (IMAP: the post-login capabilities). */
  login: T;
  mailbox: string;
}

export interface OpenUpstreamOptions<T> {
  account: string;
  tokens: TokenSource;
  target: UpstreamTarget;
  dialect: UpstreamDialect<T>;
  log: Logger;
}

/** Logs in upstream for `account`; see the file comment for the retry rule. */
export async function openUpstreamSession<T>(o: OpenUpstreamOptions<T>): Promise<UpstreamSession<T>> {
  return o.tokens.withAccessToken(o.account, async (getToken, attempt) => {
    const conn = await UpstreamConnection.open(o.target, o.log);
    let fingerprinted = '';
    try {
      await o.dialect.greet(conn);
      const token = await getToken();
      fingerprinted = fingerprint(token.token);
      const login = await o.dialect.authenticate(conn, token.mailbox, token.token);
      o.log.debug({ upstream: conn.where, mailbox: token.mailbox, tokenFingerprint: fingerprinted, attempt }, 'upstream login succeeded');
      return { ...conn.release(), login, mailbox: token.mailbox };
    } catch (err) {
      conn.destroy();
      if (!isRelayError(err, 'UPSTREAM_AUTH_REJECTED')) throw err;
      if (attempt === 2) throw new RelayError('UPSTREAM_AUTH_REJECTED', `${conn.where} refused a freshly refreshed token too: ${err.detail ?? ''}`, { cause: err });
      o.log.warn({ upstream: conn.where, reply: err.detail, tokenFingerprint: fingerprinted }, 'upstream refused the access token: refreshing it once and logging in again');
      throw err;
    }
  });
}

/** The JSON of an XOAUTH2 error continuation (`+ eyJzdGF0dXMiOiI0MDEi…`), printable, for the log (it holds no secret). */
export function decodeErrorChallenge(line: string): string {
  const text = Buffer.from(line.replace(/^\+ ?/, ''), 'base64').toString('utf8');
  return text.replace(/[^\x20-\x7e]/g, '').slice(0, 300);
}
