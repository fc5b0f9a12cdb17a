/**
 * A raw device connection that can read lines and, for big messages, stream counted bytes (an IMAP literal) or a
 * POP3 multi-line body into a hash without keeping them: so a test can fetch 30 MB through the relay and measure
 * the relay's memory, not its own.
 */
import { createHash } from 'node:crypto';
import { connect, type Socket } from 'node:net';

type Sink = { kind: 'line'; resolve: (line: string) => void } | { kind: 'count'; left: number; hash: ReturnType<typeof createHash>; resolve: (digest: string) => void } | { kind: 'pop3-body'; size: number; tail: Buffer; hash: ReturnType<typeof createHash>; resolve: (r: { sha256: string; size: number }) => void };

const TERMINATOR = Buffer.from('\r\n.\r\n');

export class StreamingClient {
  private buffer: Buffer = Buffer.alloc(0);
  private sink: Sink | null = null;
  private failure: Error | null = null;
  private reject: ((err: Error) => void) | null = null;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
      this.pump();
    });
    const fail = (err: Error) => {
      this.failure ??= err;
      this.reject?.(err);
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('connection closed')));
  }

  static connect(port: number): Promise<StreamingClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ port, host: '127.0.0.1' }, () => resolve(new StreamingClient(socket)));
      socket.once('error', reject);
    });
  }

  send(line: string): void {
    this.socket.write(`${line}\r\n`);
  }

  readLine(): Promise<string> {
    return this.wait((resolve) => ({ kind: 'line', resolve }));
  }

  /** Hashes exactly `count` bytes (an IMAP literal's content). */
  hashBytes(count: number): Promise<string> {
    return this.wait((resolve) => ({ kind: 'count', left: count, hash: createHash('sha256'), resolve }));
  }

  /** Hashes a POP3 multi-line body as sent (dot-stuffed), up to and without the final `.` line. */
  hashPop3Body(): Promise<{ sha256: string; size: number }> {
    return this.wait((resolve) => ({ kind: 'pop3-body', size: 0, tail: Buffer.alloc(0), hash: createHash('sha256'), resolve }));
  }

  /** Sends `tag command` and reads to the tagged reply; returns all lines. */
  async imap(tag: string, command: string): Promise<string[]> {
    this.send(`${tag} ${command}`);
    const lines: string[] = [];
    for (;;) {
      const line = await this.readLine();
      lines.push(line);
      if (line.startsWith(`${tag} `)) return lines;
    }
  }

  close(): void {
    this.socket.destroy();
  }

  private wait<T>(make: (resolve: (v: T) => void) => Sink): Promise<T> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<T>((resolve, reject) => {
      this.reject = reject;
      this.sink = make(resolve);
      this.pump();
    });
  }

  private pump(): void {
    const sink = this.sink;
    if (!sink) return;
    if (sink.kind === 'line') {
      const i = this.buffer.indexOf('\r\n');
      if (i < 0) return;
      const line = this.buffer.toString('utf8', 0, i);
      this.buffer = this.buffer.subarray(i + 2);
      this.sink = null;
      sink.resolve(line);
    } else if (sink.kind === 'count') {
      const take = Math.min(sink.left, this.buffer.length);
      sink.hash.update(this.buffer.subarray(0, take));
      sink.left -= take;
      this.buffer = this.buffer.subarray(take);
      if (sink.left === 0) {
        this.sink = null;
        sink.resolve(sink.hash.digest('hex'));
      }
    } else {
      // The body ends with CRLF "." CRLF; the first CRLF belongs to the body. Keep 4 bytes back for a split terminator.
      const joined = Buffer.concat([sink.tail, this.buffer]);
      this.buffer = Buffer.alloc(0);
      const end = joined.indexOf(TERMINATOR);
      if (end >= 0) {
        const body = joined.subarray(0, end + 2);
        sink.hash.update(body);
        sink.size += body.length;
        this.buffer = joined.subarray(end + TERMINATOR.length);
        this.sink = null;
        sink.resolve({ sha256: sink.hash.digest('hex'), size: sink.size });
        return;
      }
      const keep = Math.min(joined.length, TERMINATOR.length - 1);
      const done = joined.subarray(0, joined.length - keep);
      sink.hash.update(done);
      sink.size += done.length;
      sink.tail = Buffer.from(joined.subarray(joined.length - keep));
    }
    if (this.sink === null) return;
    if (this.buffer.length > 0 && sink.kind !== 'pop3-body') this.pump();
  }
}

/** A message as a POP3 server sends it after RETR's +OK: dot-stuffed (RFC 1939 §3), CRLF at the end. */
export function pop3Stuffed(message: Buffer): Buffer {
  const text = message.toString('latin1');
  const stuffed = text.replace(/(^|\r\n)\./g, '$1..');
  return Buffer.from(stuffed.endsWith('\r\n') ? stuffed : `${stuffed}\r\n`, 'latin1');
}
