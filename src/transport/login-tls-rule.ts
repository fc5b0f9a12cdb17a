/**
 * The one rule for a login over clear text, the same for SMTP AUTH, IMAP LOGIN/AUTHENTICATE and POP3 USER/PASS/AUTH:
 * - `tls: none`: accepted (the listener exists for legacy devices on a trusted network; there is no TLS to offer);
 * - `tls: starttls` / `auto` with `loginBeforeTls: refuse` (the default): refused until the device has started TLS,
 *   with the protocol's standard reply (TLS_REQUIRED in the error catalogue);
 * - `tls: starttls` / `auto` with `loginBeforeTls: allow`: accepted, TLS still offered;
 * - `tls: implicit`: the connection is TLS from the first byte, so the question never comes up.
 */
import type { LoginBeforeTls, TlsMode } from '../config/schema.js';

/** What a connection that is still plain text may do about logging in. */
export type PlainLogin = 'allowed' | 'allowed-tls-offered' | 'tls-first';

export function plainLoginRule(tls: TlsMode, loginBeforeTls: LoginBeforeTls): PlainLogin {
  if (tls === 'none' || tls === 'implicit') return 'allowed';
  return loginBeforeTls === 'allow' ? 'allowed-tls-offered' : 'tls-first';
}
