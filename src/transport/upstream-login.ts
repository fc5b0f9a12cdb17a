/**
 * The upstream half of a device login, the same for IMAP and POP3: connect (TLS, verified), read the greeting,
 * only then ask the token service for a token (so an unreachable server never touches tokens), authenticate with
 * XOAUTH2; when the server refuses the token, report it to the token service (one forced refresh) and run the
 * whole login once more on a fresh connection. A second refusal is UPSTREAM_AUTH_REJECTED.
 */
import type { TLSSocket } from 'node:tls';
import type { AccessToken } from '../auth/token-service.js';
import { RelayError, isRelayError } from '../errors.js';
import { fingerprint, type Logger } from '../log.js';
import { UpstreamConnection, type UpstreamTarget } from './upstream-connect.js';

/** The part of the token services protocol code uses: "a valid token for this account now", and "it was refused". */
export interface TokenSource {
  accessTokenFor(account: string): Promise<AccessToken>;
  tokenRejected(account: string, token: string): Promise<AccessToken>;
}

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
  let refused: AccessToken | null = null;
  for (let attempt = 1; ; attempt += 1) {
    const conn = await UpstreamConnection.open(o.target, o.log);
    let token: AccessToken | null = null;
    try {
      await o.dialect.greet(conn);
      token = refused ? await o.tokens.tokenRejected(o.account, refused.token) : await o.tokens.accessTokenFor(o.account);
      const login = await o.dialect.authenticate(conn, token.mailbox, token.token);
      o.log.debug({ upstream: conn.where, mailbox: token.mailbox, tokenFingerprint: fingerprint(token.token), attempt }, 'upstream login succeeded');
      return { ...conn.release(), login, mailbox: token.mailbox };
    } catch (err) {
      conn.destroy();
      if (!isRelayError(err, 'UPSTREAM_AUTH_REJECTED') || !token) throw err;
      if (refused) throw new RelayError('UPSTREAM_AUTH_REJECTED', `${conn.where} refused a freshly refreshed token too: ${err.detail ?? ''}`, { cause: err });
      o.log.warn({ upstream: conn.where, reply: err.detail, tokenFingerprint: fingerprint(token.token) }, 'upstream refused the access token: refreshing it once and logging in again');
      refused = token;
    }
  }
}

/** The JSON of an XOAUTH2 error continuation (`+ eyJzdGF0dXMiOiI0MDEi…`), printable, for the log (it holds no secret). */
export function decodeErrorChallenge(line: string): string {
  const text = Buffer.from(line.replace(/^\+ ?/, ''), 'base64').toString('utf8');
  return text.replace(/[^\x20-\x7e]/g, '').slice(0, 300);
}
