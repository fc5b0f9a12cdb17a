/**
 * One device connection of an authenticate-then-splice proxy (IMAP or POP3), whatever the protocol: the socket
 * (plain, upgraded by STARTTLS/STLS, or implicit TLS), its bounded line reader, the pre-login timeout, local
 * verification of the device's password with the failure back-off, the upstream login, and the splice. The
 * protocol fronts (src/imap, src/pop3) drive it; they own the grammar and the replies, this owns the rest.
 */
import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import type { Device, DeviceDirectory } from '../auth/device-directory.js';
import type { FailureThrottle } from '../auth/failure-throttle.js';
import type { LoginBeforeTls, TlsMode } from '../config/schema.js';
import { RelayError, isRelayError } from '../errors.js';
import { errorFields, type Logger } from '../log.js';
import { LineReader } from './line-reader.js';
import type { LoginQueue } from './login-queue.js';
import type { ListenerMetrics } from './listener-metrics.js';
import type { MailboxSlots } from './mailbox-slots.js';
import type { RegisteredSession, SessionPhase, SessionProtocol } from './session-registry.js';
import { splice, type Splice, type SpliceResult } from './splice.js';
import type { TlsStage } from './tls-diagnosis.js';
import { handshakeDevice, type TlsFailureReport } from './tls-sniff.js';
import type { UpstreamTarget } from './upstream-connect.js';
import { openUpstreamSession, type TokenSource, type UpstreamDialect, type UpstreamSession } from './upstream-login.js';

export interface ProxyTimeouts {
  /** Silence allowed from a device before it has logged in (a half-open connection goes away after this). */
  preAuthMs: number;
  /** Silence allowed (both directions) in a spliced session: IMAP ≥ 30 min for IDLE (RFC 2177), POP3 10 min (RFC 1939 §3). */
  idleMs: number;
  /** TCP connect plus TLS handshake to the upstream. */
  upstreamConnectMs: number;
  /** Each upstream reply during its login. */
  upstreamReplyMs: number;
  /** How long a closing connection may take to flush before it is destroyed. */
  lingerMs: number;
}

export interface ProxyLimits {
  /** Longest command line before login. */
  maxLineBytes: number;
  /** IMAP: total literal bytes one command may carry before login. */
  maxLiteralBytes: number;
  /** Simultaneous connections from one source address. */
  maxConnectionsPerAddress: number;
  /** Simultaneous connections on the listener, whatever their addresses. */
  maxConnectionsPerListener: number;
  /** Invalid commands before login after which the connection is closed. */
  maxErrors: number;
  /** Commands of any kind before login after which the connection is closed. */
  maxCommandsBeforeLogin: number;
}

/** The limits a protocol sets itself; the others come from the configuration. */
export type ProtocolLimits = Omit<ProxyLimits, 'maxConnectionsPerAddress' | 'maxConnectionsPerListener' | 'maxCommandsBeforeLogin'>;

/** Everything a session needs from its listener. */
export interface ProxyContext {
  protocol: SessionProtocol;
  /** `host:port` of the listener, for logs and the registry. */
  listener: string;
  tlsMode: TlsMode;
  /** The listener's rule for a login before TLS (see login-tls-rule.ts). */
  loginBeforeTls: LoginBeforeTls;
  /** `tls.legacyDevices`: what a failed handshake's diagnosis says the listener accepts. */
  legacyDevices: boolean;
  /** Device-facing TLS; null only on `tls: none` listeners. */
  secureContext: SecureContext | null;
  devices: DeviceDirectory;
  throttle: FailureThrottle;
  tokens: TokenSource;
  /** Bounds the upstream logins under way; a login past its queue is told to try again (LOGINS_BUSY). */
  upstreamLogins: LoginQueue;
  upstream: UpstreamTarget;
  timeouts: ProxyTimeouts;
  limits: ProxyLimits;
  /** A session-ending reply as the protocol writes it untagged (IMAP `* BYE …`, POP3 `-ERR …`). */
  untagged(reply: string): string;
  /** Counts failed device logins for /metrics. */
  metrics?: ListenerMetrics;
  /** The per-mailbox cap on upstream sessions (shared by every IMAP and POP3 listener); none: no cap. */
  slots?: MailboxSlots;
}

