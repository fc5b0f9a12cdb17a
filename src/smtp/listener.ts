/**
 * The device-facing SMTP listener (smtp-server). It decides who may send (authenticated device or admitted
 * address, else 530: never an open relay), applies the device's sender and recipient rules, and answers the
 * final `250` only after the spool has the message durably on disk. It never talks to Microsoft: a scanner's
 * short timeout must never depend on Exchange.
 */
import { once } from 'node:events';
import { createServer as createTcpServer, type Server, type Socket } from 'node:net';
import { createSecureContext, type SecureContext } from 'node:tls';
import { pipeline } from 'node:stream/promises';
import { PassThrough, type Readable } from 'node:stream';
import { SMTPServer, type SMTPServerAuthentication, type SMTPServerAuthenticationResponse, type SMTPServerSession, type SMTPServerAddress, type SMTPServerDataStream } from 'smtp-server';
import type { Config } from '../config/schema.js';
import type { Device, DeviceDirectory } from '../auth/device-directory.js';
import type { FailureThrottle } from '../auth/failure-throttle.js';
import { RelayError, isRelayError, type ErrorCode } from '../errors.js';
import { errorFields, type Logger } from '../log.js';
import { ConnectionLimits } from '../transport/connection-limits.js';
import { noListenerMetrics, type ListenerMetrics } from '../transport/listener-metrics.js';
import { LISTEN_BACKLOG } from '../transport/listen-backlog.js';
import { plainLoginRule, type PlainLogin } from '../transport/login-tls-rule.js';
import { deviceTlsOptions, type DeviceTlsMaterial } from '../transport/tls-options.js';
import { handshakeDevice, reportTlsFailure, sniffTls } from '../transport/tls-sniff.js';
import { HeaderBlockEditor } from './header-block.js';
import { CrlfNormalizer } from './line-endings.js';
import { refuseAuthBeforeTls, type AuthConnectionInternals } from './auth-before-tls.js';
import { greetPromptly } from './prompt-greeting.js';
import { applySenderPolicy, envelopeSender, senderRulesFor } from './sender-policy.js';
import type { NewEnvelope } from './spool/index.js';
import { receivedHeader } from './trace-header.js';

/** Exchange Online takes at most 500 recipients per message. */
const MAX_RECIPIENTS = 500;

/** Where accepted messages go (the spool): resolves only once the message is durable. */
export interface MessageSink {
  commit(envelope: NewEnvelope, message: Readable, limits: { maxBytes: number }): Promise<{ id: string; size: number }>;
}

export interface SmtpListenerOptions {
  /** The configuration at start: ports, TLS, sizes (changing those needs a restart). */
  config: Config;
  /** The configuration in force now (a reload replaces it as a whole); each session keeps the one it began with. */
  current?: () => Config;
  listen: Config['smtp']['listen'][number];
  devices: DeviceDirectory;
  throttle: FailureThrottle;
  tls: DeviceTlsMaterial | null;
  sink: MessageSink;
  logger: Logger;
  hostname?: string;
  /** Open sessions and failed logins, for /metrics. */
  metrics?: ListenerMetrics;
}

type CallbackError = Error & { responseCode?: number };

/** An smtp-server error from a catalogue reply like `530 5.7.0 Authentication required`. */
function replyError(code: ErrorCode, detail?: string): CallbackError {
  const reply = new RelayError(code, detail).replyFor('smtp');
  const err: CallbackError = new Error(reply.slice(4));
  err.responseCode = Number(reply.slice(0, 3));
  return err;
}

function addressAllowed(address: string, allowed: readonly string[]): boolean {
  if (allowed.length === 0) return true;
  const lower = address.toLowerCase();
  return allowed.some((a) => (a.startsWith('@') ? lower.endsWith(a.toLowerCase()) : lower === a.toLowerCase()));
}

/**
 * How long a device may take over its TLS handshake on an implicit or auto listener (smtp-server's own STARTTLS
 * handshake has its socket timeout). A device that connects and never finishes is dropped after this.
 */
