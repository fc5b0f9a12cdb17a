/**
 * The relay's IMAP login at the upstream, exactly as Microsoft documents it: after the `* OK` greeting, one line
 * `A1 AUTHENTICATE XOAUTH2 <base64>` (SASL-IR, RFC 4959). A refusal may first come as a continuation carrying
 * base64 JSON (`{"status":"401",…}`), which is answered with an empty line; then `A1 NO`. On `A1 OK` the
 * post-login capabilities come from the OK's response code, an untagged CAPABILITY, or else `A2 CAPABILITY`.
 */
import { RelayError } from '../errors.js';
import { buildXOAuth2 } from '../sasl/xoauth2.js';
import type { UpstreamConnection } from '../transport/upstream-connect.js';
import { decodeErrorChallenge, type UpstreamDialect } from '../transport/upstream-login.js';

const CAPABILITY_CODE = /^\S+ OK \[CAPABILITY ([^\]]*)\]/i;
/**
 * RFC 5530 codes of a refused AUTHENTICATE that say the credentials were refused; no code at all is what Exchange
 * sends (`NO AUTHENTICATE failed.`). Any other code (LIMIT, UNAVAILABLE, INUSE, SERVERBUG…) is not about the
 * token, and refreshing it would only load the identity platform.
 */
const TOKEN_CODES = new Set(['AUTHENTICATIONFAILED', 'AUTHORIZATIONFAILED', 'EXPIRED']);

/** The error for `A1 NO …`: a refused token (retried once with a refreshed one), or a refused session. */
export function imapRefusal(line: string, challenge: string): RelayError {
  const code = /^\S+ NO \[([A-Za-z-]+)/.exec(line)?.[1]?.toUpperCase();
  const detail = `${line.slice(0, 200)}${challenge ? ` ${challenge}` : ''}`;
  return code === undefined || TOKEN_CODES.has(code) ? new RelayError('UPSTREAM_AUTH_REJECTED', detail) : new RelayError('UPSTREAM_SESSION_REFUSED', detail);
}
const CAPABILITY_UNTAGGED = /^\* CAPABILITY (.*)$/i;

function words(text: string): string[] {
  return text.trim().split(/\s+/).filter(Boolean);
}

async function capabilities(conn: UpstreamConnection): Promise<string[]> {
  conn.send('A2 CAPABILITY');
  let found: string[] = [];
  for (;;) {
    const line = await conn.readLine();
    const untagged = CAPABILITY_UNTAGGED.exec(line);
    if (untagged) found = words(untagged[1]!);
    else if (/^A2 OK\b/i.test(line)) return found;
    else if (/^A2 (NO|BAD)\b/i.test(line)) throw new RelayError('UPSTREAM_PROTOCOL_ERROR', `${conn.where} refused CAPABILITY after login: ${line.slice(0, 200)}`);
    else if (/^\* BYE\b/i.test(line)) throw new RelayError('UPSTREAM_UNAVAILABLE', `${conn.where} said ${line.slice(0, 200)}`);
  }
}

/** Upstream login for IMAP; resolves the post-login capabilities. */
export const imapUpstreamDialect: UpstreamDialect<string[]> = {
  async greet(conn) {
    const line = await conn.readLine();
    if (/^\* OK\b/i.test(line)) return;
    if (/^\* BYE\b/i.test(line)) throw new RelayError('UPSTREAM_UNAVAILABLE', `${conn.where} greeted with ${line.slice(0, 200)}`);
    throw new RelayError('UPSTREAM_PROTOCOL_ERROR', `${conn.where} greeted with ${JSON.stringify(line.slice(0, 200))} (not an IMAP server?)`);
  },

  async authenticate(conn, mailbox, accessToken) {
    conn.sendSecret(`A1 AUTHENTICATE XOAUTH2 ${buildXOAuth2(mailbox, accessToken)}`, 'A1 AUTHENTICATE XOAUTH2 [secret]');
    let challenge = '';
    let caps: string[] | null = null;
    for (;;) {
      const line = await conn.readLine();
      if (line.startsWith('+')) {
        challenge = decodeErrorChallenge(line);
        conn.send(''); // the client's answer to an error challenge: an empty response (RFC 7628 §3.2.3)
        continue;
      }
      const untagged = CAPABILITY_UNTAGGED.exec(line);
      if (untagged) caps = words(untagged[1]!);
      else if (/^A1 OK\b/i.test(line)) {
        const code = CAPABILITY_CODE.exec(line);
        if (code) caps = words(code[1]!);
        break;
      } else if (/^A1 NO\b/i.test(line)) {
        throw imapRefusal(line, challenge);
      } else if (/^A1 BAD\b/i.test(line)) {
        throw new RelayError('UPSTREAM_PROTOCOL_ERROR', `${conn.where} answered AUTHENTICATE XOAUTH2 with ${line.slice(0, 200)}`);
      } else if (/^\* BYE\b/i.test(line)) {
        throw new RelayError('UPSTREAM_UNAVAILABLE', `${conn.where} said ${line.slice(0, 200)}`);
      }
    }
    return caps ?? (await capabilities(conn));
  },
};
