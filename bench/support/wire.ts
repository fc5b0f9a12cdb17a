/**
 * The load generator's side of a connection: lines for the dialogue, and byte counting (no copies, no string
 * decoding) for the 25 MB bodies, so the generator itself is not what limits the MB/s figures.
 */
import { connect as connectTcp, type Socket } from 'node:net';
import { connect as connectTls, type SecureContext } from 'node:tls';

const EMPTY = Buffer.alloc(0);

export class Wire {
  private buf: Buffer = EMPTY;
  private closed = false;
  private wake: (() => void) | null = null;

  constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
      this.wake?.();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake?.();
    });
    socket.on('error', () => undefined);
  }

  /** Plain TCP to the relay; resolves once connected. */
  static tcp(port: number, host = '127.0.0.1', localAddress?: string): Promise<Wire> {
    return new Promise((resolve, reject) => {
      const socket = connectTcp({ port, host, ...(localAddress ? { localAddress } : {}) }, () => {
        socket.off('error', reject);
        socket.setNoDelay(true);
        resolve(new Wire(socket));
      });
      socket.once('error', reject);
    });
  }

  /** Implicit TLS straight to the upstream (the baseline), verified against `context`'s CA. */
  static tls(port: number, secureContext: SecureContext): Promise<Wire> {
    return new Promise((resolve, reject) => {
      const socket = connectTls({ port, host: '127.0.0.1', secureContext, rejectUnauthorized: true }, () => {
        socket.off('error', reject);
        socket.setNoDelay(true);
        resolve(new Wire(socket));
      });
      socket.once('error', reject);
    });
  }

  send(line: string): void {
    this.socket.write(`${line}\r\n`);
  }

  /** The next line (without CRLF); null once the peer closed. */
  async line(): Promise<string | null> {
    for (;;) {
      const lf = this.buf.indexOf(0x0a);
      if (lf >= 0) {
        const line = this.buf.toString('latin1', 0, lf > 0 && this.buf[lf - 1] === 0x0d ? lf - 1 : lf);
        this.buf = this.buf.subarray(lf + 1);
        return line;
      }
      if (this.closed) return null;
      await this.wait();
    }
  }

  /** Lines until one matches; throws when the connection closes first. */
  async until(pattern: RegExp): Promise<string> {
    for (;;) {
      const line = await this.line();
      if (line === null) throw new Error(`connection closed while waiting for ${pattern}`);
      if (pattern.test(line)) return line;
    }
  }

  /** Consumes exactly `count` bytes without keeping them. */
  async skip(count: number): Promise<void> {
    let left = count;
    for (;;) {
      const take = Math.min(left, this.buf.length);
      this.buf = this.buf.subarray(take);
      left -= take;
      if (left === 0) return;
      if (this.closed) throw new Error(`connection closed with ${left} bytes to go`);
      await this.wait();
    }
  }

  /** Consumes bytes up to and including `marker` (POP3's `\r\n.\r\n`); returns how many. */
  async skipThrough(marker: Buffer): Promise<number> {
    let total = 0;
    let tail = EMPTY;
    for (;;) {
      if (this.buf.length > 0) {
        const window = tail.length > 0 ? Buffer.concat([tail, this.buf.subarray(0, marker.length)]) : EMPTY;
        const inWindow = window.length > 0 ? window.indexOf(marker) : -1;
        const at = inWindow >= 0 ? inWindow - tail.length : this.buf.indexOf(marker);
        if (at >= 0 || inWindow >= 0) {
          const end = at + marker.length;
          total += end;
          this.buf = this.buf.subarray(end);
          return total;
        }
        total += this.buf.length;
        tail = Buffer.from(this.buf.subarray(Math.max(0, this.buf.length - (marker.length - 1))));
        this.buf = EMPTY;
      }
      if (this.closed) throw new Error('connection closed before the end marker');
      await this.wait();
    }
  }

  close(): void {
    this.socket.destroy();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private wait(): Promise<void> {
    return new Promise((resolve) => {
      this.wake = () => {
        this.wake = null;
        resolve();
      };
    });
  }
}