const TLS_HANDSHAKE_MS = 60_000;

/** How long close() lets open sessions finish before they get 421 (smtp-server's own default). */
const CLOSE_GRACE_MS = 30_000;

/** smtp-server's socket errors that mean the device went away (its own list of "quiet" errors). */
const DEVICE_GONE = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH']);

export class SmtpListener {
  /** The session server: plain text (none, starttls, auto's plain side) or, on an implicit listener, TLS. */
  readonly server: SMTPServer;
  /** auto only: the sessions that began with TLS (smtp-server learns a session is secure from `secure: true`). */
  private readonly tlsServer: SMTPServer | null;
  /**
   * implicit and auto: our own TCP server in front, which reads the first bytes (tls-sniff.ts) and hands each socket
   * to smtp-server through its public `connect()`: plain ones to `server`, TLS ones (handshake done) to the secure one.
   */
  private readonly front: Server | null;
  private readonly secureContext: SecureContext | null;
  private readonly limits: ConnectionLimits;
  private readonly releases = new Map<string, () => void>();
  /** The configuration each open session began with. */
  private readonly snapshots = new Map<string, Config>();
  /** Sessions admitted by POP-before-SMTP: decided (and logged) once per session. */
  private readonly afterMailboxLogin = new Map<string, Device>();
  private log: Logger;
  private readonly metrics: ListenerMetrics;
  private readonly reportedTls = new WeakSet<Error>();
  private readonly plainLogin: PlainLogin;
  /** `host:port` once listening (the real port when 0 was asked for). */
  private boundLabel: string | null = null;

  constructor(private readonly o: SmtpListenerOptions) {
    this.metrics = o.metrics ?? noListenerMetrics;
    this.log = o.logger.child({ protocol: 'smtp', listener: `${o.listen.host}:${o.listen.port}` });
    this.limits = new ConnectionLimits(o.config.smtp.maxConnectionsPerAddress, o.config.smtp.maxConnectionsPerListener);
    this.plainLogin = plainLoginRule(o.listen.tls, o.listen.loginBeforeTls);
    const mode = o.listen.tls;
    if (mode !== 'none' && !o.tls) throw new RelayError('CONFIG_INVALID', `smtp listener ${o.listen.host}:${o.listen.port} has tls: ${mode} but tls.certFile / tls.keyFile are not set`);
    this.secureContext = (mode === 'implicit' || mode === 'auto') && o.tls ? createSecureContext(deviceTlsOptions(o.tls, o.config.tls.legacyDevices)) : null;
    this.server = this.newServer(mode === 'implicit');
    this.tlsServer = mode === 'auto' ? this.newServer(true) : null;
    this.front = mode === 'implicit' || mode === 'auto' ? this.newFront() : null;
  }

