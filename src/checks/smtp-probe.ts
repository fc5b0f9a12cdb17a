/**
 * A small SMTP client for the doctor: it sees every reply (nodemailer's verify stops at AUTH and cannot try a
 * MAIL FROM without sending). Plain connect, EHLO, STARTTLS (RFC 3207) with the upstream's verified TLS options,
 * EHLO again, then whatever the doctor asks: AUTH XOAUTH2 (RFC 7628 form with the initial response; a 334 error
 * challenge is answered with an empty line as §3.2.3 asks), MAIL FROM / RSET to test a sender without sending.
 */
import { connect as connectTcp, type Socket } from 'node:net';
import { connect as connectTls, type TLSSocket } from 'node:tls';
import { RelayError } from '../errors.js';
import { buildXOAuth2 } from '../sasl/xoauth2.js';
import { upstreamTlsOptions } from '../transport/tls-options.js';

/** One SMTP reply: the code and its lines joined by a space (continuation markers dropped). */
export interface SmtpReply {
  code: number;
  text: string;
  /** Each line's text without its code. */
  lines: string[];
}

export interface SmtpProbeTarget {
  host: string;
  port: number;
  extraCaPem: string | null;
  timeoutMs?: number;
}

const MAX_REPLY_BYTES = 64 * 1024;

export class SmtpProbe {
  private buffer = '';
  private waiter: (() => void) | null = null;
  private ended: Error | null = null;
  /** EHLO keywords after STARTTLS (e.g. `SIZE 36700160`, `AUTH XOAUTH2`). */
  extensions: string[] = [];

  private constructor(private socket: Socket | TLSSocket, private readonly timeoutMs: number) {
    this.attach(socket);
  }

  /** Connects, reads the greeting, EHLO, STARTTLS, EHLO. Throws RelayError DOCTOR_SMTP_UNREACHABLE on any failure. */
  static async open(target: SmtpProbeTarget): Promise<SmtpProbe> {
    const timeoutMs = target.timeoutMs ?? 15_000;
    const where = `${target.host}:${target.port}`;
    let probe: SmtpProbe | null = null;
    try {
      const socket = await new Promise<Socket>((resolve, reject) => {
        const s = connectTcp({ host: target.host, port: target.port, timeout: timeoutMs }, () => resolve(s));
        s.once('error', reject);
        s.once('timeout', () => reject(new Error('connect timed out')));
      });
      probe = new SmtpProbe(socket, timeoutMs);
      probe.expect(220, await probe.reply());
      probe.expect(250, await probe.command('EHLO xoauth2-relay-doctor'));
      probe.expect(220, await probe.command('STARTTLS'));
      await probe.upgrade(target);
      const ehlo = await probe.command('EHLO xoauth2-relay-doctor');
      probe.expect(250, ehlo);
      probe.extensions = ehlo.lines.slice(1);
      return probe;
    } catch (err) {
      probe?.close();
      if (err instanceof RelayError) throw err;
      throw new RelayError('DOCTOR_SMTP_UNREACHABLE', `${where}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** The SIZE the server announced (RFC 1870), or null. */
  get announcedSize(): number | null {
    const size = this.extensions.find((e) => /^SIZE\b/i.test(e));
    const n = size ? Number(size.split(/\s+/)[1]) : NaN;
    return Number.isFinite(n) && n > 0 ? n : null;
  }

  /** AUTH XOAUTH2 with the initial response; on a 334 error challenge, the empty answer and the final reply. */
  async authenticate(mailbox: string, accessToken: string): Promise<SmtpReply> {
    let reply = await this.command(`AUTH XOAUTH2 ${buildXOAuth2(mailbox, accessToken)}`);
    if (reply.code === 334) reply = await this.command('');
    return reply;
  }

  /** Sends one command line and reads its reply. */
  async command(line: string): Promise<SmtpReply> {
    if (this.ended) throw this.ended;
    this.socket.write(`${line}\r\n`);
    return this.reply();
  }

  /** DATA with a message (CRLF lines, dot-stuffed here), then the final reply. */
  async data(message: string): Promise<SmtpReply> {
    const start = await this.command('DATA');
    if (start.code !== 354) return start;
    const body = message.replace(/\r?\n/g, '\r\n').replace(/^\./gm, '..');
    return this.command(`${body}${body.endsWith('\r\n') ? '' : '\r\n'}.`);
  }

  close(): void {
    if (!this.ended) this.socket.end('QUIT\r\n');
    this.ended ??= new Error('closed');
    this.socket.destroy();
  }

  private attach(socket: Socket | TLSSocket): void {
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      if (this.buffer.length > MAX_REPLY_BYTES) this.fail(new Error('reply too long'));
      this.wake();
    });
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.fail(new Error('connection closed')));
  }

  private async upgrade(target: SmtpProbeTarget): Promise<void> {
    const plain = this.socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('close');
    plain.removeAllListeners('error');
    this.socket = await new Promise<TLSSocket>((resolve, reject) => {
      const tls = connectTls({ socket: plain, ...upstreamTlsOptions(target.host, target.extraCaPem) }, () => resolve(tls));
      tls.once('error', reject);
    });
    this.attach(this.socket);
  }

  private fail(err: Error): void {
    this.ended ??= err;
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  /** The next complete reply (RFC 5321 §4.2.1: `ddd-` lines continue, `ddd ` ends). */
  private async reply(): Promise<SmtpReply> {
    const deadline = Date.now() + this.timeoutMs;
    for (;;) {
      const m = /^(?:\d{3}-[^\n]*\n)*(\d{3})(?: [^\n]*)?\n/.exec(this.buffer);
      if (m) {
        const lines = m[0].split('\n').filter(Boolean).map((l) => l.replace(/\r$/, ''));
        this.buffer = this.buffer.slice(m[0].length);
        const texts = lines.map((l) => l.slice(4));
        return { code: Number(m[1]), text: texts.join(' ').trim(), lines: texts };
      }
      if (this.ended) throw this.ended;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('no reply in time');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  private expect(code: number, reply: SmtpReply): void {
    if (reply.code !== code) throw new RelayError('DOCTOR_SMTP_REFUSED', `answered ${reply.code} ${reply.text}`);
  }
}

/** A reply as one line, the way Exchange writes it. */
export const replyLine = (r: SmtpReply): string => `${r.code} ${r.text}`;
