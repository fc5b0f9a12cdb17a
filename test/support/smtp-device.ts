/**
 * A scanner on a raw socket: sends exactly the bytes a test says (HELO, bare LF, pipelined commands, smuggling
 * sequences) from a chosen local address, and reads SMTP replies (multi-line aware, RFC 5321 §4.2.1).
 */
import { connect, type Socket } from 'node:net';

export interface SmtpReplyText {
  code: number;
  text: string;
}

export class SmtpDevice {
  private buffer = '';
  private readonly replies: SmtpReplyText[] = [];
  private waiting: ((r: SmtpReplyText) => void) | null = null;
  private partial: string[] = [];

  private constructor(private readonly socket: Socket) {
    socket.on('data', (d: Buffer) => this.receive(d.toString('latin1')));
  }

  static connect(port: number, localAddress = '127.0.0.1'): Promise<SmtpDevice> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port, localAddress }, () => resolve(new SmtpDevice(socket)));
      socket.once('error', reject);
    });
  }

  private receive(text: string): void {
    this.buffer += text;
    let nl: number;
    while ((nl = this.buffer.indexOf('\n')) !== -1) {
      const line = this.buffer.slice(0, nl).replace(/\r$/, '');
      this.buffer = this.buffer.slice(nl + 1);
      this.partial.push(line);
      if (/^\d{3} /.test(line) || /^\d{3}$/.test(line)) {
        const reply = { code: Number(line.slice(0, 3)), text: this.partial.join('\n') };
        this.partial = [];
        if (this.waiting) {
          const w = this.waiting;
          this.waiting = null;
          w(reply);
        } else this.replies.push(reply);
      }
    }
  }

  /** The next complete reply. */
  reply(timeoutMs = 15_000): Promise<SmtpReplyText> {
    const queued = this.replies.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting = null;
        reject(new Error(`no SMTP reply within ${timeoutMs} ms (buffer: ${JSON.stringify(this.buffer.slice(-200))})`));
      }, timeoutMs);
      this.waiting = (r) => {
        clearTimeout(timer);
        resolve(r);
      };
    });
  }

  /** Sends raw bytes as they are. */
  write(data: string | Buffer): void {
    this.socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
  }

  /** Sends a command line (CRLF added) and reads its reply. */
  async command(line: string): Promise<SmtpReplyText> {
    this.write(`${line}\r\n`);
    return this.reply();
  }

  close(): void {
    this.socket.destroy();
  }
}
