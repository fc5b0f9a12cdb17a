/**
 * The ClientHello reader and the handshake diagnosis: real hellos from Node's OpenSSL (TLS 1.3 with SNI, TLS 1.0
 * only), hellos built from generated fields read back exactly, any bytes (and every cut of a real hello) read
 * without a throw, and the diagnosis's reason, offered version and fix for the failures operators meet.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { connect, type ConnectionOptions } from 'node:tls';
import fc from 'fast-check';
import { highestOffered, parseClientHello, recordComplete, versionName } from '../../src/transport/client-hello.js';
import { diagnoseTlsFailure, offeredLabel } from '../../src/transport/tls-diagnosis.js';

/** The first record a real TLS client sends, caught by a TCP server that never answers. */
async function realHello(options: ConnectionOptions): Promise<Buffer> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const caught = new Promise<Buffer>((resolve) => {
    server.once('connection', (socket) => {
      let bytes = Buffer.alloc(0);
      socket.on('data', (chunk: Buffer) => {
        bytes = Buffer.concat([bytes, chunk]);
        if (recordComplete(bytes)) {
          resolve(bytes);
          socket.destroy();
        }
      });
    });
  });
  const client = connect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, ...options });
  client.on('error', () => undefined);
  const bytes = await caught;
  client.destroy();
  server.close();
  return bytes;
}

test('a TLS 1.3 client: supported_versions lists 1.3 and 1.2, the record says 1.0, SNI read', async () => {
  const bytes = await realHello({ servername: 'relay.example' });
  const hello = parseClientHello(bytes)!;
  assert.equal(hello.recordVersion, 0x0301);
  assert.equal(hello.clientVersion, 0x0303);
  assert.ok(hello.supportedVersions?.includes(0x0304) && hello.supportedVersions.includes(0x0303));
  assert.equal(highestOffered(hello), 0x0304);
  assert.equal(hello.serverName, 'relay.example');
  assert.ok(hello.cipherSuites > 3);
  assert.equal(hello.truncated, false);
  assert.equal(offeredLabel(hello, true), 'tls1.3');
});

test('a TLS 1.0-only client: client_version 0x0301, no supported_versions, offered tls1.0', async () => {
  const bytes = await realHello({ minVersion: 'TLSv1', maxVersion: 'TLSv1', ciphers: 'DEFAULT@SECLEVEL=0' });
  const hello = parseClientHello(bytes)!;
  assert.equal(hello.clientVersion, 0x0301);
  assert.equal(hello.supportedVersions, null);
  assert.equal(versionName(highestOffered(hello)), 'TLS 1.0');
  assert.equal(offeredLabel(hello, true), 'tls1.0');
  const failure = diagnoseTlsFailure({ hello, sentBytes: true, error: Object.assign(new Error('unsupported protocol'), { code: 'ERR_SSL_UNSUPPORTED_PROTOCOL' }), timedOut: false, legacyDevices: false });
  assert.equal(failure.reason, 'version-too-old');
  assert.match(failure.explanation, /^device offered TLS 1\.0 at most; this listener requires TLS 1\.2\+: set tls\.legacyDevices: true/);
});

test('every cut of a real hello, and any bytes at all, read without a throw', async () => {
  const bytes = await realHello({ servername: 'relay.example' });
  for (let n = 0; n <= bytes.length; n++) parseClientHello(bytes.subarray(0, n));
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 600 }), (raw) => {
      const buf = Buffer.from(raw);
      parseClientHello(buf);
      recordComplete(buf);
      // A handshake-record header in front makes the parser go deeper into the garbage.
      const framed = Buffer.concat([Buffer.from([0x16, 0x03, 0x01, raw.length >> 8, raw.length & 0xff, 0x01]), buf]);
      parseClientHello(framed);
    }),
    { numRuns: 2000 },
  );
});

/** A ClientHello record from its parts (RFC 8446 §4.1.2 layout). */
function build(o: { clientVersion: number; suites: number; versions: number[] | null; sni: string | null; sessionId: number }): Buffer {
  const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);
  const ext = (type: number, data: Buffer) => Buffer.concat([u16(type), u16(data.length), data]);
  const extensions: Buffer[] = [];
  if (o.sni !== null) {
    const name = Buffer.from(o.sni, 'latin1');
    const entry = Buffer.concat([Buffer.from([0]), u16(name.length), name]);
    extensions.push(ext(0x0000, Buffer.concat([u16(entry.length), entry])));
  }
  if (o.versions) {
    const list = Buffer.concat(o.versions.map(u16));
    extensions.push(ext(0x002b, Buffer.concat([Buffer.from([list.length]), list])));
  }
  const exts = Buffer.concat(extensions);
  const body = Buffer.concat([
    u16(o.clientVersion), Buffer.alloc(32, 7), Buffer.from([o.sessionId]), Buffer.alloc(o.sessionId, 1),
    u16(o.suites * 2), Buffer.alloc(o.suites * 2, 0x13), Buffer.from([1, 0]), u16(exts.length), exts,
  ]);
  const handshake = Buffer.concat([Buffer.from([0x01, 0, body.length >> 8, body.length & 0xff]), body]);
  return Buffer.concat([Buffer.from([0x16, 0x03, 0x01]), u16(handshake.length), handshake]);
}

