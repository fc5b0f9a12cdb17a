/** Certificate thumbprints as Entra shows them and MSAL sends them (`x5t`, `x5t#S256`). */
import { X509Certificate } from 'node:crypto';

/** SHA-1 and SHA-256 thumbprints (hex, upper case) of the first certificate in a PEM text. */
export function certificateThumbprints(certPem: string): { sha1: string; sha256: string } {
  const cert = new X509Certificate(certPem);
  return { sha1: cert.fingerprint.replaceAll(':', ''), sha256: cert.fingerprint256.replaceAll(':', '') };
}
