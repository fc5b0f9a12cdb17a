/**
 * Why a device's TLS handshake failed, in words an operator can act on: from the ClientHello the device sent (when
 * the relay saw it) and the error OpenSSL gave. The reason and the offered version are small fixed sets, so they
 * can be metric labels. Pure: the listener logs and counts what this returns.
 */
import { highestOffered, versionName, type ClientHello } from './client-hello.js';

/** How the failed handshake began: TLS from the first byte (implicit or detected by `auto`), or after STARTTLS/STLS. */
export type TlsStage = 'implicit' | 'auto' | 'starttls';

export type TlsFailureReason = 'version-too-old' | 'no-shared-cipher' | 'certificate-rejected' | 'not-tls' | 'timeout' | 'closed' | 'other';

export interface TlsFailure {
  reason: TlsFailureReason;
  /**
   * Highest version the device offered: `tls1.0` … `tls1.3`, `ssl3`, `sslv2-hello`, `none` (nothing sent), `unknown`;
   * `below-tls1.2` / `below-tls1.0` when only OpenSSL's error says so (SMTP STARTTLS).
   */
  offered: string;
  /** One sentence: what the device did and what to change. */
  explanation: string;
}

export interface TlsFailureInput {
  hello: ClientHello | null;
  /** Whether any byte arrived before the failure; `unknown` where the relay cannot see them (smtp-server's STARTTLS). */
  sentBytes: boolean | 'unknown';
  error: (Error & { code?: string }) | null;
  timedOut: boolean;
  /** `tls.legacyDevices` of the listener: the lowest version it accepts follows from it. */
  legacyDevices: boolean;
}

const LEGACY_FIX = 'set tls.legacyDevices: true (device-facing listeners only; the upstream stays TLS 1.2+)';

/** `tls1.2` for 0x0303: a label value. */
export function offeredLabel(hello: ClientHello | null, sentBytes: boolean | 'unknown'): string {
  if (!hello) return sentBytes === false ? 'none' : 'unknown';
  if (hello.sslv2Format) return 'sslv2-hello';
  const version = highestOffered(hello);
  if (version === 0x0300) return 'ssl3';
  if (version >= 0x0301 && version <= 0x0304) return `tls1.${version - 0x0301}`;
  return 'unknown';
}

/**
 * Classifies a failed handshake. Node reports OpenSSL's reason as `err.code` (`ERR_SSL_UNSUPPORTED_PROTOCOL`,
 * `ERR_SSL_NO_SHARED_CIPHER`, `ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN` …); the message is the fallback.
 */
export function diagnoseTlsFailure(input: TlsFailureInput): TlsFailure {
  const offered = offeredLabel(input.hello, input.sentBytes);
  const floor = input.legacyDevices ? 'TLS 1.0' : 'TLS 1.2';
  const said = input.hello ? `device offered ${input.hello.sslv2Format ? 'an SSL 2.0-format hello' : `${versionName(highestOffered(input.hello))} at most`}` : 'device';
  const text = `${input.error?.code ?? ''} ${input.error?.message ?? ''}`.toLowerCase();
  const oldVersion = input.hello !== null && (input.hello.sslv2Format || highestOffered(input.hello) < (input.legacyDevices ? 0x0301 : 0x0303));
  if (oldVersion || /unsupported[_ ]protocol|version[_ ]too[_ ]low|wrong[_ ]ssl[_ ]version/.test(text)) {
    // Without the ClientHello, OpenSSL's "unsupported protocol" still says the device's best is below the floor.
    const below = input.hello ? offered : input.legacyDevices ? 'below-tls1.0' : 'below-tls1.2';
    const what = input.hello ? said : `device offered only TLS versions older than ${floor}`;
    const fix = input.legacyDevices ? 'no setting of the relay accepts it (SSL is broken): update the device\'s firmware, or use a tls: none listener on a trusted network' : LEGACY_FIX;
    return { reason: 'version-too-old', offered: below, explanation: `${what}; this listener requires ${floor}+: ${fix}` };
  }
  if (/no[_ ]shared[_ ]cipher|no[_ ]cipher|sslv3_alert_handshake_failure/.test(text)) {
    const fix = input.legacyDevices ? 'its ciphers are ones this OpenSSL no longer has (RC4, DES, export): update the device\'s firmware, or use a tls: none listener on a trusted network' : `${LEGACY_FIX}, which allows older ciphers`;
    return { reason: 'no-shared-cipher', offered, explanation: `no cipher in common: ${said} with ${input.hello?.cipherSuites ?? 'unknown'} cipher suites, none acceptable: ${fix}` };
  }
  if (/alert[_ ](certificate|bad[_ ]certificate|unknown[_ ]ca|decrypt[_ ]error)/.test(text)) {
    return { reason: 'certificate-rejected', offered, explanation: `${said} and rejected the relay's certificate: import the CA of tls.certFile into the device, or turn off certificate checking on the device` };
  }
  if (input.sentBytes === true && !input.hello) {
    return { reason: 'not-tls', offered, explanation: 'device sent something other than a TLS handshake: it speaks plain text, so give it a listener with tls: auto, starttls or none' };
  }
  if (input.timedOut) {
    return { reason: 'timeout', offered, explanation: `${input.sentBytes ? `${said} but did not finish the handshake` : 'device sent no TLS handshake'} in time: check that the device is set to the same TLS mode as the listener` };
  }
  if (!input.error) {
    return { reason: 'closed', offered, explanation: `${said} and closed the connection during the handshake: it most likely does not trust the relay's certificate (import the CA of tls.certFile into the device) or wanted another TLS mode` };
  }
  return { reason: 'other', offered, explanation: `${said}; the handshake failed: ${input.error.message}` };
}
