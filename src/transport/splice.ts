/**
 * After login the relay is a pipe: bytes flow device ⇄ upstream untouched, with back-pressure (`pipe()` pauses the
 * faster side when the slower one's buffer is full, so a 30 MB RETR never sits in our memory), an idle timeout
 * on each socket, and one teardown rule: an error or an idle timeout destroys both sides at once; a side that
 * closes normally has what it sent delivered (`end()` flushes) and the other side is ended after it, with
 * `lingerMs` as the limit for a peer that never closes.
 */
import type { Socket } from 'node:net';

/** Why a spliced session ended. */
export type SpliceEnd = 'device-closed' | 'upstream-closed' | 'device-error' | 'upstream-error' | 'idle-timeout' | 'shutdown';

export interface SpliceOptions {
  /** Inactivity (no byte either way on a socket) after which both sides are closed. */
  idleMs: number;
  /** How long a half-finished session may take to close after one side is gone; default 30 s. */
  lingerMs?: number;
  /** Bytes the device sent after its login command (pipelined): they go upstream first. */
  toUpstream?: Buffer;
  /** Bytes the upstream sent after its login reply: they go to the device first. */
  toDevice?: Buffer;
}

export interface SpliceResult {
  end: SpliceEnd;
  bytesFromDevice: number;
  bytesFromUpstream: number;
  /** The socket error behind `device-error` / `upstream-error`. */
  error?: Error;
}

export interface Splice {
  /** Resolves once both sockets are closed. */
  readonly done: Promise<SpliceResult>;
  /** Ends the session now (shutdown): both sockets are destroyed. */
  close(): void;
}

/** Pipes `device` and `upstream` into each other until either side goes away. */
export function splice(device: Socket, upstream: Socket, o: SpliceOptions): Splice {
  // Only the linger time outlives this call: the closures below must not keep `o` (and its leftover buffers).
  const lingerMs = o.lingerMs ?? 30_000;
  const result: SpliceResult = { end: 'device-closed', bytesFromDevice: 0, bytesFromUpstream: 0 };
  let decided = false;
  let lingerTimer: NodeJS.Timeout | null = null;
  let closed = 0;
  let resolveDone!: (r: SpliceResult) => void;
  const done = new Promise<SpliceResult>((resolve) => (resolveDone = resolve));

  const decide = (end: SpliceEnd, error?: Error): boolean => {
    if (decided) return false;
    decided = true;
    result.end = end;
    if (error) result.error = error;
    return true;
  };
  const destroyBoth = (end: SpliceEnd, error?: Error): void => {
    decide(end, error);
    device.destroy();
    upstream.destroy();
  };
  const finishGracefully = (end: SpliceEnd): void => {
    if (!decide(end)) return;
    device.end();
    upstream.end();
    lingerTimer = setTimeout(() => destroyBoth(end), lingerMs);
    lingerTimer.unref();
  };
  const onClose = (): void => {
    closed += 1;
    if (closed < 2) return;
    if (lingerTimer) clearTimeout(lingerTimer);
    resolveDone(result);
  };

  device.on('data', (chunk: Buffer) => (result.bytesFromDevice += chunk.length));
  upstream.on('data', (chunk: Buffer) => (result.bytesFromUpstream += chunk.length));
  device.on('error', (err) => destroyBoth('device-error', err));
  upstream.on('error', (err) => destroyBoth('upstream-error', err));
  device.setTimeout(o.idleMs, () => destroyBoth('idle-timeout'));
  upstream.setTimeout(o.idleMs, () => destroyBoth('idle-timeout'));
  const whenClosed = (socket: Socket, end: SpliceEnd): void => {
    const handler = (): void => {
      finishGracefully(end);
      onClose();
    };
    // A socket that was already gone before the pipes were laid emits no 'close' again.
    if (socket.closed) queueMicrotask(handler);
    else socket.once('close', handler);
  };
  whenClosed(device, 'device-closed');
  whenClosed(upstream, 'upstream-closed');

  if (o.toDevice && o.toDevice.length > 0) device.write(o.toDevice);
  if (o.toUpstream && o.toUpstream.length > 0) upstream.write(o.toUpstream);
  device.pipe(upstream);
  upstream.pipe(device);

  return { done, close: () => destroyBoth('shutdown') };
}