  /** One smtp-server instance with the relay's hooks; `secure`: its sessions arrive with TLS done. */
  private newServer(secure: boolean): SMTPServer {
    const o = this.o;
    const tls = o.listen.tls !== 'none' && o.tls ? deviceTlsOptions(o.tls, o.config.tls.legacyDevices) : {};
    const server = new SMTPServer({
      ...tls,
      secure,
      hideSTARTTLS: o.listen.tls === 'none',
      disabledCommands: o.listen.tls === 'none' ? ['STARTTLS'] : [],
      name: o.hostname ?? 'xoauth2-relay',
      banner: 'ready', // smtp-server prefixes "<name> ESMTP": the greeting reads "220 xoauth2-relay ESMTP ready"
      authMethods: ['PLAIN', 'LOGIN'],
      authOptional: true, // address-admitted devices never log in; MAIL FROM decides (530 otherwise)
      // Old scanners log in over plain text on the LAN (that is why they need us), on `none` listeners; elsewhere
      // the one rule of login-tls-rule.ts applies at the AUTH command (auth-before-tls.ts, RFC 3207's `530 5.7.0`;
      // smtp-server's own allowInsecureAuth: false would answer `538`), and again in onAuth.
      allowInsecureAuth: true,
      size: o.config.smtp.maxMessageBytes,
      rejectOversized: true,
      maxRecipients: MAX_RECIPIENTS,
      hideDSN: true,
      disableReverseLookup: true,
      logger: false,
      socketTimeout: 5 * 60_000,
      // Our cap answers in onConnect; this backstop covers sockets still in their TLS handshake, which never get there.
      maxClients: 2 * o.config.smtp.maxConnectionsPerListener,
      onConnect: (session, cb) => this.guarded('CONNECT', cb, () => this.onConnect(session, cb)),
      // smtp-server does not look at what these return: each catches its own failure and answers the device.
      onAuth: (auth, session, cb) => {
        this.onAuth(auth, session, cb).catch((err: unknown) => this.hookFailed(err, 'AUTH', cb));
      },
      onMailFrom: (address, session, cb) => this.guarded('MAIL FROM', cb, () => this.onMailFrom(address, session, cb)),
      onRcptTo: (address, session, cb) => this.guarded('RCPT TO', cb, () => this.onRcptTo(address, session, cb)),
      onData: (stream, session, cb) => {
        this.onData(stream, session, cb).catch((err: unknown) => {
          stream.resume();
          this.hookFailed(err, 'DATA', cb);
        });
      },
      onClose: (session) => {
        this.snapshots.delete(session.id);
        this.afterMailboxLogin.delete(session.id);
        this.releases.get(session.id)?.();
      },
    });
    server.on('error', (err) => this.onServerError(err));
    // No 100 ms early-talker wait per session (prompt-greeting.ts); AUTH refused at the command while plain text
    // where the listener's rule says TLS first (auth-before-tls.ts).
    const prepare = this.plainLogin === 'tls-first' ? (connection: unknown) => refuseAuthBeforeTls(connection as AuthConnectionInternals, (remote) => this.authBeforeTls(remote)) : undefined;
    return greetPromptly(server, prepare);
  }

