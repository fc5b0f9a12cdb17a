/**
 * Upstream TLS options: one shared SecureContext per extra CA (not a fresh one parsing every root per connection),
 * with verification exactly as strict as before: trusted chain, name or IP SAN, TLS 1.2+.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type Server } from 'node:tls';
import { isRelayError } from '../../src/errors.js';
import { createPki, type Pki } from '../../src/sandbox/pki.js';
import { upstreamSecureContext, upstreamTlsOptions } from '../../src/transport/tls-options.js';
import { connectUpstreamTls } from '../../src/transport/upstream-connect.js';

let pki: Pki;
const servers: Server[] = [];

async function serve(names: string[], extra: { maxVersion?: 'TLSv1.1'; ciphers?: string; minVersion?: 'TLSv1' } = {}): Promise<number> {
  const cert = await pki.issueServerCertificate(names);
  const server = createServer({ cert: cert.certPem, key: cert.keyPem, ...extra }, (s) => s.end('* OK hello\r\n'));
  server.on('tlsClientError', () => undefined);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as { port: number }).port;
}

before(async () => {
  pki = await createPki('tls-options test CA');
});
after(async () => {
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
});

test('connections with the same extra CA share one context; another CA or none has its own', () => {
  const a = upstreamTlsOptions('mail.example.test', pki.caCertPem);
  const b = upstreamTlsOptions('outlook.office365.com', pki.caCertPem);
  assert.ok(a.secureContext);
  assert.equal(a.secureContext, b.secureContext);
  assert.equal(upstreamTlsOptions('outlook.office365.com', null).secureContext, upstreamSecureContext(null));
  assert.notEqual(upstreamSecureContext(null), a.secureContext);
  assert.equal(a.rejectUnauthorized, true);
  assert.equal(a.servername, 'mail.example.test');
  assert.equal(upstreamTlsOptions('127.0.0.1', null).servername, undefined, 'no SNI for an address (RFC 6066 §3)');
});

test('two real connections through the shared context are both verified; a wrong CA still fails', async () => {
  const port = await serve(['127.0.0.1', 'localhost']);
  const first = await connectUpstreamTls('127.0.0.1', port, pki.caCertPem, 2000);
  const second = await connectUpstreamTls('localhost', port, pki.caCertPem, 2000);
  assert.ok(first.authorized && second.authorized);
  assert.match(String(second.getProtocol()), /TLSv1\.[23]/);
  first.destroy();
  second.destroy();
  const other = await createPki('another CA');
  await assert.rejects(connectUpstreamTls('127.0.0.1', port, other.caCertPem, 2000), (err) => isRelayError(err, 'UPSTREAM_CERTIFICATE_UNTRUSTED'));
  await assert.rejects(connectUpstreamTls('127.0.0.1', port, null, 2000), (err) => isRelayError(err, 'UPSTREAM_CERTIFICATE_UNTRUSTED'));
  // The trusted context is unharmed by the failures: a third connection still verifies.
  const third = await connectUpstreamTls('127.0.0.1', port, pki.caCertPem, 2000);
  assert.ok(third.authorized);
  third.destroy();
});

test('the name and the IP SAN are still checked with the shared context', async () => {
  const namedOnly = await serve(['mail.example.test']);
  await assert.rejects(connectUpstreamTls('127.0.0.1', namedOnly, pki.caCertPem, 2000), (err) => isRelayError(err, 'UPSTREAM_CERTIFICATE_UNTRUSTED') && /ALTNAME/.test(err.detail ?? ''));
  const addressOnly = await serve(['127.0.0.1']);
  await assert.rejects(connectUpstreamTls('localhost', addressOnly, pki.caCertPem, 2000), (err) => isRelayError(err, 'UPSTREAM_CERTIFICATE_UNTRUSTED') && /ALTNAME/.test(err.detail ?? ''));
});

test('TLS 1.2 is still the minimum: the context carries it', async () => {
  const old = await serve(['127.0.0.1'], { maxVersion: 'TLSv1.1', minVersion: 'TLSv1', ciphers: 'DEFAULT@SECLEVEL=0' });
  const err = await new Promise<Error>((resolve) => {
    const socket = connect({ host: '127.0.0.1', port: old, ...upstreamTlsOptions('127.0.0.1', pki.caCertPem) }, () => resolve(new Error('connected')));
    socket.once('error', resolve);
  });
  assert.match(String((err as { code?: string }).code), /UNSUPPORTED_PROTOCOL|VERSION/);
});
