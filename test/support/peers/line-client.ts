/**
 * A tiny line-based client for checking the peers over raw sockets: implicit TLS (IMAPS, POP3S) or plain TCP
 * upgraded with STARTTLS (submission). It knows just enough of each protocol to collect one reply:
 * SMTP multi-line replies (RFC 5321 §4.2.1), IMAP tagged completions (RFC 9051 §7.1), POP3 status lines (RFC 1939 §3).
 * Test helper: no length limits, no pipelining, one reader at a time.
 */
import { connect as connectTcp, type Socket } from 'node:net';
import { connect as connectTls, type TLSSocket } from 'node:tls';

export interface LineClientOptions {
  port: number;
  host?: string;
  /** Implicit TLS from the first byte, trusting `ca`. */
  tls?: boolean;
  /** CA certificate (PEM) to trust for TLS; required for `tls` and `startTls`. */
  ca?: string;
  /** How long `readLine` waits before rejecting; default 10 s. */
  timeoutMs?: number;
  /** Source address of a plain connection (127.0.0.x: loopback, but a distinct address to the relay). */
  localAddress?: string;
}

export interface SmtpReply {
  code: number;
  lines: string[];
  /** All lines joined by "\n", codes included. */
  text: string;
}

export class LineClient {
  private buffer = '';
  private readonly lines: string[] = [];
  private waiter: { resolve: (line: string) => void; reject: (error: Error) => void } | undefined;
  private ended: Error | undefined;
  private onData = (chunk: Buffer): void => this.receive(chunk);
  private onEnd = (): void => this.fail(new Error('connection closed by the server'));
  private onError = (error: Error): void => this.fail(error);

  private constructor(
    private socket: Socket | TLSSocket,
    private readonly options: LineClientOptions,
  ) {
    this.attach();
  }

  /** Connects (and completes the TLS handshake with `tls`); resolves before any byte is read. */
  static connect(options: LineClientOptions): Promise<LineClient> {
    const host = options.host ?? '127.0.0.1';
    return new Promise((resolve, reject) => {
      const socket = options.tls
        ? connectTls({ host, port: options.port, ca: options.ca }, () => resolve(new LineClient(socket, options)))
        : connectTcp({ host, port: options.port, localAddress: options.localAddress }, () => resolve(new LineClient(socket, options)));
      socket.once('error', reject);
    });
  }

  /** True once the socket is TLS-protected. */
  get encrypted(): boolean {
    return 'encrypted' in this.socket && this.socket.encrypted === true;
  }

  /** Sends `line` followed by CRLF. */
  send(line: string): void {
    this.socket.write(`${line}\r\n`);
  }

  /** Sends raw bytes (e.g. a DATA body that already ends with CRLF.CRLF). */
  write(data: string | Buffer): Promise<void> {
    return new Promise((resolve, reject) => this.socket.write(data, (error) => (error ? reject(error) : resolve())));
  }

  /** The next line, without its CRLF. */
  readLine(timeoutMs = this.options.timeoutMs ?? 10_000): Promise<string> {
    const queued = this.lines.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.ended) return Promise.reject(this.ended);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(new Error(`no line from port ${this.options.port} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiter = {
        resolve: (line) => (clearTimeout(timer), resolve(line)),
        reject: (error) => (clearTimeout(timer), reject(error)),
      };
    });
  }

  /** One SMTP reply: lines until "ddd " (the last line of a multi-line reply). */
  async smtpReply(): Promise<SmtpReply> {
    const lines: string[] = [];
    for (;;) {
      const line = await this.readLine();
      lines.push(line);
      if (/^\d{3}(?: |$)/.test(line)) return { code: Number(line.slice(0, 3)), lines, text: lines.join('\n') };
      if (!/^\d{3}-/.test(line)) throw new Error(`not an SMTP reply line: ${JSON.stringify(line)}`);
    }
  }

  /** Sends an SMTP command and reads its reply. */
  async smtp(command: string): Promise<SmtpReply> {
    this.send(command);
    return this.smtpReply();
  }

  /**
   * Sends `tag command` and collects lines up to the tagged completion. A continuation request ("+ …") is answered
   * with `onContinue(line)` (default: an empty line, which is how a client acknowledges a SASL error challenge).
   */
  async imap(tag: string, command: string, onContinue: (line: string) => string = () => ''): Promise<string[]> {
    this.send(`${tag} ${command}`);
    const lines: string[] = [];
    for (;;) {
      const line = await this.readLine();
      lines.push(line);
      if (line.startsWith(`${tag} `)) return lines;
      if (line.startsWith('+')) this.send(onContinue(line));
    }
  }

  /** Reads a POP3 multi-line response body up to the terminating "." (after its status line was read). */
  async pop3MultiLine(): Promise<string[]> {
    const lines: string[] = [];
    for (;;) {
      const line = await this.readLine();
      if (line === '.') return lines;
      lines.push(line.startsWith('..') ? line.slice(1) : line);
    }
  }

  /** Upgrades to TLS after the server agreed to STARTTLS/STLS; verifies the certificate against `ca`. */
  async startTls(servername?: string): Promise<void> {
    if (this.buffer.length > 0 || this.lines.length > 0) throw new Error('data received before the TLS handshake');
    this.detach();
    const plain = this.socket;
    this.socket = await new Promise<TLSSocket>((resolve, reject) => {
      const host = this.options.host ?? '127.0.0.1';
      // The certificate is checked against `servername` when given, else against the host (an IP SAN).
      const secure = connectTls({ socket: plain, host, ca: this.options.ca, servername }, () => resolve(secure));
      secure.once('error', reject);
    });
    this.attach();
  }

  /** Closes the connection at once. */
  close(): void {
    this.socket.destroy();
  }

  private attach(): void {
    this.socket.on('data', this.onData);
    this.socket.on('end', this.onEnd);
    this.socket.on('error', this.onError);
  }

  private detach(): void {
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    this.socket.off('error', this.onError);
  }

  private receive(chunk: Buffer): void {
    this.buffer += chunk.toString('latin1');
    let index: number;
    while ((index = this.buffer.indexOf('\r\n')) >= 0) {
      this.deliver(this.buffer.slice(0, index));
      this.buffer = this.buffer.slice(index + 2);
    }
  }

  private deliver(line: string): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    if (waiter) waiter.resolve(line);
    else this.lines.push(line);
  }

  private fail(error: Error): void {
    this.ended ??= error;
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.reject(error);
  }
}

/**
 * Decodes the base64 JSON after a continuation prefix ("+ " in IMAP/POP3, "334 " in SMTP): the XOAUTH2 error
 * challenge, e.g. {"status":"401","schemes":"bearer","scope":"mail"}.
 */
export function decodeBase64Json(line: string, prefix: string): unknown {
  return JSON.parse(Buffer.from(line.slice(prefix.length).trim(), 'base64').toString('utf8'));
}

/** True when a TCP connection to 127.0.0.1:port is refused (ECONNREFUSED), as after a daemon stopped. */
export function connectionRefused(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connectTcp({ port, host });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'));
  });
}
