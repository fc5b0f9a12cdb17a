/**
 * A device-facing listener of an authenticate-then-splice proxy, shared by IMAP and POP3: plain, implicit TLS or
 * both (`auto`) per the listener's `tls` mode, the per-address connection limit, a session per connection handed to
 * the protocol front, the session registry, and close() that stops accepting and drains. The protocol is a
 * plug-in (`ProxyProtocol`): its defaults, its upstream, its greeting and grammar.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer as createTcpServer, type Server, type Socket } from 'node:net';
import { createSecureContext, type SecureContext } from 'node:tls';
import type { DeviceDirectory } from '../auth/device-directory.js';
import type { FailureThrottle } from '../auth/failure-throttle.js';
import type { Config } from '../config/schema.js';
import { RelayError } from '../errors.js';
import { errorFields, type Logger } from '../log.js';
import { ConnectionLimits } from './connection-limits.js';
import { LoginQueue } from './login-queue.js';
import { DeviceSession, type ProtocolLimits, type ProxyContext, type ProxyLimits, type ProxyTimeouts } from './device-session.js';
import { SessionRegistry, type DrainResult, type SessionProtocol } from './session-registry.js';
import { deviceTlsOptions, type DeviceTlsMaterial } from './tls-options.js';
import type { TokenSource } from './upstream-login.js';
import { noListenerMetrics, type ListenerMetrics } from './listener-metrics.js';
import type { MailboxSlots } from './mailbox-slots.js';
import { handshakeDevice, sniffTls } from './tls-sniff.js';
import { LISTEN_BACKLOG } from './listen-backlog.js';


/** What `new ImapListener(…)` / `new Pop3Listener(…)` take. */
export interface ProxyListenerOptions {
  config: Config;
  /** One entry of `imap.listen` / `pop3.listen`. */
  listen: Config['imap']['listen'][number];
  devices: DeviceDirectory;
  throttle: FailureThrottle;
  /** Device-facing certificate; required unless the listener is `tls: none`. */
  tls: DeviceTlsMaterial | null;
  tokens: TokenSource;
  /** `upstreamTls.extraCaFile`'s PEM, or null. */
  upstreamExtraCaPem: string | null;
  /** Bounds upstream logins (shared by the daemon's listeners); one of the listener's own from `config.logins` otherwise. */
  upstreamLogins?: LoginQueue;
  logger: Logger;
  /** Overrides of the protocol's defaults (tests use short ones). */
  timeouts?: Partial<ProxyTimeouts>;
  limits?: Partial<ProxyLimits>;
  /** Shared with other listeners for a daemon-wide count; a listener of its own otherwise. */
  registry?: SessionRegistry;
  /** How long close() lets spliced sessions finish before destroying them; default 10 s. */
  drainMs?: number;
  /** Open sessions and failed logins, for /metrics. */
  metrics?: ListenerMetrics;
  /** The per-mailbox cap on upstream sessions, shared by every IMAP and POP3 listener of the daemon. */
  slots?: MailboxSlots;
}

/** The protocol-specific part of a proxy listener. */
export interface ProxyProtocol {
  readonly name: SessionProtocol;
  readonly defaultTimeouts: ProxyTimeouts;
  readonly defaultLimits: ProtocolLimits;
  upstreamOf(config: Config): { host: string; port: number };
  /** A session-ending reply written untagged (IMAP `* BYE …`; POP3 as is). */
  untagged(reply: string): string;
  /** Runs the pre-login dialogue, and the splice after a login; resolves when the session is over. */
  serve(session: DeviceSession): Promise<void>;
}

export class ProxyListener {
  readonly registry: SessionRegistry;
  private readonly server: Server;
  private readonly ctx: ProxyContext;
  private readonly limits: ConnectionLimits;
  private log: Logger;
  private readonly drainMs: number;

  constructor(
    private readonly o: ProxyListenerOptions,
    private readonly protocol: ProxyProtocol,
  ) {
    const label = `${o.listen.host}:${o.listen.port}`;
    this.log = o.logger.child({ protocol: protocol.name, listener: label });
    this.registry = o.registry ?? new SessionRegistry();
    this.drainMs = o.drainMs ?? 10_000;
    const limits: ProxyLimits = {
      ...protocol.defaultLimits,
      maxConnectionsPerAddress: o.config.smtp.maxConnectionsPerAddress,
      maxConnectionsPerListener: o.config.smtp.maxConnectionsPerListener,
      maxCommandsBeforeLogin: o.config.logins.maxCommandsBeforeLogin,
      ...o.limits,
    };
    const timeouts: ProxyTimeouts = { ...protocol.defaultTimeouts, preAuthMs: (o.config.logins.preLoginTimeoutSeconds ?? 60) * 1000, ...o.timeouts };
    this.limits = new ConnectionLimits(limits.maxConnectionsPerAddress, limits.maxConnectionsPerListener);
    const upstream = protocol.upstreamOf(o.config);
    this.ctx = {
      protocol: protocol.name,
      listener: label,
      tlsMode: o.listen.tls,
      loginBeforeTls: o.listen.loginBeforeTls,
      legacyDevices: o.config.tls.legacyDevices,
      secureContext: this.secureContext(),
      devices: o.devices,
      throttle: o.throttle,
      tokens: o.tokens,
      upstreamLogins: o.upstreamLogins ?? new LoginQueue(o.config.logins.maxConcurrentUpstreamLogins ?? 64, o.config.logins.maxQueuedUpstreamLogins ?? 2000),
      upstream: { ...upstream, extraCaPem: o.upstreamExtraCaPem, connectTimeoutMs: timeouts.upstreamConnectMs, replyTimeoutMs: timeouts.upstreamReplyMs },
      timeouts,
      limits,
      untagged: (reply) => protocol.untagged(reply),
      ...(o.metrics ? { metrics: o.metrics } : {}),
      ...(o.slots ? { slots: o.slots } : {}),
    };
    this.server = this.createServer();
    // accept() counts a socket only once its TLS handshake is done (implicit or auto TLS); this backstop bounds those
    // still in it (or in auto's first-byte wait) (Node closes a new socket at once past maxConnections).
    this.server.maxConnections = 2 * limits.maxConnectionsPerListener;
  }

