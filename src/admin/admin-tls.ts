/**
 * HTTPS for the admin page. Off loopback the page carries the admin password and the session cookie, so it must
 * not speak plain HTTP there unless the operator says so (`admin.allowPlainHttp: true`, for a TLS reverse proxy
 * on the same host). The certificate is the admin page's own, or by default the device-facing one.
 */
import { readFileSync } from 'node:fs';
import type { Config } from '../config/schema.js';
import { parseHostPort } from '../config/schema.js';
import { RelayError } from '../errors.js';
import { isLoopbackHost } from '../transport/addresses.js';

export interface AdminTlsMaterial {
  cert: string;
  key: string;
}

/** The files admin.tls uses: its own, else the device-facing tls ones (null when neither is set). */
export function adminTlsFiles(config: Config): { certFile: string; keyFile: string } | null {
  const certFile = config.admin.tls.certFile ?? config.tls.certFile;
  const keyFile = config.admin.tls.keyFile ?? config.tls.keyFile;
  return certFile && keyFile ? { certFile, keyFile } : null;
}

/** The certificate and key when admin.tls.enabled, else null. Throws ADMIN_TLS_UNREADABLE. */
export function loadAdminTls(config: Config): AdminTlsMaterial | null {
  if (!config.admin.tls.enabled) return null;
  const files = adminTlsFiles(config);
  if (!files) throw new RelayError('ADMIN_TLS_UNREADABLE', 'admin.tls.enabled is true but neither admin.tls nor tls names a certificate and key');
  try {
    return { cert: readFileSync(files.certFile, 'utf8'), key: readFileSync(files.keyFile, 'utf8') };
  } catch (err) {
    throw new RelayError('ADMIN_TLS_UNREADABLE', `${files.certFile} / ${files.keyFile}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
}

/** How the admin page is reached: loopback, HTTPS, or plain HTTP on the network (allowed only explicitly). */
export function adminExposure(config: Config): 'loopback' | 'https' | 'plain-http-allowed' | 'plain-http-refused' {
  const listen = parseHostPort(config.admin.listen);
  if (config.admin.tls.enabled) return 'https';
  if (listen && isLoopbackHost(listen.host)) return 'loopback';
  return config.admin.allowPlainHttp ? 'plain-http-allowed' : 'plain-http-refused';
}
