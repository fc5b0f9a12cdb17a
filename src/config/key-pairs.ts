/**
 * A certificate and the private key named next to it must belong together: swapped or stale files otherwise
 * pass check-config and fail at the first TLS handshake (device-facing TLS) or token request (client
 * credentials with a certificate). Checked with node:crypto only; runs once the files are known to be readable.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Config } from './schema.js';
import { formatPath, showValue, type ConfigProblem } from './problems.js';

interface Pair {
  certPath: PropertyKey[];
  keyPath: PropertyKey[];
  certFile: string;
  keyFile: string;
}

function pairsOf(config: Config): Pair[] {
  const pairs: Pair[] = [];
  if (config.tls.certFile && config.tls.keyFile) {
    pairs.push({ certPath: ['tls', 'certFile'], keyPath: ['tls', 'keyFile'], certFile: config.tls.certFile, keyFile: config.tls.keyFile });
  }
  for (const [name, a] of Object.entries(config.accounts)) {
    if (a.certificateFile && a.privateKeyFile) {
      pairs.push({ certPath: ['accounts', name, 'certificateFile'], keyPath: ['accounts', name, 'privateKeyFile'], certFile: a.certificateFile, keyFile: a.privateKeyFile });
    }
  }
  return pairs;
}

/** One problem per certificate that cannot be read, key that cannot be read, or pair that does not match. */
export function keyPairProblems(config: Config, input: unknown): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const pair of pairsOf(config)) {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(readFileSync(pair.certFile));
    } catch (err) {
      problems.push(fileProblem(pair.certPath, input, `is not a PEM certificate (${reason(err)})`, 'name the certificate file (-----BEGIN CERTIFICATE-----), the server certificate first if it holds a chain'));
      continue;
    }
    let matches: boolean;
    try {
      matches = cert.checkPrivateKey(createPrivateKey(readFileSync(pair.keyFile)));
    } catch (err) {
      problems.push(fileProblem(pair.keyPath, input, `is not an unencrypted PEM private key (${reason(err)})`, 'name the private key file (-----BEGIN PRIVATE KEY----- or -----BEGIN RSA/EC PRIVATE KEY-----), without a passphrase'));
      continue;
    }
    if (!matches) {
      problems.push(fileProblem(pair.keyPath, input, `is not the private key of ${formatPath(pair.certPath)} (${cert.subject.replaceAll('\n', ', ')})`, `name the key made with that certificate (the files may be swapped, or one of them is from an older certificate); \`openssl x509 -noout -pubkey -in CERT\` and \`openssl pkey -pubout -in KEY\` must print the same key`));
    }
  }
  return problems;
}

function fileProblem(path: PropertyKey[], input: unknown, message: string, hint: string): ConfigProblem {
  return { path: formatPath(path), shown: showValue(input, path), message, hint };
}

function reason(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.split('\n')[0]!.slice(0, 100);
}