  /** Starts listening; resolves the port (useful with port 0). */
  async listen(): Promise<number> {
    this.server.listen({ port: this.o.listen.port, host: this.o.listen.host, backlog: LISTEN_BACKLOG });
    await once(this.server, 'listening');
    const address = this.server.address();
    const port = typeof address === 'object' && address ? address.port : this.o.listen.port;
    // With port 0 the real port is known only now: logs and the registry use it.
    this.ctx.listener = `${this.o.listen.host}:${port}`;
    this.log = this.o.logger.child({ protocol: this.protocol.name, listener: this.ctx.listener });
    this.log.info({ port, tls: this.o.listen.tls, upstream: `${this.ctx.upstream.host}:${this.ctx.upstream.port}` }, `${this.protocol.name} listener ready`);
    return port;
  }

  /** Stops accepting, ends pre-login sessions at once and gives spliced ones `drainMs` before destroying them. */
  async close(): Promise<DrainResult> {
    const stopped = new Promise<void>((resolve) => this.server.close(() => resolve()));
    const drained = await this.registry.drain(this.drainMs, (s) => s.protocol === this.protocol.name && s.listener === this.ctx.listener);
    await stopped;
    if (drained.ended + drained.forced > 0) this.log.info(drained, `${this.protocol.name} listener closed; sessions drained`);
    return drained;
  }

  private secureContext(): SecureContext | null {
    if (this.o.listen.tls === 'none') return null;
    if (!this.o.tls) throw new RelayError('CONFIG_INVALID', `${this.protocol.name} listener ${this.o.listen.host}:${this.o.listen.port} has tls: ${this.o.listen.tls} but tls.certFile / tls.keyFile are not set`);
    return createSecureContext(deviceTlsOptions(this.o.tls, this.o.config.tls.legacyDevices));
  }

  /**
   * One TCP server whatever the mode: TLS (implicit, or detected by `auto`) is run over the accepted socket by the
   * shared front door (tls-sniff.ts), which reads the ClientHello first so that a failed handshake says why.
   */
  private createServer(): Server {
    const server = createTcpServer((socket) => {
      const mode = this.o.listen.tls;
      if (mode === 'none' || mode === 'starttls') return this.accept(socket);
      socket.on('error', (err) => this.log.debug({ remote: socket.remoteAddress, ...errorFields(err) }, 'device connection error before TLS'));
      this.openTls(socket, mode).catch((err: unknown) => {
        this.log.error(errorFields(err), 'device TLS setup failed');
        socket.destroy();
      });
    });
    server.on('error', (err) => this.log.error(errorFields(err), 'listener error'));
    return server;
  }

  /** Implicit TLS, or `auto`: TLS when the device's first bytes are a ClientHello, plain (STARTTLS offered) otherwise. */
  private async openTls(socket: Socket, mode: 'implicit' | 'auto'): Promise<void> {
    if (mode === 'auto') {
      const sniffed = await sniffTls(socket);
      if (sniffed === 'closed') return void socket.destroy();
      if (sniffed === 'plain') return this.accept(socket);
    }
    const report = { protocol: this.protocol.name, listener: this.ctx.listener, stage: mode, legacyDevices: this.o.config.tls.legacyDevices, log: this.log, ...(this.o.metrics ? { metrics: this.o.metrics } : {}) };
    const secure = await handshakeDevice(socket, { secureContext: this.ctx.secureContext!, timeoutMs: this.ctx.timeouts.preAuthMs, report });
    if (secure) this.accept(secure);
  }

  private accept(socket: Socket): void {
    socket.setNoDelay(true);
    const remote = socket.remoteAddress ?? 'unknown';
    const admission = this.limits.tryOpen(remote);
    if (!admission.admitted) {
      const err = admission.full === 'listener'
        ? new RelayError('LISTENER_BUSY', `${admission.open} open on the listener`)
        : new RelayError('TOO_MANY_CONNECTIONS', `${admission.open} open from ${remote}`);
      this.log.info({ remote, errorCode: err.code }, `connection refused: ${err.message}`);
      this.o.metrics?.connectionRefused?.(this.protocol.name, admission.full === 'listener' ? 'listener-full' : 'address-full');
      socket.on('error', () => undefined);
      socket.end(`${this.protocol.untagged(err.replyFor(this.protocol.name))}\r\n`);
      setTimeout(() => socket.destroy(), 1000).unref();
      return;
    }
    const release = admission.release;
    const session = new DeviceSession(socket, randomBytes(6).toString('base64url'), this.ctx, this.log);
    session.log.debug({ tls: this.o.listen.tls }, 'device connected');
    this.registry.add(session);
    const metrics = this.o.metrics ?? noListenerMetrics;
    metrics.sessionOpened(this.protocol.name);
    session.closed
      .then(() => {
        release();
        metrics.sessionClosed(this.protocol.name);
      })
      .catch((err: unknown) => this.log.error(errorFields(err), 'session bookkeeping failed'));
    this.protocol
      .serve(session)
      .catch((err: unknown) => session.logFailure(err, 'session failed'))
      .finally(() => session.finish());
  }
}
