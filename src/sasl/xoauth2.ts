/**
 * SASL XOAUTH2 (Google's and Microsoft's bearer-token mechanism, the predecessor of RFC 7628 OAUTHBEARER).
 * Pure functions: the string is a secret (it carries the access token) and must never be logged.
 */

const SOH = '\x01';

/** `base64("user=" + mailbox + ^A + "auth=Bearer " + token + ^A^A)`, as Microsoft documents it. */
export function buildXOAuth2(mailbox: string, accessToken: string): string {
  return Buffer.from(`user=${mailbox}${SOH}auth=Bearer ${accessToken}${SOH}${SOH}`, 'utf8').toString('base64');
}

/** The parts of a client's XOAUTH2 response, or null when it is not well formed. */
export function parseXOAuth2(base64: string): { user: string; token: string } | null {
  const text = Buffer.from(base64, 'base64').toString('utf8');
  if (!text.endsWith(SOH + SOH)) return null;
  const fields = text.slice(0, -2).split(SOH);
  let user: string | undefined;
  let token: string | undefined;
  for (const field of fields) {
    if (field.startsWith('user=')) user = field.slice(5);
    else if (/^auth=Bearer /i.test(field)) token = field.slice('auth=Bearer '.length);
  }
  return user && token ? { user, token } : null;
}