export class DeviceSession implements RegisteredSession {
  readonly protocol: SessionProtocol;
  readonly listener: string;
  readonly remote: string;
  readonly startedAt = new Date();
  phase: SessionPhase = 'pre-auth';
  device: string | null = null;
  account: string | null = null;
  socket: Socket;
  reader: LineReader;
  log: Logger;
  readonly closed: Promise<void>;
  private markClosed!: () => void;
  private readonly raw: Socket;
  /** The listener's logger: a session's loggers are its direct children (see authenticateDevice). */
  private readonly listenerLog: Logger;
  private piped: Splice | null = null;
  private errors = 0;
  private commands = 0;
  private ending = false;
  private destroyed = false;

  constructor(
    socket: Socket,
    readonly id: string,
    readonly ctx: ProxyContext,
    logger: Logger,
  ) {
    this.raw = socket;
    this.socket = socket;
    this.protocol = ctx.protocol;
    this.listener = ctx.listener;
    this.remote = socket.remoteAddress ?? 'unknown';
    this.listenerLog = logger;
    this.log = logger.child({ conn: id, remote: this.remote });
    this.reader = this.newReader(socket);
    this.closed = new Promise((resolve) => (this.markClosed = resolve));
    socket.on('error', (err) => this.log.debug(errorFields(err), 'device connection error'));
    socket.on('timeout', this.onTimeout);
    this.armPreAuthTimer();
  }

  /**
   * Called by the listener once the front is done with the session (logged out, failed, or spliced and
   * finished): closes what is left and resolves `closed` when the device socket is gone.
   */
  finish(): void {
    const done = (): void => this.markClosed();
    if (this.socket.closed) return done();
    this.socket.once('close', done);
    this.close();
  }

  /** True once the device's side is TLS (implicit, or after STARTTLS/STLS). */
  get secure(): boolean {
    return this.socket instanceof TLSSocket;
  }

  /** Writes one line and its CRLF. */
  send(line: string): void {
    if (this.socket.writable) this.socket.write(`${line}\r\n`);
  }

  /** Says `line` (if any) and closes; the socket is destroyed if it has not closed after `lingerMs`. */
  close(line?: string): void {
    if (this.ending) return;
    this.ending = true;
    if (line !== undefined) this.send(line);
    this.socket.end();
    setTimeout(() => this.socket.destroy(), this.ctx.timeouts.lingerMs).unref();
  }

  /** Counts an invalid command; true (and the connection closed) when the limit is reached. */
  tooManyErrors(): boolean {
    this.errors += 1;
    if (this.errors < this.ctx.limits.maxErrors) return false;
    this.refuse(new RelayError('TOO_MANY_ERRORS', `${this.errors} invalid commands`));
    return true;
  }

  /**
   * Counts a command read before login (whatever it was); true (and the connection closed) past the limit, so a
   * client cannot keep a pre-login session busy forever with NOOPs that each reset the idle timer.
   */
  tooManyCommands(): boolean {
    this.commands += 1;
    if (this.commands <= this.ctx.limits.maxCommandsBeforeLogin) return false;
    this.ctx.metrics?.connectionRefused?.(this.protocol, 'too-many-commands');
    this.refuse(new RelayError('TOO_MANY_COMMANDS', `${this.commands} commands before login`));
    return true;
  }

  /** Logs `err` (at a level by who must act) and closes with the protocol's untagged form of its reply. */
  refuse(err: RelayError): void {
    this.logFailure(err, 'connection closed');
    this.close(this.ctx.untagged(err.replyFor(this.protocol)));
  }

  /** Logs a failure at a level by who must act: the device (info), the platform or server (warn), us (error). */
  logFailure(err: unknown, what: string): void {
    if (!isRelayError(err)) return this.log.error(errorFields(err), `${what}: internal error`);
    const level = err.kind === 'device' ? 'info' : err.kind === 'internal' ? 'error' : 'warn';
    this.log[level]({ errorCode: err.code, ...(err.detail ? { detail: err.detail } : {}) }, `${what}: ${err.message}`);
  }