  /**
   * smtp-server's errors: a failed STARTTLS handshake (inside smtp-server the ClientHello bytes are not visible:
   * the diagnosis comes from OpenSSL's error alone), a device gone mid-transaction (its doing: info), or else warn.
   */
  private onServerError(err: Error & { code?: string; meta?: { stage?: string }; remoteAddress?: string }): void {
    if (err.meta?.stage === 'connect' || /^ERR_(SSL|TLS)_/.test(err.code ?? '')) {
      // smtp-server reports one failed upgrade through several of the TLS socket's events: one line per session.
      if (this.reportedTls.has(err)) return;
      this.reportedTls.add(err);
      const report = { protocol: 'smtp' as const, listener: this.label(), stage: 'starttls' as const, legacyDevices: this.o.config.tls.legacyDevices, log: this.log, metrics: this.metrics };
      reportTlsFailure(report, null, 'unknown', err, err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT', err.remoteAddress);
      return;
    }
    if (err.code && DEVICE_GONE.has(err.code)) return this.log.info({ remote: err.remoteAddress, ...errorFields(err) }, 'device connection dropped during a mail transaction');
    this.log.warn(errorFields(err), 'smtp connection error');
  }

  /** The TCP server in front of smtp-server on implicit and auto listeners. */
  private newFront(): Server {
    const front = createTcpServer((socket) => {
      socket.on('error', (err) => this.log.debug({ remote: socket.remoteAddress, ...errorFields(err) }, 'device connection error before the SMTP session'));
      this.openSession(socket).catch((err: unknown) => {
        this.log.error(errorFields(err), 'smtp connection setup failed');
        socket.destroy();
      });
    });
    // onConnect applies the real cap; this bounds sockets still in the first-byte wait or the TLS handshake.
    front.maxConnections = 2 * this.o.config.smtp.maxConnectionsPerListener;
    front.on('error', (err) => this.log.error(errorFields(err), 'listener error'));
    return front;
  }

  /** implicit: TLS handshake, then the secure session; auto: the same when the first bytes are a ClientHello, else plain. */
  private async openSession(socket: Socket): Promise<void> {
    const mode: 'auto' | 'implicit' = this.o.listen.tls === 'auto' ? 'auto' : 'implicit';
    if (mode === 'auto') {
      const sniffed = await sniffTls(socket);
      if (sniffed === 'closed') return void socket.destroy();
      // Through `connect()`, smtp-server's public entry (another part of the relay may override it on the instance).
      if (sniffed === 'plain') return this.server.connect(socket, {});
    }
    const report = { protocol: 'smtp' as const, listener: this.label(), stage: mode, legacyDevices: this.o.config.tls.legacyDevices, log: this.log, metrics: this.metrics };
    const secure = await handshakeDevice(socket, { secureContext: this.secureContext!, timeoutMs: TLS_HANDSHAKE_MS, report });
    if (secure) (this.tlsServer ?? this.server).connect(secure, {});
  }

  private label(): string {
    return this.boundLabel ?? `${this.o.listen.host}:${this.o.listen.port}`;
  }

  /** Runs a synchronous hook; a throw becomes the device's temporary failure instead of smtp-server's problem. */
  private guarded(hook: string, cb: (err: Error) => void, run: () => void): void {
    try {
      run();
    } catch (err) {
      this.hookFailed(err, hook, cb);
    }
  }

  /** A hook's unexpected failure: logged with its code, the device gets a temporary failure, the process goes on. */
  private hookFailed(err: unknown, hook: string, cb: (err: Error) => void): void {
    this.log.error({ ...errorFields(err), hook, code: 'INTERNAL' }, `smtp ${hook} failed unexpectedly: the device was told to try again later`);
    try {
      cb(replyError('INTERNAL'));
    } catch {
      // the session is already gone
    }
  }

  async listen(): Promise<number> {
    const net = this.front ?? this.server.server;
    net.listen({ port: this.o.listen.port, host: this.o.listen.host, backlog: LISTEN_BACKLOG });
    await once(net, 'listening');
    const address = net.address();
    const port = typeof address === 'object' && address ? address.port : this.o.listen.port;
    this.boundLabel = `${this.o.listen.host}:${port}`;
    // With port 0 the real port is known only now: logs and metrics use it.
    this.log = this.o.logger.child({ protocol: 'smtp', listener: this.boundLabel });
    this.log.info({ port, tls: this.o.listen.tls, loginBeforeTls: this.o.listen.loginBeforeTls }, 'smtp listener ready');
    return port;
  }

  /** Stops accepting and closes the sessions: they get a grace period, then 421. */
  async close(): Promise<void> {
    if (!this.front) return new Promise((resolve) => this.server.close(() => resolve()));
    const front = this.front;
    const stopped = new Promise<void>((resolve) => front.close(() => resolve()));
    const servers = [this.server, this.tlsServer].filter((s): s is SMTPServer => s !== null);
    // Marks them closing (a session's next command gets 421). An instance that never listened clears its own
    // grace timer at once, so the sessions are ended here after the same grace.
    for (const server of servers) server.close(() => undefined);
    const grace = setTimeout(() => {
      for (const server of servers) {
        for (const connection of server.connections) {
          connection.send(421, 'Server shutting down');
          connection.close();
        }
      }
    }, CLOSE_GRACE_MS);
    await stopped;
    clearTimeout(grace);
  }

  private onConnect(session: SMTPServerSession, cb: (err?: Error | null) => void): void {
    // No failed-login check here: a device admitted by address must still send from an address a guesser shares.
    const remote = session.remoteAddress;
    const admission = this.limits.tryOpen(remote);
    if (!admission.admitted) {
      const code = admission.full === 'listener' ? 'LISTENER_BUSY' : 'TOO_MANY_CONNECTIONS';
      this.log.info({ remote, open: admission.open, errorCode: code }, `refused: too many connections ${admission.full === 'listener' ? 'on this listener' : 'from this address'}`);
      this.metrics.connectionRefused?.('smtp', admission.full === 'listener' ? 'listener-full' : 'address-full');
      return cb(replyError(code));
    }
    const release = admission.release;
    this.metrics.sessionOpened('smtp');
    this.snapshots.set(session.id, this.o.current?.() ?? this.o.config);
    this.releases.set(session.id, () => {
      release();
      this.releases.delete(session.id);
      this.metrics.sessionClosed('smtp');
    });
    cb();
  }

  private authBeforeTls(remote: string): void {
    const err = new RelayError('TLS_REQUIRED', 'AUTH before STARTTLS');
    this.log.info({ remote, errorCode: err.code }, `device login refused: ${err.message}`);
  }

  private async onAuth(auth: SMTPServerAuthentication, session: SMTPServerSession, cb: (err: Error | null | undefined, response?: SMTPServerAuthenticationResponse) => void): Promise<void> {
    const remote = session.remoteAddress;
    const username = auth.username ?? '';
    if (!session.secure && this.plainLogin === 'tls-first') {
      // auth-before-tls.ts refuses the AUTH command itself; this stays as the rule's last word.
      this.authBeforeTls(remote);
      return cb(replyError('TLS_REQUIRED'));
    }
    if (this.o.throttle.blockedFor(remote, username) > 0) {
      this.metrics.loginRefused?.('smtp', 'throttled');
      return cb(replyError('AUTH_THROTTLED'));
    }
    let device: Device | null;
    try {
      device = await this.o.devices.login(username, auth.password ?? '', remote);
    } catch (err) {
      if (!isRelayError(err, 'AUTH_BUSY')) throw err;
      this.log.info({ remote, errorCode: err.code }, `device login not checked: ${err.message}`);
      this.metrics.loginRefused?.('smtp', 'busy');
      return cb(replyError('AUTH_BUSY'));
    }
    if (!device) {
      this.o.throttle.failed(remote, username);
      this.metrics.authFailed('smtp');
      this.log.info({ remote, username: auth.username, method: auth.method }, 'device login failed');
      return cb(replyError('AUTH_FAILED'));
    }
    this.o.throttle.succeeded(remote, username);
    this.log.debug({ remote, device: device.name }, 'device logged in');
    cb(null, { user: device });
  }

  /** The device behind this session: logged in, or admitted by address. */
  private deviceOf(session: SMTPServerSession): Device | null {
    // `||`, not `??`: smtp-server resets `user` to false (not undefined) after STARTTLS.
    return (session.user as Device | false | undefined) || this.o.devices.byAddress(session.remoteAddress) || this.admittedByMailboxLogin(session);
  }

  /** POP-before-SMTP: a device that logged in over POP3/IMAP from this address lately (off unless configured). */
  private admittedByMailboxLogin(session: SMTPServerSession): Device | null {
    const known = this.afterMailboxLogin.get(session.id);
    if (known) return known;
    const device = this.o.devices.byMailboxLogin(session.remoteAddress);
    if (!device) return null;
    this.afterMailboxLogin.set(session.id, device);
    this.log.info({ remote: session.remoteAddress, device: device.name, account: device.account }, 'admitted without AUTH by POP-before-SMTP: this device logged in over POP3/IMAP from this address within its popBeforeSmtpMinutes');
    return device;
  }

  private onMailFrom(address: SMTPServerAddress, session: SMTPServerSession, cb: (err?: Error | null) => void): void {
    const device = this.deviceOf(session);
    if (!device) {
      this.metrics.authFailed('smtp');
      this.log.info({ remote: session.remoteAddress, from: address.address }, 'refused MAIL FROM: not logged in and address not admitted');
      return cb(replyError('SMTP_AUTH_REQUIRED'));
    }
    if (!addressAllowed(address.address, device.allowedSenders)) return cb(replyError('SENDER_NOT_ALLOWED'));
    cb();
  }

  private onRcptTo(address: SMTPServerAddress, session: SMTPServerSession, cb: (err?: Error | null) => void): void {
    const device = this.deviceOf(session);
    if (!device) return cb(replyError('SMTP_AUTH_REQUIRED'));
    if (session.envelope.rcptTo.length >= MAX_RECIPIENTS) return cb(replyError('TOO_MANY_RECIPIENTS'));
    const domains = device.allowedRecipientDomains.map((d) => `@${d.replace(/^@/, '')}`);
    if (!addressAllowed(address.address, domains)) return cb(replyError('RECIPIENT_NOT_ALLOWED'));
    cb();
  }

  private async onData(stream: SMTPServerDataStream, session: SMTPServerSession, cb: (err?: Error | null, message?: string) => void): Promise<void> {
    const device = this.deviceOf(session);
    if (!device || !session.envelope.mailFrom) {
      stream.resume();
      return cb(replyError('SMTP_AUTH_REQUIRED'));
    }
    const config = this.snapshots.get(session.id) ?? this.o.config;
    const account = config.accounts[device.account];
    if (!account) {
      // The device list and the accounts change together at a reload; a session that began before it and then
      // logged in as a device of a new account has no such account in its snapshot: it is told to try again.
      stream.resume();
      this.log.info({ device: device.name, account: device.account }, 'device names an account this session\'s configuration does not have (reloaded meanwhile): try again later');
      return cb(replyError('CONFIG_CHANGED'));
    }
    const senders = senderRulesFor(account, config.devices.find((d) => d.name === device.name));
    const envelope: NewEnvelope = {
      device: device.name,
      account: device.account,
      mailFrom: envelopeSender(senders, session.envelope.mailFrom.address),
      rcptTo: session.envelope.rcptTo.map((r) => r.address),
      receivedAt: new Date().toISOString(),
      remoteAddress: session.remoteAddress,
      smtpUtf8: Boolean((session.envelope as { smtpUtf8?: boolean }).smtpUtf8),
    };
    const edit = (h: string) => applySenderPolicy(h, senders);
    const trace = receivedHeader(session, this.o.hostname ?? 'xoauth2-relay');
    // The spool must never commit a message the device is told was too big (smtp-server answers 552 itself): the
    // stream fails at its end when smtp-server counted more than SIZE, so the commit is abandoned, not undone.
    const limit = this.o.config.smtp.maxMessageBytes;
    const body = new PassThrough({
      flush: (done) => done(stream.sizeExceeded ? new RelayError('MESSAGE_TOO_LARGE', `over smtp.maxMessageBytes (${limit})`) : null),
    });
    // smtp-server ends the stream with ECONNECTION when the device closes the connection before the final dot.
    let deviceLeft = false;
    stream.once('error', (err: Error & { code?: string }) => {
      if (err.code === 'ECONNECTION') deviceLeft = true;
    });
    const feeding = pipeline(stream, new CrlfNormalizer(), new HeaderBlockEditor(edit, trace), body);
    // Room for the trace line and CR added to bare LFs beyond what smtp-server counted.
    const maxBytes = Math.ceil(this.o.config.smtp.maxMessageBytes * 1.05) + 64 * 1024;
    try {
      const [{ id, size }] = await Promise.all([this.o.sink.commit(envelope, body, { maxBytes }), feeding]);
      if (stream.sizeExceeded) return cb(replyError('INTERNAL')); // smtp-server answers 552 itself (rejectOversized)
      this.log.info({ id, device: device.name, account: device.account, from: envelope.mailFrom, rcpts: envelope.rcptTo.length, size }, 'message accepted');
      cb(null, `2.0.0 Ok: queued as ${id}`);
    } catch (err) {
      stream.resume(); // drain what is left so the session can go on
      body.resume();
      await feeding.catch(() => undefined);
      if (stream.sizeExceeded) return cb(replyError('INTERNAL'));
      if (deviceLeft) {
        // The device's doing (power cycle, its own timeout, a network drop): nothing was stored, nothing for us to fix.
        this.log.info({ device: device.name, remote: session.remoteAddress, ...errorFields(err) }, 'device closed the connection in the middle of DATA: message not stored, the device must send it again');
        return cb(replyError('INTERNAL'));
      }
      this.log.error({ ...errorFields(err), device: device.name }, 'message not stored');
      cb(replyError(isRelayError(err) ? err.code : 'SPOOL_WRITE_FAILED'));
    }
  }
}
