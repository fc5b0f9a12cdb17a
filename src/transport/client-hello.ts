/**
 * Reads what a device offers in its TLS ClientHello (RFC 8446 §4.1.2, RFC 5246 §7.4.1.2), only to tell an operator
 * why a handshake failed: the TLS versions (the record version, `client_version`, and the `supported_versions`
 * extension of TLS 1.3 clients), how many cipher suites, and the server name. Pure and total: any byte string
 * gives a result or null, never a throw, since the bytes come from whoever connects.
 */

/** TLS record content type of a handshake (RFC 8446 §5.1): the first byte of every TLS connection. */
export const HANDSHAKE_RECORD = 0x16;
const CLIENT_HELLO = 0x01;
const SUPPORTED_VERSIONS = 0x002b;
const SERVER_NAME = 0x0000;
/** Largest record payload a peer may send (RFC 8446 §5.1: 2^14, plus what TLS 1.2 allows for expansion). */
export const MAX_RECORD_PAYLOAD = 16_384 + 2048;

export interface ClientHello {
  /** Version in the record header (clients often put TLS 1.0 there whatever they speak). */
  recordVersion: number;
  /** `client_version`: the highest version a pre-1.3 client speaks; TLS 1.3 clients put 0x0303 here. */
  clientVersion: number;
  /** The `supported_versions` extension (GREASE values removed), or null when absent. */
  supportedVersions: number[] | null;
  cipherSuites: number;
  /** SNI host name, or null. */
  serverName: string | null;
  /** True when the record ended before the ClientHello did: extensions may be missing. */
  truncated: boolean;
  /** An SSL 2.0-format hello (RFC 6101 appendix E.2): ancient clients only. */
  sslv2Format: boolean;
}

/** Versions by wire value; anything else is shown in hex. */
const names: Record<number, string> = { 0x0002: 'SSL 2.0', 0x0300: 'SSL 3.0', 0x0301: 'TLS 1.0', 0x0302: 'TLS 1.1', 0x0303: 'TLS 1.2', 0x0304: 'TLS 1.3' };

/** `TLS 1.0` for 0x0301; `0x7f1c` for what has no name. */
export function versionName(version: number): string {
  return names[version] ?? `0x${version.toString(16).padStart(4, '0')}`;
}

/** RFC 8701 GREASE values (0x0a0a, 0x1a1a, …) are noise a client adds on purpose. */
function isGrease(value: number): boolean {
  return (value & 0x0f0f) === 0x0a0a && value >> 8 === (value & 0xff);
}

/** The highest version the client offers: from supported_versions when present (TLS 1.3 rule), else client_version. */
export function highestOffered(hello: ClientHello): number {
  const listed = hello.supportedVersions?.filter((v) => names[v] !== undefined) ?? [];
  return listed.length > 0 ? Math.max(...listed) : hello.clientVersion;
}

/** True once `bytes` hold a whole first record (or as much as will ever be read for it). */
export function recordComplete(bytes: Buffer): boolean {
  if (bytes.length < 5) return bytes.length > 0 && bytes[0] !== HANDSHAKE_RECORD && (bytes[0]! & 0x80) === 0;
  if (bytes[0] !== HANDSHAKE_RECORD) return true;
  return bytes.length >= 5 + Math.min(bytes.readUInt16BE(3), MAX_RECORD_PAYLOAD);
}

/** Parses the first record of a connection; null when it is not a ClientHello. */
export function parseClientHello(bytes: Buffer): ClientHello | null {
  if (bytes.length >= 3 && (bytes[0]! & 0x80) !== 0 && bytes[2] === CLIENT_HELLO) return parseSslv2(bytes);
  if (bytes.length < 5 + 4 + 2 || bytes[0] !== HANDSHAKE_RECORD) return null;
  const recordVersion = bytes.readUInt16BE(1);
  const payload = bytes.subarray(5, 5 + bytes.readUInt16BE(3));
  if (payload[0] !== CLIENT_HELLO || payload.length < 4 + 2) return null;
  const body = payload.subarray(4, 4 + payload.readUIntBE(1, 3));
  const truncated = body.length < payload.readUIntBE(1, 3);
  const r = new Reader(body);
  const clientVersion = r.u16();
  r.skip(32); // random
  r.skip(r.u8()); // legacy_session_id
  const suitesLength = r.u16();
  r.skip(suitesLength);
  r.skip(r.u8()); // legacy_compression_methods
  const hello: ClientHello = { recordVersion, clientVersion: clientVersion ?? 0, supportedVersions: null, cipherSuites: Math.floor((suitesLength ?? 0) / 2), serverName: null, truncated, sslv2Format: false };
  if (clientVersion === null) return { ...hello, truncated: true };
  const extensionsLength = r.u16();
  if (extensionsLength === null) return hello;
  const extensions = new Reader(r.take(extensionsLength));
  for (;;) {
    const type = extensions.u16();
    const length = extensions.u16();
    if (type === null || length === null) break;
    const data = extensions.take(length);
    if (data.length < length) hello.truncated = true;
    if (type === SUPPORTED_VERSIONS) hello.supportedVersions = supportedVersions(data);
    if (type === SERVER_NAME) hello.serverName = serverName(data);
  }
  return hello;
}

/** SSL 2.0 CLIENT-HELLO: 2-byte length with the high bit set, type 1, then the version. */
function parseSslv2(bytes: Buffer): ClientHello | null {
  if (bytes.length < 5) return null;
  const version = bytes.readUInt16BE(3);
  return { recordVersion: version, clientVersion: version, supportedVersions: null, cipherSuites: bytes.length >= 7 ? Math.floor(bytes.readUInt16BE(5) / 3) : 0, serverName: null, truncated: false, sslv2Format: true };
}

function supportedVersions(data: Buffer): number[] {
  const r = new Reader(data.subarray(1, 1 + (data[0] ?? 0)));
  const versions: number[] = [];
  for (let v = r.u16(); v !== null; v = r.u16()) if (!isGrease(v)) versions.push(v);
  return versions;
}

/** RFC 6066 §3: the first host_name entry, if printable. */
function serverName(data: Buffer): string | null {
  const r = new Reader(data);
  r.u16(); // list length
  if (r.u8() !== 0) return null;
  const length = r.u16();
  if (length === null) return null;
  const name = r.take(length).toString('latin1');
  return /^[\x21-\x7e]{1,253}$/.test(name) ? name : null;
}

/** Bounds-checked reads: past the end every read gives null (or an empty buffer), never a throw. */
class Reader {
  private at = 0;
  constructor(private readonly bytes: Buffer) {}

  u8(): number | null {
    if (this.at + 1 > this.bytes.length) return null;
    return this.bytes[this.at++]!;
  }

  u16(): number | null {
    if (this.at + 2 > this.bytes.length) return null;
    const value = this.bytes.readUInt16BE(this.at);
    this.at += 2;
    return value;
  }

  skip(n: number | null): void {
    this.at += n ?? this.bytes.length;
  }

  take(n: number): Buffer {
    const slice = this.bytes.subarray(Math.min(this.at, this.bytes.length), Math.min(this.at + n, this.bytes.length));
    this.at += n;
    return slice;
  }
}