  /**
   * Upgrades the device connection to TLS after the front has said "go ahead" (IMAP STARTTLS, POP3 STLS). Bytes
   * the device sent after its command are discarded, never read as if they had come over TLS (RFC 2595 §3.1).
   * False when the handshake failed (the connection is then closed).
   */
  async upgradeTls(): Promise<boolean> {
    const injected = this.reader.release();
    if (injected.length > 0) this.log.info({ bytes: injected.length }, 'discarded data sent before the TLS handshake');
    // The TLS socket takes over the connection: its own timer from now on (the plain one would not see TLS traffic).
    this.socket.setTimeout(0);
    this.socket.off('timeout', this.onTimeout);
    // The handshake has the pre-login time limit; a failure is logged once, with what the device offered.
    const secure = this.ctx.secureContext
      ? await handshakeDevice(this.socket, { secureContext: this.ctx.secureContext, timeoutMs: this.ctx.timeouts.preAuthMs, report: this.tlsReport('starttls') })
      : null;
    if (!secure) {
      this.raw.destroy();
      return false;
    }
    secure.on('error', (err) => this.log.debug(errorFields(err), 'device TLS error'));
    secure.on('timeout', this.onTimeout);
    this.socket = secure;
    this.armPreAuthTimer();
    this.log.debug({ tls: secure.getProtocol() }, 'device connection upgraded to TLS');
    this.reader = this.newReader(secure);
    return true;
  }

  /** Milliseconds a login from this address (and, when known, for this user name) must still wait. */
  loginBlockedFor(username?: string): number {
    const waitMs = this.ctx.throttle.blockedFor(this.remote, username);
    if (waitMs > 0) this.ctx.metrics?.loginRefused?.(this.protocol, 'throttled');
    return waitMs;
  }

  /**
   * The device these credentials belong to. Throws RelayError AUTH_THROTTLED (the address, user name or pair
   * failed too often), AUTH_BUSY (too many checks queued) or AUTH_FAILED; a failure counts towards the back-off,
   * a success clears the pair's.
   */
  async authenticateDevice(username: string, password: string): Promise<Device> {
    const { throttle, devices } = this.ctx;
    const waitMs = this.loginBlockedFor(username);
    if (waitMs > 0) throw new RelayError('AUTH_THROTTLED', `${Math.ceil(waitMs / 1000)} s left for ${this.remote}`);
    this.socket.setTimeout(0); // scrypt takes a moment; the device is waiting for us, not idle
    let device: Device | null;
    try {
      device = await devices.login(username, password, this.remote);
    } catch (err) {
      if (isRelayError(err, 'AUTH_BUSY')) this.ctx.metrics?.loginRefused?.(this.protocol, 'busy');
      throw err;
    } finally {
      this.armPreAuthTimer();
    }
    if (!device) {
      throttle.failed(this.remote, username);
      this.ctx.metrics?.authFailed(this.ctx.protocol);
      throw new RelayError('AUTH_FAILED', `user name ${JSON.stringify(username)}`);
    }
    throttle.succeeded(this.remote, username);
    // The device proved its password: that is what POP-before-SMTP trusts, whatever the upstream says next.
    devices.mailboxLoggedIn(device, this.remote);
    this.device = device.name;
    this.account = device.account;
    // A child of the listener's logger, not of the connection's: pino children inherit by prototype, so a child of
    // a per-session child gets hidden classes of its own, kept for as long as the session is held (measured: 0.5 KB of heap per held session).
    this.log = this.listenerLog.child({ conn: this.id, remote: this.remote, device: device.name, account: device.account });
    return device;
  }

