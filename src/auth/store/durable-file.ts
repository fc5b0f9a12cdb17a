/**
 * Crash-safe file replacement: after a power cut a reader finds either the old file or the new
 * one, never a torn mix. Write a temp file in the same directory, fsync it, rename it over the
 * target (atomic within one file system, POSIX rename(2)), then fsync the directory so the
 * rename itself is on disk.
 */
import { randomBytes } from 'node:crypto';
import { chmod, link, mkdir, open, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** Durably replaces `path` with `data`; the file gets `mode` (bits the umask clears stay cleared). */
export async function replaceFileDurably(path: string, data: string | Buffer, mode: number): Promise<void> {
  const tempPath = tempPathFor(path);
  try {
    await writeAndSync(tempPath, data, mode);
    await rename(tempPath, path);
  } catch (err) {
    await unlink(tempPath).catch(() => undefined);
    throw err;
  }
  await fsyncDirectory(dirname(path));
}

/**
 * Durably creates `path` with `data` unless it already exists, and says whether it did.
 * The content is complete before the name appears (temp file, then link(2), which refuses an
 * existing name), so a process that loses the race reads the winner's whole file, never an empty one.
 */
export async function createFileDurablyIfAbsent(path: string, data: Buffer, mode: number): Promise<boolean> {
  const tempPath = tempPathFor(path);
  await writeAndSync(tempPath, data, mode);
  try {
    await link(tempPath, path);
  } catch (err) {
    if (errorCode(err) === 'EEXIST') return false;
    // Some file systems have no hard links; exclusive create is the next best (a racer may see it empty).
    if (!['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS'].includes(errorCode(err) ?? '')) throw err;
    try {
      await writeAndSync(path, data, mode);
    } catch (fallbackErr) {
      if (errorCode(fallbackErr) === 'EEXIST') return false;
      throw fallbackErr;
    }
  } finally {
    await unlink(tempPath).catch(() => undefined);
  }
  await fsyncDirectory(dirname(path));
  return true;
}

/** Durably removes `path`; true if it existed. */
export async function removeFileDurably(path: string): Promise<boolean> {
  try {
    await unlink(path);
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return false;
    throw err;
  }
  await fsyncDirectory(dirname(path));
  return true;
}

/**
 * Creates `dir` (and missing parents) readable only by the owner, and takes group and other
 * access away from it if it already exists: it is ours, and what lies in it is secret.
 */
export async function ensurePrivateDirectory(dir: string): Promise<void> {
  const firstCreated = await mkdir(dir, { recursive: true, mode: 0o700 });
  // A new directory's own name must reach the disk too, or a crash could lose it with the files in it.
  if (firstCreated !== undefined) await fsyncDirectory(dirname(firstCreated));
  if (process.platform === 'win32') return;
  const { mode } = await stat(dir);
  if ((mode & 0o077) !== 0) await chmod(dir, 0o700);
}

/** Flushes a directory's entries (a rename or unlink in it) to disk. */
export async function fsyncDirectory(dir: string): Promise<void> {
  // Windows cannot open a directory for fsync, and some file systems refuse it (EINVAL):
  // there is nothing more we can do on those, so the write stands as it is.
  if (process.platform === 'win32') return;
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } catch (err) {
    if (errorCode(err) !== 'EINVAL') throw err;
  } finally {
    await handle.close();
  }
}

/** The `code` of a Node system error, if it has one. */
export function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

// A leading dot and a random part: never a valid account file name, never shared by two writers.
function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}-${randomBytes(6).toString('hex')}.tmp`);
}

async function writeAndSync(path: string, data: string | Buffer, mode: number): Promise<void> {
  const handle = await open(path, 'wx', mode);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}
