/**
 * SASL LOGIN (draft-murchison-sasl-login): the server prompts for the user name and the password,
 * the client answers each with one base64 line. Obsolete, but it is what many printers and scanners
 * speak. Pure functions; an answer to the password prompt is a secret and must never be logged.
 */
import { decodeSaslText, isAcceptableIdentity, MAX_SASL_FIELD_BYTES } from './plain.js';

/** base64("Username:"), the first challenge (sent after `334 ` in SMTP, `+ ` in IMAP and POP3). */
export const LOGIN_USERNAME_PROMPT = 'VXNlcm5hbWU6';
/** base64("Password:"), the second challenge. */
export const LOGIN_PASSWORD_PROMPT = 'UGFzc3dvcmQ6';

/** Which prompt a LOGIN answer replies to; the two are checked differently. */
export type LoginField = 'username' | 'password';

const MAX_LOGIN_BASE64 = Math.ceil(MAX_SASL_FIELD_BYTES / 3) * 4;

/**
 * The text of one LOGIN answer, or null when it is unusable: not strict base64, not UTF-8, empty,
 * holding a NUL, or longer than `MAX_SASL_FIELD_BYTES`. A user name must moreover hold no control
 * characters (it is logged); a password may hold anything but NUL.
 * The caller handles `*` (the client cancelling, RFC 4954 §4) before calling this.
 */
export function decodeLoginField(base64: string, field: LoginField): string | null {
  if (base64.length > MAX_LOGIN_BASE64) return null;
  const text = decodeSaslText(base64);
  if (text === null || text === '') return null;
  if (field === 'username') return isAcceptableIdentity(text) ? text : null;
  // A NUL would make the password mean something else to C code upstream and to PLAIN.
  if (text.includes('\u0000') || Buffer.byteLength(text, 'utf8') > MAX_SASL_FIELD_BYTES) return null;
  return text;
}
