/**
 * TLS settings, kept apart by direction. Device-facing: the site's certificate, and (only if the operator
 * asks) TLS 1.0/1.1 with old ciphers for devices that know nothing newer — Node 20 needs both
 * `minVersion: 'TLSv1'` and `ciphers: 'DEFAULT@SECLEVEL=0'` for that. Upstream: always TLS 1.2+, always
 * verified against the system roots (plus an extra CA for tests or private peers), never the legacy options.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { createSecureContext, rootCertificates, type ConnectionOptions, type SecureContext, type SecureContextOptions } from 'node:tls';
import type { Config } from '../config/schema.js';

export interface DeviceTlsMaterial {
  cert: string;
  key: string;
}

/** Reads the device-facing certificate once; null when the config names none (then only tls: none listeners exist). */
export function loadDeviceTlsMaterial(config: Config): DeviceTlsMaterial | null {
  if (!config.tls.certFile || !config.tls.keyFile) return null;
  return { cert: readFileSync(config.tls.certFile, 'utf8'), key: readFileSync(config.tls.keyFile, 'utf8') };
}

/** Options for a device-facing TLS server (STARTTLS or implicit). */
export function deviceTlsOptions(material: DeviceTlsMaterial, legacyDevices: boolean): SecureContextOptions {
  return {
    cert: material.cert,
    key: material.key,
    ...(legacyDevices ? { minVersion: 'TLSv1' as const, ciphers: 'DEFAULT@SECLEVEL=0' } : { minVersion: 'TLSv1.2' as const }),
  };
}

/**
 * Options for a client connection to an upstream mail server: verified, TLS 1.2+. The one place for them: raw
 * TLS (IMAP/POP3 login), nodemailer (delivery, `test`) and imapflow (`test`) all take these (each copies the
 * options into its `tls.connect`, `secureContext` included). SNI carries host names only (RFC 6066 §3; Node
 * warns on an address); an address is still verified against the IP SANs (`checkServerIdentity` uses `host`).
 */
export function upstreamTlsOptions(host: string, extraCaPem: string | null): ConnectionOptions {
  return {
    ...(isIP(host) ? {} : { servername: host }),
    rejectUnauthorized: true,
    secureContext: upstreamSecureContext(extraCaPem),
  };
}

/**
 * Upstream contexts, one per extra CA (the key '' is the system roots alone). A context given as `ca: [...roots,
 * extra]` at each connection parses every root again and keeps its own certificate store: measured, about
 * 0.9 MB and 20 ms per connection, and so most of a held IMAP session's memory and of its login time. The
 * system-roots context is shared too (one SSL_CTX instead of one per connection). A reload that names another
 * CA file adds a context; the oldest beyond a few is dropped (connections holding it keep it alive).
 */
const upstreamContexts = new Map<string, SecureContext>();
const MAX_UPSTREAM_CONTEXTS = 4;

/** The shared context for upstream connections trusting the system roots plus `extraCaPem` (if any). */
export function upstreamSecureContext(extraCaPem: string | null): SecureContext {
  const key = extraCaPem ?? '';
  let context = upstreamContexts.get(key);
  if (!context) {
    // minVersion lives in the context: with `secureContext` given, tls.connect ignores the context options.
    context = createSecureContext({ minVersion: 'TLSv1.2', ...(extraCaPem ? { ca: [...rootCertificates, extraCaPem] } : {}) });
    upstreamContexts.set(key, context);
    for (const oldest of upstreamContexts.keys()) {
      if (upstreamContexts.size <= MAX_UPSTREAM_CONTEXTS) break;
      upstreamContexts.delete(oldest);
    }
  }
  return context;
}

export function loadUpstreamExtraCa(config: Config): string | null {
  return config.upstreamTls.extraCaFile ? readFileSync(config.upstreamTls.extraCaFile, 'utf8') : null;
}
