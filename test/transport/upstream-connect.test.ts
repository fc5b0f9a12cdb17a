/**
 * connectUpstreamTls: verified implicit TLS, and failures translated for the operator.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createTcpServer } from 'node:net';
import { createServer, type Server } from 'node:tls';
import { isRelayError } from '../../src/errors.js';
import { createPki, type Pki } from '../../src/sandbox/pki.js';
import { connectUpstreamTls } from '../../src/transport/upstream-connect.js';
import { closedPort } from './support/relay-fixture.js';

let pki: Pki;
let server: Server;
let port: number;

before(async () => {
  pki = await createPki('upstream-connect test CA');
  const cert = await pki.issueServerCertificate(['127.0.0.1', 'localhost']);
  server = createServer({ cert: cert.certPem, key: cert.keyPem }, (s) => s.end('* OK hello\r\n'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as { port: number }).port;
});
after(() => new Promise<void>((resolve) => server.close(() => resolve())));

test('a trusted certificate: connected, TLS 1.2 or newer', async () => {
  const socket = await connectUpstreamTls('127.0.0.1', port, pki.caCertPem, 2000);
  assert.ok(socket.authorized);
  assert.match(String(socket.getProtocol()), /TLSv1\.[23]/);
  socket.destroy();
});

test('an untrusted certificate (no extra CA, or another CA): UPSTREAM_CERTIFICATE_UNTRUSTED', async () => {
  await assert.rejects(connectUpstreamTls('127.0.0.1', port, null, 2000), (err) => isRelayError(err, 'UPSTREAM_CERTIFICATE_UNTRUSTED') && /127\.0\.0\.1:\d+/.test(err.detail ?? ''));
  const other = await createPki('another CA');
  await assert.rejects(connectUpstreamTls('127.0.0.1', port, other.caCertPem, 2000), (err) => isRelayError(err, 'UPSTREAM_CERTIFICATE_UNTRUSTED'));
});

test('nothing listening: UPSTREAM_UNAVAILABLE saying so', async () => {
  await assert.rejects(connectUpstreamTls('127.0.0.1', await closedPort(), null, 2000), (err) => isRelayError(err, 'UPSTREAM_UNAVAILABLE') && /connection refused/.test(err.detail ?? ''));
});

test('a server that accepts TCP but never completes TLS: UPSTREAM_UNAVAILABLE after the timeout', async () => {
  const held: Array<{ destroy(): void }> = [];
  const mute = createTcpServer((socket) => void held.push(socket));
  await new Promise<void>((resolve) => mute.listen(0, '127.0.0.1', resolve));
  const started = Date.now();
  await assert.rejects(connectUpstreamTls('127.0.0.1', (mute.address() as { port: number }).port, null, 300), (err) => isRelayError(err, 'UPSTREAM_UNAVAILABLE') && /no TLS connection within 300 ms/.test(err.detail ?? ''));
  assert.ok(Date.now() - started < 2000);
  for (const socket of held) socket.destroy();
  mute.close();
});
