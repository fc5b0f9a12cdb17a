/**
 * An implicit-TLS listener (POP3S on 995, IMAPS on 993 at Exchange Online) that hands each connection
 * to a session function, with the limits a server exposed to arbitrary clients needs: a handshake timeout,
 * an idle timeout, a connection cap, and a close() that ends every open session.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../../log.js';
import { errorFields } from '../../log.js';

export interface TlsListenerOptions {
  host: string;
  port: number;
  tls: { certPem: string; keyPem: string };
  /** Name for log lines: `pop3`, `imap`. */
  protocol: string;
  /** Closes a connection with no traffic for this long; `idleReply` is sent first when given. */
  idleTimeoutMs: number;
  idleReply?: string;
  /** Simultaneous connections taken (default 100), like a server's own limit. */
  maxConnections?: number | undefined;
  logger: Logger;
  /** Runs one session; the socket is destroyed when it settles. */
  session(socket: TLSSocket, connectionId: string): Promise<void>;
}

/** A started listener. */
export interface TlsListener {
  port: number;
  close(): Promise<void>;
}

const MAX_CONNECTIONS = 100;
const HANDSHAKE_TIMEOUT_MS = 10_000;

/** Starts listening; resolves once the port is bound. */
export async function startTlsListener(opts: TlsListenerOptions): Promise<TlsListener> {
  const open = new Set<TLSSocket>();
  const server: Server = createServer({
    cert: opts.tls.certPem,
    key: opts.tls.keyPem,
    minVersion: 'TLSv1.2', // as Exchange Online
    handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
  });
  server.maxConnections = opts.maxConnections ?? MAX_CONNECTIONS;
  // A failed handshake (wrong CA, plain text on a TLS port) is the client's problem: log, don't crash.
  server.on('tlsClientError', (err) => opts.logger.debug({ protocol: opts.protocol, ...errorFields(err) }, 'TLS handshake failed'));
  server.on('secureConnection', (socket: TLSSocket) => {
    const connectionId = randomBytes(6).toString('base64url');
    open.add(socket);
    socket.setNoDelay(true);
    socket.setTimeout(opts.idleTimeoutMs, () => {
      opts.logger.info({ protocol: opts.protocol, connection: connectionId }, 'idle timeout');
      if (opts.idleReply) socket.end(`${opts.idleReply}\r\n`);
      // end() may wait for a client that reads nothing; don't let it hold the connection.
      setTimeout(() => socket.destroy(), 1_000).unref();
    });
    socket.on('error', (err) => opts.logger.debug({ protocol: opts.protocol, connection: connectionId, ...errorFields(err) }, 'socket error'));
    socket.on('close', () => open.delete(socket));
    opts.session(socket, connectionId).then(
      () => socket.end(),
      (err: unknown) => {
        opts.logger.error({ protocol: opts.protocol, connection: connectionId, ...errorFields(err) }, 'session failed');
        socket.destroy();
      },
    );
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });

  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of open) socket.destroy();
      }),
  };
}
