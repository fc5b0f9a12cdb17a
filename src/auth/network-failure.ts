/**
 * One wording for "the identity platform could not be reached": the host and the cause class (DNS, refused,
 * timeout, reset, TLS/certificate, HTTP status), so `login`, `test`, the admin page and the log describe the
 * same failure the same way. Works on the text msal-node's network errors carry (our identity-http.ts puts the
 * Node error code and message into it).
 */

export type NetworkCause = 'dns' | 'refused' | 'timeout' | 'reset' | 'tls' | 'http' | 'unreachable' | 'other';

const causes: ReadonlyArray<{ cause: NetworkCause; pattern: RegExp; words: string }> = [
  { cause: 'dns', pattern: /ENOTFOUND|EAI_AGAIN|getaddrinfo/i, words: 'its name does not resolve (DNS)' },
  { cause: 'refused', pattern: /ECONNREFUSED/i, words: 'the connection was refused (nothing listens there, or a firewall rejects it)' },
  { cause: 'timeout', pattern: /timeout|ETIMEDOUT|timed out/i, words: 'it did not answer in time (timeout: network, proxy or firewall)' },
  { cause: 'reset', pattern: /ECONNRESET|socket hang up|EPIPE/i, words: 'the connection was cut (reset)' },
  { cause: 'tls', pattern: /certificate|self[- ]signed|altnames|SSL|TLS|CERT_/i, words: 'TLS failed: its certificate is not trusted or does not match (a TLS-inspecting proxy needs identity.extraCaFile)' },
  { cause: 'http', pattern: /HTTP \d{3}/, words: 'it answered with a page that is not the identity platform\'s (a proxy or load balancer error)' },
  { cause: 'unreachable', pattern: /EHOSTUNREACH|ENETUNREACH/i, words: 'no route to it (network unreachable)' },
];

/** The cause class of a network failure's text. */
export function networkCause(text: string): NetworkCause {
  return causes.find((c) => c.pattern.test(text))?.cause ?? 'other';
}

/** "the identity platform (login.microsoftonline.com) could not be reached: its name does not resolve (DNS)". */
export function describeNetworkFailure(text: string, host?: string): string {
  const found = causes.find((c) => c.pattern.test(text));
  const where = host ? ` (${host})` : '';
  const detail = found ? found.words : `network failure: ${text.replace(/\s+/g, ' ').trim().slice(0, 160)}`;
  return `the identity platform${where} could not be reached: ${detail}`;
}
