/**
 * Streams a message to a new file with a byte limit, then fsyncs it. Memory stays at one stream chunk
 * whatever the message size (scans run to tens of megabytes).
 */
import { open, unlink, type FileHandle } from 'node:fs/promises';
import { Transform, Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { RelayError } from '../../errors.js';
import type { FsyncCounter } from './directory-sync.js';

/**
 * Writes `source` to `path` (created exclusively, mode 0600) and syncs it; resolves the byte count.
 *
 * Over `maxBytes` it rejects with MESSAGE_TOO_LARGE and removes the file. The source is then drained, not
 * destroyed: an SMTP server (smtp-server's DATA stream) must still read up to the final dot before it can send
 * the device its `552`, or the rest of the message would be taken for commands. A failure of the source itself
 * rejects with the source's own error (the caller owns that stream); file-system failures reject with
 * SPOOL_WRITE_FAILED.
 */
export interface MessageFileOptions {
  fsyncs?: FsyncCounter;
  /** Runs with the final size while the data is being synced (the spool writes the envelope meanwhile). */
  alongsideSync?: (size: number) => Promise<void>;
}

export async function writeMessageFile(source: Readable, path: string, maxBytes: number, opts: MessageFileOptions = {}): Promise<number> {
  let size = 0;
  let sourceError: unknown = null;
  const limiter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      size += chunk.length;
      if (size > maxBytes) done(new RelayError('MESSAGE_TOO_LARGE', `more than ${maxBytes} bytes`));
      else done(null, chunk);
    },
  });
  const handle = await open(path, 'wx', 0o600).catch((err: unknown) => {
    source.resume();
    throw new RelayError('SPOOL_WRITE_FAILED', `cannot create ${path}`, { cause: err });
  });
  // pipe(), not pipeline(): pipeline would destroy the source on a limit error (see above). Piped only now,
  // with the file open, so that the limiter's error always has pipeline() below listening.
  const onSourceError = (err: unknown) => {
    sourceError = err;
    limiter.destroy(err as Error);
  };
  source.once('error', onSourceError);
  source.pipe(limiter);
  try {
    await pipeline(limiter, syncedFileWriter(handle, opts.fsyncs, () => opts.alongsideSync?.(size)));
  } catch (err) {
    source.unpipe(limiter);
    if (!sourceError) source.resume();
    await handle.close().catch(() => undefined);
    await unlink(path).catch(() => undefined);
    if (sourceError) throw sourceError;
    if (err instanceof RelayError) throw err;
    throw new RelayError('SPOOL_WRITE_FAILED', `cannot write ${path}`, { cause: err });
  } finally {
    source.removeListener('error', onSourceError);
  }
  await handle.close();
  return size;
}

/**
 * A writable over an open file that makes its data durable before it finishes. (FileHandle.createWriteStream
 * with autoClose false keeps a reference that makes FileHandle.close() wait forever, and with autoClose it
 * closes before we could sync.) Chunks that queued up while a write ran go down in one writev(2). fdatasync,
 * not fsync: the data and the size that reads need, without the timestamps nobody reads.
 */
function syncedFileWriter(handle: FileHandle, fsyncs: FsyncCounter | undefined, alongside: () => Promise<void> | undefined): Writable {
  return new Writable({
    highWaterMark: 256 * 1024,
    write(chunk: Buffer, _encoding, done) {
      writeFully(handle, [chunk]).then(() => done(), done);
    },
    writev(chunks, done) {
      writeFully(handle, chunks.map((c) => c.chunk as Buffer)).then(() => done(), done);
    },
    final(done) {
      if (fsyncs) fsyncs.files += 1;
      Promise.all([handle.datasync(), alongside()]).then(() => done(), done);
    },
  });
}

async function writeFully(handle: FileHandle, chunks: Buffer[]): Promise<void> {
  let pending = chunks;
  while (pending.length > 0) {
    let { bytesWritten } = await handle.writev(pending);
    // A short write: drop what went, continue with the rest of the chunk it stopped in.
    const rest: Buffer[] = [];
    for (const chunk of pending) {
      if (bytesWritten >= chunk.length) bytesWritten -= chunk.length;
      else {
        rest.push(bytesWritten > 0 ? chunk.subarray(bytesWritten) : chunk);
        bytesWritten = 0;
      }
    }
    pending = rest;
  }
}

/** Creates `path` (exclusively, mode 0600) with `data` and syncs its data; the caller renames it into place. */
export async function writeNewFileSynced(path: string, data: string, fsyncs?: FsyncCounter): Promise<void> {
  const handle = await open(path, 'wx', 0o600);
  try {
    await handle.writeFile(data);
    if (fsyncs) fsyncs.files += 1;
    await handle.datasync();
  } finally {
    await handle.close();
  }
}
