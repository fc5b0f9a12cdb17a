/**
 * The relay's side of the upstream mail server: implicit TLS (IMAPS 993, POP3S 995 at Exchange Online), the
 * certificate always verified (`upstreamTlsOptions`), and socket failures translated into catalogue errors that
 * tell the operator what to check. `UpstreamConnection` is the line dialogue of the upstream login: send a line,
 * read a line within a time limit; secrets are sent with `sendSecret`, which never logs them.
 */
import { connect, type TLSSocket } from 'node:tls';
import { RelayError } from '../errors.js';
import type { Logger } from '../log.js';
import { LineReader } from './line-reader.js';
import { upstreamTlsOptions } from './tls-options.js';

/** Where and how long: what an upstream login needs to reach the server. */
export interface UpstreamTarget {
  host: string;
  port: number;
  /** Extra CA (PEM) trusted for the upstream, for tests or private servers; null for the system roots only. */
  extraCaPem: string | null;
  /** TCP connect plus TLS handshake. */
  connectTimeoutMs: number;
  /** Each reply during the login dialogue. */
  replyTimeoutMs: number;
}

/** Upstream replies are short before login; Exchange's capability lines are far below this. */
const MAX_UPSTREAM_LINE = 64 * 1024;

const certificateErrors = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

const networkReasons: Record<string, string> = {
  ECONNREFUSED: 'connection refused (nothing listens there, or a firewall rejects it)',
  ECONNRESET: 'connection reset',
  ETIMEDOUT: 'connection timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ENOTFOUND: 'host name not found (DNS)',
  EAI_AGAIN: 'DNS lookup failed temporarily',
};

/** The catalogue error for a failed connection attempt. */
export function translateConnectError(err: unknown, host: string, port: number): RelayError {
  const code = String((err as { code?: unknown })?.code ?? '');
  const where = `${host}:${port}`;
  if (certificateErrors.has(code)) return new RelayError('UPSTREAM_CERTIFICATE_UNTRUSTED', `${where}: ${code}`, { cause: err });
  const reason = networkReasons[code] ?? (err instanceof Error ? err.message : String(err));
  return new RelayError('UPSTREAM_UNAVAILABLE', `${where}: ${reason}`, { cause: err });
}

/**
 * Opens an implicit-TLS connection and completes the handshake within `timeoutMs`. Throws RelayError
 * UPSTREAM_UNAVAILABLE or UPSTREAM_CERTIFICATE_UNTRUSTED.
 */
export function connectUpstreamTls(host: string, port: number, extraCaPem: string | null, timeoutMs: number): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, ...upstreamTlsOptions(host, extraCaPem) });
    // Line dialogue, then a spliced interactive session (IDLE's DONE, short commands): Nagle would hold a small
    // write back until the previous one is acknowledged, and the peer's delayed ACK can make that 40 ms.
    socket.setNoDelay(true);
    const fail = (err: RelayError): void => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    const timer = setTimeout(() => fail(new RelayError('UPSTREAM_UNAVAILABLE', `${host}:${port}: no TLS connection within ${timeoutMs} ms`)), timeoutMs);
    const onError = (err: Error): void => fail(translateConnectError(err, host, port));
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      resolve(socket);
    });
    socket.once('error', onError);
  });
}

const ignoreError = (): void => undefined;

/** One upstream connection during the login dialogue. */
export class UpstreamConnection {
  private readonly reader: LineReader;
  private timedOut = false;

  private constructor(
    readonly socket: TLSSocket,
    private readonly target: UpstreamTarget,
    private readonly log: Logger,
  ) {
    this.reader = new LineReader(socket, { maxLineBytes: MAX_UPSTREAM_LINE });
    socket.on('error', ignoreError); // the reader reports it as the end of the stream
    socket.setTimeout(target.replyTimeoutMs, this.onSilence);
  }

  private readonly onSilence = (): void => {
    this.timedOut = true;
    this.socket.destroy();
  };

  static async open(target: UpstreamTarget, log: Logger): Promise<UpstreamConnection> {
    const socket = await connectUpstreamTls(target.host, target.port, target.extraCaPem, target.connectTimeoutMs);
    log.debug({ upstream: `${target.host}:${target.port}`, tls: socket.getProtocol() }, 'upstream connected');
    return new UpstreamConnection(socket, target, log);
  }

  /**
   * Takes up a released connection again (the `test` command's STAT after the login): bytes the server sent
   * after its login reply go back in front of the stream.
   */
  static adopt(socket: TLSSocket, leftover: Buffer, target: UpstreamTarget, log: Logger): UpstreamConnection {
    if (leftover.length > 0) socket.unshift(leftover);
    return new UpstreamConnection(socket, target, log);
  }

  /** The next line; throws UPSTREAM_UNAVAILABLE when the server closes or stays silent. */
  async readLine(): Promise<string> {
    let line: string | null;
    try {
      line = await this.reader.readLine();
    } catch (err) {
      throw new RelayError('UPSTREAM_PROTOCOL_ERROR', `${this.where}: ${(err as Error).message}`, { cause: err });
    }
    if (line === null) {
      const why = this.timedOut ? `no reply within ${this.target.replyTimeoutMs} ms` : this.reader.failure ? this.reader.failure.message : 'connection closed';
      throw new RelayError('UPSTREAM_UNAVAILABLE', `${this.where}: ${why}`, { cause: this.reader.failure ?? undefined });
    }
    this.log.trace({ upstream: line.slice(0, 200) }, 'S:');
    return line;
  }

  send(line: string): void {
    this.log.trace({ upstream: line }, 'C:');
    this.socket.write(`${line}\r\n`);
  }

  /** Sends a line holding a secret (an XOAUTH2 string); the log shows `shown` instead. */
  sendSecret(line: string, shown: string): void {
    this.log.trace({ upstream: shown }, 'C:');
    this.socket.write(`${line}\r\n`);
  }

  /** Ends the dialogue: the socket (its idle timer off) and anything the server sent after its last reply. */
  release(): { socket: TLSSocket; leftover: Buffer } {
    // The session that takes the socket over sets its own timer: this one's listener goes, or a held session would
    // keep this object and its reader alive for hours. The no-op error listener stays (it holds nothing): an error
    // before the new owner listens must not become an uncaught exception.
    this.socket.setTimeout(0);
    this.socket.off('timeout', this.onSilence);
    return { socket: this.socket, leftover: this.reader.release() };
  }

  destroy(): void {
    this.reader.release();
    this.socket.destroy();
  }

  get where(): string {
    return `${this.target.host}:${this.target.port}`;
  }
}
