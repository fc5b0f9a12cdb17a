/**
 * SASL PLAIN (RFC 4616): `base64([authzid] NUL authcid NUL passwd)`, as sent after
 * `AUTH PLAIN` (SMTP, RFC 4954), `AUTHENTICATE PLAIN` (IMAP) or `AUTH PLAIN` (POP3, RFC 5034).
 * Pure functions. The input carries a password: never log it, nor what these functions return.
 */

/** One PLAIN message. */
export interface PlainCredentials {
  /** The identity to act as; empty when the client sent none (the usual case). */
  authzid: string;
  /** The authentication identity (authcid): the device's user name. */
  username: string;
  password: string;
}

/**
 * Longest field accepted, in UTF-8 bytes. RFC 4616 §2 asks servers to take at least 255; four times
 * that covers any real device and keeps a hostile client from handing us megabytes to decode.
 */
export const MAX_SASL_FIELD_BYTES = 1024;
// Three fields and two NULs, in base64.
const MAX_PLAIN_BASE64 = Math.ceil((3 * MAX_SASL_FIELD_BYTES + 2) / 3) * 4;

// C0 controls, DEL and C1 controls (U+0085 ends a line for many parsers): a user name is logged and
// shown on the admin page, and these would let a client forge log lines. smtp-server rejects the same set.
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/;
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * The parts of a PLAIN response, or null when it is not one: not strict base64, not UTF-8,
 * not exactly two NULs, an empty user name or password, a control character in the user name or
 * authzid, or a field longer than `MAX_SASL_FIELD_BYTES`. The password may hold any character but NUL.
 */
export function decodePlain(base64: string): PlainCredentials | null {
  if (base64.length > MAX_PLAIN_BASE64) return null;
  const text = decodeSaslText(base64);
  if (text === null) return null;
  const fields = text.split('\u0000');
  if (fields.length !== 3) return null;
  const [authzid, username, password] = fields as [string, string, string];
  if (!isAcceptableIdentity(username) || (authzid !== '' && !isAcceptableIdentity(authzid))) return null;
  // RFC 4616 §2: passwd = 1*SAFE, so an empty password is malformed, not merely wrong.
  if (password === '' || Buffer.byteLength(password, 'utf8') > MAX_SASL_FIELD_BYTES) return null;
  return { authzid, username, password };
}

/**
 * A user name (authcid or authzid) the relay will look up and log: non-empty, no control
 * characters, at most `MAX_SASL_FIELD_BYTES`.
 */
export function isAcceptableIdentity(name: string): boolean {
  return name !== '' && !CONTROL_CHARACTERS.test(name) && Buffer.byteLength(name, 'utf8') <= MAX_SASL_FIELD_BYTES;
}

/**
 * Base64 → UTF-8 text for SASL responses, or null. Strict where Node's decoder is lenient:
 * only the base64 alphabet, no white space, no bits after the last byte, and UTF-8 that decodes
 * without replacement characters (a byte-order mark is kept, not dropped). Missing `=` padding is
 * accepted because some device firmware omits it and it changes nothing. Shared with `login.ts`.
 */
export function decodeSaslText(base64: string): string | null {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(base64)) return null;
  const unpadded = base64.replace(/=+$/, '');
  // A lone sixth bit group cannot encode a byte; padding must make the length a multiple of 4.
  if (unpadded.length % 4 === 1) return null;
  if (base64.length !== unpadded.length && base64.length % 4 !== 0) return null;
  const bytes = Buffer.from(unpadded, 'base64');
  if (bytes.toString('base64').replace(/=+$/, '') !== unpadded) return null;
  try {
    return UTF8.decode(bytes);
  } catch {
    return null;
  }
}
