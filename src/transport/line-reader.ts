/**
 * Reads CRLF-terminated lines (and counted byte runs, for IMAP literals) from a socket with hard limits, for the
 * pre-login phase where the peer may be anything: a printer, a port scanner, or garbage. Memory stays bounded:
 * a line longer than `maxLineBytes` is an error (never buffered further), and the socket is paused while more than
 * `maxBufferedBytes` wait unread (a client pipelining commands gets TCP back-pressure, not our RAM).
 *
 * `release()` hands the socket back with whatever was read but not consumed, so a session can be spliced (the
 * leftover goes upstream first) or upgraded to TLS (the leftover is discarded: RFC 2595 §3.1, RFC 3207 §6).
 */
import type { Duplex } from 'node:stream';
import { RelayError } from '../errors.js';

export interface LineReaderOptions {
  /** Longest line accepted, without its line ending. */
  maxLineBytes: number;
  /** Unread bytes above which the socket is paused; default twice `maxLineBytes`. */
  maxBufferedBytes?: number;
}

type Waiter =
  | { kind: 'line'; resolve: (line: string | null) => void; reject: (err: Error) => void }
  | { kind: 'bytes'; count: number; resolve: (bytes: Buffer | null) => void; reject: (err: Error) => void };

const EMPTY = Buffer.alloc(0);
const LF = 0x0a;
const CR = 0x0d;

export class LineReader {
  private buffer: Buffer = EMPTY;
  private waiter: Waiter | null = null;
  private ended = false;
  private released = false;
  private readonly maxBuffered: number;
  /** The error that ended the stream, if it was not a clean end. */
  failure: Error | null = null;

  constructor(
    private readonly source: Duplex,
    private readonly o: LineReaderOptions,
  ) {
    this.maxBuffered = o.maxBufferedBytes ?? o.maxLineBytes * 2;
    source.on('data', this.onData);
    source.on('end', this.onEnd);
    source.on('close', this.onEnd);
    source.on('error', this.onError);
    source.resume();
  }

  /** Bytes received and not yet consumed. */
  get buffered(): number {
    return this.buffer.length;
  }

  /**
   * The next line without its line ending (CRLF, or a bare LF as sloppy firmware sends), decoded as UTF-8;
   * null when the peer closed first. Rejects with RelayError LINE_TOO_LONG for an overlong line.
   */
  readLine(): Promise<string | null> {
    return new Promise((resolve, reject) => {
      this.expect({ kind: 'line', resolve, reject });
    });
  }

  /** Exactly `count` bytes (an IMAP literal); null when the peer closed first. */
  readBytes(count: number): Promise<Buffer | null> {
    return new Promise((resolve, reject) => {
      this.expect({ kind: 'bytes', count, resolve, reject });
    });
  }

  /** Stops reading; returns what was received and not consumed. The socket is left paused. */
  release(): Buffer {
    if (this.released) return EMPTY;
    this.released = true;
    this.source.off('data', this.onData);
    this.source.off('end', this.onEnd);
    this.source.off('close', this.onEnd);
    this.source.off('error', this.onError);
    this.source.pause();
    this.waiter?.resolve(null);
    this.waiter = null;
    const rest = this.buffer;
    this.buffer = EMPTY;
    return rest;
  }

  private expect(waiter: Waiter): void {
    if (this.waiter) throw new Error('LineReader: one read at a time');
    if (this.released) return waiter.resolve(null);
    this.waiter = waiter;
    this.pump();
    if (this.waiter && this.source.isPaused() && this.buffer.length < this.highWater()) this.source.resume();
  }

  private highWater(): number {
    return this.waiter?.kind === 'bytes' ? Math.max(this.maxBuffered, this.waiter.count) : this.maxBuffered;
  }

  private readonly onData = (chunk: Buffer): void => {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    this.pump();
    if (this.buffer.length >= this.highWater()) this.source.pause();
  };

  private readonly onEnd = (): void => {
    this.ended = true;
    this.pump();
  };

  private readonly onError = (err: Error): void => {
    this.failure ??= err;
    this.onEnd();
  };

  private pump(): void {
    const waiter = this.waiter;
    if (!waiter) return;
    if (waiter.kind === 'bytes') {
      if (this.buffer.length >= waiter.count) {
        this.waiter = null;
        const bytes = this.buffer.subarray(0, waiter.count);
        this.buffer = this.buffer.subarray(waiter.count);
        waiter.resolve(Buffer.from(bytes));
      } else if (this.ended) {
        this.waiter = null;
        waiter.resolve(null);
      }
      return;
    }
    const lf = this.buffer.indexOf(LF);
    if (lf < 0) {
      // No line ending yet: more than the limit (plus a CR) is an overlong line whatever follows.
      if (this.buffer.length > this.o.maxLineBytes + 1) return this.fail(waiter, new RelayError('LINE_TOO_LONG', `more than ${this.o.maxLineBytes} bytes without a line ending`));
      if (this.ended) {
        this.waiter = null;
        waiter.resolve(null);
      }
      return;
    }
    const end = lf > 0 && this.buffer[lf - 1] === CR ? lf - 1 : lf;
    if (end > this.o.maxLineBytes) return this.fail(waiter, new RelayError('LINE_TOO_LONG', `a line of ${end} bytes (limit ${this.o.maxLineBytes})`));
    const line = this.buffer.toString('utf8', 0, end);
    this.buffer = this.buffer.subarray(lf + 1);
    this.waiter = null;
    waiter.resolve(line);
  }

  private fail(waiter: Waiter, err: Error): void {
    this.waiter = null;
    this.buffer = EMPTY; // never keep the garbage around
    waiter.reject(err);
  }
}
