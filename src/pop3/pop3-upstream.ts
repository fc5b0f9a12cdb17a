/**
 * The relay's POP3 login at the upstream, as Microsoft documents it: after the `+OK` greeting, `AUTH XOAUTH2`,
 * the server's `+` continuation, then the XOAUTH2 string on its own line (RFC 5034 without an initial response).
 * Success is `+OK`; a refusal may first come as a continuation carrying base64 JSON, answered with an empty line,
 * then `-ERR`.
 */
import { RelayError } from '../errors.js';
import { buildXOAuth2 } from '../sasl/xoauth2.js';
import { decodeErrorChallenge, type UpstreamDialect } from '../transport/upstream-login.js';

const isContinuation = (line: string): boolean => line === '+' || line.startsWith('+ ');

/**
 * RFC 3206 / RFC 2449 response codes of a refused login that are not about the token: the mailbox is in use,
 * logins come too often, or the server is in trouble. `[AUTH]` or no code (Exchange's
 * `-ERR Authentication failure…`) is a refused token.
 */
const SESSION_CODES = new Set(['IN-USE', 'LOGIN-DELAY', 'SYS/TEMP', 'SYS/PERM']);

/** The error for a `-ERR` after the XOAUTH2 string. */
export function pop3Refusal(line: string, challenge: string): RelayError {
  const code = /^-ERR \[([A-Za-z/-]+)/i.exec(line)?.[1]?.toUpperCase();
  const detail = `${line.slice(0, 200)}${challenge ? ` ${challenge}` : ''}`;
  return code !== undefined && SESSION_CODES.has(code) ? new RelayError('UPSTREAM_SESSION_REFUSED', detail) : new RelayError('UPSTREAM_AUTH_REJECTED', detail);
}

export const pop3UpstreamDialect: UpstreamDialect<null> = {
  async greet(conn) {
    const line = await conn.readLine();
    if (/^\+OK\b/i.test(line)) return;
    if (/^-ERR\b/i.test(line)) throw new RelayError('UPSTREAM_UNAVAILABLE', `${conn.where} greeted with ${line.slice(0, 200)}`);
    throw new RelayError('UPSTREAM_PROTOCOL_ERROR', `${conn.where} greeted with ${JSON.stringify(line.slice(0, 200))} (not a POP3 server?)`);
  },

  async authenticate(conn, mailbox, accessToken) {
    conn.send('AUTH XOAUTH2');
    const ready = await conn.readLine();
    if (!isContinuation(ready)) {
      throw new RelayError('UPSTREAM_PROTOCOL_ERROR', `${conn.where} answered AUTH XOAUTH2 with ${ready.slice(0, 200)}`);
    }
    conn.sendSecret(buildXOAuth2(mailbox, accessToken), '[XOAUTH2 secret]');
    let challenge = '';
    for (;;) {
      const line = await conn.readLine();
      if (/^\+OK\b/i.test(line)) return null;
      if (isContinuation(line)) {
        challenge = decodeErrorChallenge(line);
        conn.send(''); // the answer to an error challenge is an empty response
        continue;
      }
      if (/^-ERR\b/i.test(line)) throw pop3Refusal(line, challenge);
      throw new RelayError('UPSTREAM_PROTOCOL_ERROR', `${conn.where} answered the XOAUTH2 string with ${JSON.stringify(line.slice(0, 200))}`);
    }
  },
};