  /** Logs in upstream for the authenticated device's account (see `openUpstreamSession`). */
  async openUpstream<T>(dialect: UpstreamDialect<T>): Promise<UpstreamSession<T>> {
    if (!this.account) throw new RelayError('INTERNAL', 'upstream login before the device was authenticated');
    this.phase = 'logging-in';
    this.socket.setTimeout(0); // the upstream dialogue has its own time limits
    try {
      const account = this.account;
      // The mailbox's slot first, then a place in the process's login queue: a full mailbox waits on its own slots
      // without holding a place that logins for other mailboxes could use.
      const open = () =>
        this.ctx.upstreamLogins.run(async () => {
          // A device that hung up (or a shutdown) while it waited costs no upstream login.
          if (this.destroyed || this.socket.destroyed) throw new RelayError('DEVICE_GONE', 'the device closed the connection while its login waited');
          return openUpstreamSession({ account, tokens: this.ctx.tokens, target: this.ctx.upstream, dialect, log: this.log });
        });
      return await (this.ctx.slots ? this.ctx.slots.hold(account, this.protocol, this.log, open) : open());
    } catch (err) {
      if (isRelayError(err, 'LOGINS_BUSY')) this.ctx.metrics?.loginRefused?.(this.protocol, 'busy');
      this.phase = 'pre-auth'; // the device may try again
      this.armPreAuthTimer();
      throw err;
    }
  }

  /** Pipes device ⇄ upstream until either side ends; resolves with how it ended. */
  async spliceTo(upstream: UpstreamSession<unknown>): Promise<SpliceResult> {
    if (this.destroyed) {
      // Shut down while the upstream login was under way: nothing to pipe into.
      upstream.socket.destroy();
      return { end: 'shutdown', bytesFromDevice: 0, bytesFromUpstream: 0 };
    }
    const pending = this.reader.release();
    this.phase = 'spliced';
    this.socket.setTimeout(0);
    this.log.info({ upstreamMailbox: upstream.mailbox, tls: this.secure }, 'device logged in: session spliced to the mail server');
    this.piped = splice(this.socket, upstream.socket, {
      idleMs: this.ctx.timeouts.idleMs,
      lingerMs: this.ctx.timeouts.lingerMs,
      toUpstream: pending,
      toDevice: upstream.leftover,
    });
    const result = await this.piped.done;
    const durationMs = Date.now() - this.startedAt.getTime();
    const fields = { end: result.end, bytesFromDevice: result.bytesFromDevice, bytesFromUpstream: result.bytesFromUpstream, durationMs, ...(result.error ? errorFields(result.error) : {}) };
    if (result.end === 'idle-timeout') this.log.info(fields, `session closed: ${new RelayError('DEVICE_TIMEOUT').message}`);
    else this.log.info(fields, 'session ended');
    return result;
  }

  /** Registry: a pre-login session says goodbye at once; a spliced or logging-in one is left to finish. */
  shutdown(): void {
    if (this.phase !== 'pre-auth') return;
    this.log.info('closing a pre-login session: the relay is shutting down');
    this.close(this.ctx.untagged(new RelayError('SHUTTING_DOWN').replyFor(this.protocol)));
  }

  destroy(): void {
    this.destroyed = true;
    this.piped?.close();
    this.socket.destroy();
    this.raw.destroy();
  }

  /** Where this session's failed TLS handshake is logged and counted. */
  private tlsReport(stage: TlsStage): TlsFailureReport {
    return { protocol: this.protocol, listener: this.listener, stage, legacyDevices: this.ctx.legacyDevices, log: this.log, logNamesRemote: true, ...(this.ctx.metrics ? { metrics: this.ctx.metrics } : {}) };
  }

  private newReader(socket: Socket): LineReader {
    return new LineReader(socket, { maxLineBytes: this.ctx.limits.maxLineBytes, maxBufferedBytes: Math.max(this.ctx.limits.maxLineBytes * 2, 16 * 1024) });
  }

  private armPreAuthTimer(): void {
    if (this.phase === 'pre-auth') this.socket.setTimeout(this.ctx.timeouts.preAuthMs);
  }

  private readonly onTimeout = (): void => {
    if (this.phase !== 'pre-auth' || this.ending) return;
    this.refuse(new RelayError('DEVICE_TIMEOUT', `silent for ${this.ctx.timeouts.preAuthMs} ms before login`));
  };
}
