/**
 * A throw-away certificate authority for the sandbox (identity simulator, sandbox mailbox) and the tests.
 * Keys are made fresh at every start and live only in memory (or in a test's temp dir): no key is ever
 * committed. Production never uses this: there, upstream certificates chain to the system trust store.
 */
import { webcrypto, createPrivateKey } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { isIP } from 'node:net';

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const rsaParams = {
  name: 'RSASSA-PKCS1-v1_5',
  hash: 'SHA-256',
  publicExponent: new Uint8Array([1, 0, 1]),
  modulusLength: 2048,
} as const;

/** A certificate and its private key, both PEM. */
export interface IssuedCertificate {
  certPem: string;
  keyPem: string;
}

export interface Pki {
  /** The CA certificate (PEM) a client trusts to accept certificates issued here. */
  readonly caCertPem: string;
  /** A server certificate for the given DNS names and IP addresses, signed by the CA. */
  issueServerCertificate(names: string[]): Promise<IssuedCertificate>;
  /** A self-signed certificate for client-credentials tests (not chained to the CA; Entra does not chain either). */
  issueClientCertificate(commonName: string): Promise<IssuedCertificate>;
}

async function exportKeyPem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }).export({ format: 'pem', type: 'pkcs8' }).toString();
}

function generateKeys(): Promise<CryptoKeyPair> {
  return webcrypto.subtle.generateKey(rsaParams, true, ['sign', 'verify']);
}

const day = 24 * 3600 * 1000;

/** Creates a new CA. `commonName` shows in certificate errors, so it says where the CA comes from. */
export async function createPki(commonName = 'xoauth2-relay sandbox CA'): Promise<Pki> {
  const caKeys = await generateKeys();
  const caCert = await x509.X509CertificateGenerator.createSelfSigned({
    name: `CN=${commonName}`,
    keys: caKeys,
    notBefore: new Date(Date.now() - day),
    notAfter: new Date(Date.now() + 30 * day),
    signingAlgorithm: rsaParams,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });

  return {
    caCertPem: caCert.toString('pem'),

    async issueServerCertificate(names) {
      const keys = await generateKeys();
      const altNames = names.map((n) => (isIP(n) ? { type: 'ip' as const, value: n } : { type: 'dns' as const, value: n }));
      const cert = await x509.X509CertificateGenerator.create({
        subject: `CN=${names[0] ?? 'localhost'}`,
        issuer: caCert.subject,
        publicKey: keys.publicKey,
        signingKey: caKeys.privateKey,
        notBefore: new Date(Date.now() - day),
        notAfter: new Date(Date.now() + 30 * day),
        signingAlgorithm: rsaParams,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
          new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
          new x509.SubjectAlternativeNameExtension(altNames),
          await x509.AuthorityKeyIdentifierExtension.create(caCert),
        ],
      });
      return { certPem: cert.toString('pem'), keyPem: await exportKeyPem(keys.privateKey) };
    },

    async issueClientCertificate(cn) {
      const keys = await generateKeys();
      const cert = await x509.X509CertificateGenerator.createSelfSigned({
        name: `CN=${cn}`,
        keys,
        notBefore: new Date(Date.now() - day),
        notAfter: new Date(Date.now() + 30 * day),
        signingAlgorithm: rsaParams,
      });
      return { certPem: cert.toString('pem'), keyPem: await exportKeyPem(keys.privateKey) };
    },
  };
}

export { certificateThumbprints } from '../auth/certificate-thumbprints.js';
