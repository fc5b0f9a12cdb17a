/**
 * The device-facing TLS front door shared by the SMTP, IMAP and POP3 listeners: looks at the first bytes of a new
 * connection (`tls: auto`: a TLS ClientHello means implicit TLS, anything else or silence means plain text with
 * STARTTLS offered), and runs a device's TLS handshake over a plain socket (implicit, auto, IMAP STARTTLS, POP3 STLS)
 * having first read its ClientHello, so that a failed handshake is logged once, at info, with what the device
 * offered and the fix, and counted per listener.
 *
 * The bytes read are put back (`socket.unshift`) before anyone else reads the socket: a TLSSocket made over a
 * net.Socket feeds what is buffered to OpenSSL first (checked on Node 20 and 24), and a plain reader gets them as
 * its first data.
 */
import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import { errorFields, type Logger } from '../log.js';
import { HANDSHAKE_RECORD, MAX_RECORD_PAYLOAD, parseClientHello, recordComplete, type ClientHello } from './client-hello.js';
import type { ListenerMetrics, ListenerProtocol } from './listener-metrics.js';
import { diagnoseTlsFailure, type TlsFailure, type TlsStage } from './tls-diagnosis.js';

/**
 * How long `tls: auto` waits for a device's first byte before it greets in plain text. A TLS client sends its
 * ClientHello as soon as TCP is up (one round trip: well under 50 ms on a LAN, even from a slow embedded stack). A
 * plain client of these server-first protocols sends nothing until it has the greeting, and waits for it for
 * seconds to minutes (RFC 5321 §4.5.3.2: 5 minutes; device IMAP/POP3 clients typically 10 s or more). 500 ms is ten
 * times the slowest ClientHello expected and a small part of the shortest greeting wait: a plain device's greeting
 * is late by half a second, never missed.
 */
export const AUTO_DETECT_WAIT_MS = 500;

/** Most bytes read before the decision: one whole TLS record and its header. */
const MAX_PEEK_BYTES = 5 + MAX_RECORD_PAYLOAD;

interface Peeked {
  bytes: Buffer;
  end: 'enough' | 'timeout' | 'closed';
}

/** Reads until `enough` says so (or the time, the byte bound or the connection runs out), then puts it all back. */
function peek(socket: Socket, enough: (bytes: Buffer) => boolean, waitMs: number): Promise<Peeked> {
  return new Promise((resolve) => {
    let bytes = Buffer.alloc(0);
    const finish = (end: Peeked['end']): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onClosed);
      socket.off('close', onClosed);
      socket.off('error', onClosed);
      socket.pause();
      if (bytes.length > 0 && !socket.destroyed) socket.unshift(bytes);
      resolve({ bytes, end });
    };
    const onData = (chunk: Buffer): void => {
      bytes = Buffer.concat([bytes, chunk]);
      if (enough(bytes) || bytes.length >= MAX_PEEK_BYTES) finish('enough');
    };
    const onClosed = (): void => finish('closed');
    const timer = setTimeout(() => finish('timeout'), waitMs);
    socket.on('data', onData);
    socket.once('end', onClosed);
    socket.once('close', onClosed);
    socket.once('error', onClosed);
    socket.resume(); // a socket an earlier peek paused does not flow again by itself
  });
}

/** What a `tls: auto` listener found: a TLS handshake, plain text (or silence), or a connection already gone. */
export type Sniffed = 'tls' | 'plain' | 'closed';

/** Decides `tls: auto` from the first byte (RFC 8446 §5.1: a handshake record is type 22; SSL 2.0 hellos set the top bit). */
export async function sniffTls(socket: Socket, waitMs = AUTO_DETECT_WAIT_MS): Promise<Sniffed> {
  const { bytes, end } = await peek(socket, (b) => b.length > 0, waitMs);
  if (bytes.length === 0) return end === 'closed' ? 'closed' : 'plain';
  return bytes[0] === HANDSHAKE_RECORD || (bytes[0]! & 0x80) !== 0 ? 'tls' : 'plain';
}

/** Where a failed handshake is reported: the listener's logger and metrics. */
export interface TlsFailureReport {
  protocol: ListenerProtocol;
  listener: string;
  stage: TlsStage;
  legacyDevices: boolean;
  log: Logger;
  /** True when `log` is a connection's child that already names the remote address. */
  logNamesRemote?: boolean;
  metrics?: ListenerMetrics;
}

export interface DeviceHandshake {
  secureContext: SecureContext;
  /** Time for the whole handshake, from now. */
  timeoutMs: number;
  report: TlsFailureReport;
}

/**
 * Runs the server side of a device's TLS handshake on `socket`; resolves the TLS socket once it is secure, or null
 * (the failure reported, both sockets destroyed).
 */
export async function handshakeDevice(socket: Socket, o: DeviceHandshake): Promise<TLSSocket | null> {
  const deadline = Date.now() + o.timeoutMs;
  const peeked = await peek(socket, recordComplete, o.timeoutMs);
  const hello = parseClientHello(peeked.bytes);
  const fail = (error: Error | null, timedOut: boolean): null => {
    reportTlsFailure(o.report, hello, peeked.bytes.length > 0, error, timedOut, o.report.logNamesRemote ? undefined : socket.remoteAddress);
    socket.destroy();
    return null;
  };
  if (peeked.end === 'closed' && peeked.bytes.length === 0) {
    // Connected and left without a byte: a port probe or a load balancer's check, not a device failing at TLS.
    o.report.log.debug({ remote: socket.remoteAddress, tls: o.report.stage }, 'connection closed before any TLS handshake');
    socket.destroy();
    return null;
  }
  if (peeked.end !== 'enough') return fail(null, peeked.end === 'timeout');
  if (!hello) return fail(null, false);
  const secure = new TLSSocket(socket, { isServer: true, secureContext: o.secureContext });
  return new Promise((resolve) => {
    let settled = false;
    const settle = (result: TLSSocket | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      secure.off('error', onError);
      secure.off('close', onClose);
      resolve(result);
    };
    const onError = (err: Error): void => {
      settle(fail(err, false));
      secure.destroy();
    };
    const onClose = (): void => settle(fail(null, false));
    const timer = setTimeout(() => {
      settle(fail(null, true));
      secure.destroy();
    }, Math.max(0, deadline - Date.now()));
    secure.once('secure', () => settle(secure));
    secure.on('error', onError);
    secure.once('close', onClose);
    // Errors after the handshake belong to the session that takes the socket; this keeps a late one from throwing.
    secure.on('error', () => undefined);
  });
}

/** The one info line (and the metric) for a failed device handshake. */
export function reportTlsFailure(o: TlsFailureReport, hello: ClientHello | null, sentBytes: boolean | 'unknown', error: (Error & { code?: string }) | null, timedOut: boolean, remote: string | undefined): TlsFailure {
  const failure = diagnoseTlsFailure({ hello, sentBytes, error, timedOut, legacyDevices: o.legacyDevices });
  o.log.info(
    {
      ...(remote ? { remote } : {}),
      tls: o.stage,
      reason: failure.reason,
      offered: failure.offered,
      ...(hello ? { clientVersion: hello.clientVersion, supportedVersions: hello.supportedVersions, cipherSuites: hello.cipherSuites, serverName: hello.serverName } : {}),
      ...(error ? errorFields(error) : {}),
    },
    `device TLS handshake failed: ${failure.explanation}`,
  );
  o.metrics?.tlsHandshakeFailed?.(o.protocol, o.listener, failure.reason, failure.offered);
  return failure;
}