test('hellos built from generated fields read back exactly (GREASE left out of the versions)', () => {
  const version = fc.constantFrom(0x0300, 0x0301, 0x0302, 0x0303, 0x0304);
  fc.assert(
    fc.property(
      fc.record({
        clientVersion: version,
        suites: fc.integer({ min: 1, max: 60 }),
        versions: fc.option(fc.array(fc.oneof(version, fc.constantFrom(0x0a0a, 0xfafa)), { minLength: 1, maxLength: 6 }), { nil: null }),
        sni: fc.option(fc.stringMatching(/^[a-z0-9.-]{1,40}$/), { nil: null }),
        sessionId: fc.integer({ min: 0, max: 32 }),
      }),
      (o) => {
        const bytes = build(o);
        assert.equal(recordComplete(bytes), true);
        assert.equal(recordComplete(bytes.subarray(0, bytes.length - 1)), false);
        const hello = parseClientHello(bytes)!;
        assert.equal(hello.clientVersion, o.clientVersion);
        assert.equal(hello.cipherSuites, o.suites);
        assert.equal(hello.serverName, o.sni);
        assert.deepEqual(hello.supportedVersions, o.versions ? o.versions.filter((v) => v !== 0x0a0a && v !== 0xfafa) : null);
        assert.equal(hello.truncated, false);
      },
    ),
    { numRuns: 500 },
  );
});

test('diagnosis: cipher, certificate, plain text, silence, a close, and the legacy listener\'s own limits', () => {
  const tls12 = parseClientHello(build({ clientVersion: 0x0303, suites: 2, versions: null, sni: null, sessionId: 0 }));
  const ssl3 = parseClientHello(build({ clientVersion: 0x0300, suites: 2, versions: null, sni: null, sessionId: 0 }));
  const err = (code: string) => Object.assign(new Error(code), { code });
  const cipher = diagnoseTlsFailure({ hello: tls12, sentBytes: true, error: err('ERR_SSL_NO_SHARED_CIPHER'), timedOut: false, legacyDevices: false });
  assert.equal(cipher.reason, 'no-shared-cipher');
  assert.match(cipher.explanation, /^no cipher in common: device offered TLS 1\.2 at most with 2 cipher suites, none acceptable: set tls\.legacyDevices: true/);
  assert.equal(diagnoseTlsFailure({ hello: tls12, sentBytes: true, error: err('ERR_SSL_TLSV1_ALERT_UNKNOWN_CA'), timedOut: false, legacyDevices: false }).reason, 'certificate-rejected');
  const plain = diagnoseTlsFailure({ hello: null, sentBytes: true, error: null, timedOut: false, legacyDevices: false });
  assert.deepEqual([plain.reason, plain.offered], ['not-tls', 'unknown']);
  const silent = diagnoseTlsFailure({ hello: null, sentBytes: false, error: null, timedOut: true, legacyDevices: false });
  assert.deepEqual([silent.reason, silent.offered], ['timeout', 'none']);
  assert.equal(diagnoseTlsFailure({ hello: tls12, sentBytes: true, error: null, timedOut: false, legacyDevices: false }).reason, 'closed');
  const oldOnLegacy = diagnoseTlsFailure({ hello: ssl3, sentBytes: true, error: null, timedOut: false, legacyDevices: true });
  assert.deepEqual([oldOnLegacy.reason, oldOnLegacy.offered], ['version-too-old', 'ssl3']);
  assert.match(oldOnLegacy.explanation, /requires TLS 1\.0\+: no setting of the relay accepts it/);
  const unseen = diagnoseTlsFailure({ hello: null, sentBytes: 'unknown', error: err('ERR_SSL_UNSUPPORTED_PROTOCOL'), timedOut: false, legacyDevices: false });
  assert.deepEqual([unseen.reason, unseen.offered], ['version-too-old', 'below-tls1.2']);
});
