/**
 * Where spool files live, and the small file operations the spool is built from.
 *
 * ```
 * <stateDir>/spool/
 *   tmp/<id>.eml              being received (never acknowledged)
 *   queue/<id>.eml + .json    committed: the .json (envelope + delivery state) is the commit marker
 *   dead/<id>.eml  + .json    dead letters, with the last reply and the reason
 *   changed/<id>              empty: another process (the queue CLI) changed this message; the daemon's index
 *                             re-reads it and removes the marker
 * ```
 * One directory tree on one file system, so moves are rename(2) or link(2), never copies of message bytes.
 */
import { copyFile, link, open, readFile, readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { errorCode } from '../../auth/store/durable-file.js';
import type { SpooledEnvelope } from './envelope.js';
import { isMessageId } from './message-id.js';

/** The two folders that hold committed messages. */
export type SpoolFolder = 'queue' | 'dead';

export class SpoolLayout {
  readonly root: string;
  readonly tmp: string;
  readonly queue: string;
  readonly dead: string;
  readonly changed: string;

  constructor(stateDir: string) {
    this.root = join(stateDir, 'spool');
    this.tmp = join(this.root, 'tmp');
    this.queue = join(this.root, 'queue');
    this.dead = join(this.root, 'dead');
    this.changed = join(this.root, 'changed');
  }

  folder(which: SpoolFolder): string {
    return which === 'queue' ? this.queue : this.dead;
  }

  messagePath(which: SpoolFolder, id: string): string {
    return join(this.folder(which), `${id}.eml`);
  }

  envelopePath(which: SpoolFolder, id: string): string {
    return join(this.folder(which), `${id}.json`);
  }
}

/** File names in `dir`, or none when it does not exist. */
export async function namesIn(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return [];
    throw err;
  }
}

/** Ids that have a file with `extension` in `names` (temp files of replaceFileDurably start with a dot and never match). */
export function idsWithExtension(names: string[], extension: '.eml' | '.json'): Set<string> {
  const ids = new Set<string>();
  for (const name of names) {
    if (!name.endsWith(extension)) continue;
    const id = name.slice(0, -extension.length);
    if (isMessageId(id)) ids.add(id);
  }
  return ids;
}

/** The envelope at `path`, or null when the file is gone (another process removed it) or unreadable as JSON. */
export async function readEnvelope(path: string): Promise<SpooledEnvelope | null> {
  return (await readEnvelopeIfPresent(path)) ?? null;
}

/** The envelope at `path`; undefined when the file is gone, null when it is not a whole envelope. */
export async function readEnvelopeIfPresent(path: string): Promise<SpooledEnvelope | null | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const parsed = JSON.parse(text) as SpooledEnvelope;
    return typeof parsed?.id === 'string' && typeof parsed.state?.status === 'string' ? parsed : null;
  } catch {
    return null;
  }
}

/** Removes a file; a missing file is fine (the point is that it is gone). True if it was there. */
export async function unlinkIfPresent(path: string): Promise<boolean> {
  try {
    await unlink(path);
    return true;
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return false;
    throw err;
  }
}

/**
 * Gives `from`'s content a second name `to` without copying bytes (a hard link; a copy only on file systems
 * without links). A leftover `to` from an interrupted earlier move is replaced. The caller fsyncs the directory.
 */
export async function linkOrCopy(from: string, to: string): Promise<void> {
  await unlinkIfPresent(to);
  try {
    await link(from, to);
  } catch (err) {
    if (!['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EXDEV'].includes(errorCode(err) ?? '')) throw err;
    await copyFile(from, to);
    const handle = await open(to, 'r+');
    try {
      await handle.sync(); // a copy has new data blocks: they must be on disk before the name counts
    } finally {
      await handle.close();
    }
  }
}
