/**
 * `spool/summary.json`: the daemon's index, summed up for other processes. `queue list` is another process
 * than the daemon and has no index; reading the queue directory alone costs about 150 ms at 100,000 messages
 * (200,000 names), so the daemon writes what `queue list` shows by default (counts and the oldest
 * `SNAPSHOT_PAGE` of each folder) into this file: at start, then at most once a second after a change.
 *
 * It is a view, not a record: written without fsync, atomically (temp file + rename), never read by the
 * daemon. It can be up to a second behind the daemon's own changes (a commit, a delivery); a process that
 * changes the spool itself (the queue CLI) removes it, so it never shows the CLI a state older than its own
 * last change; the daemon writes it again once it has read that change (its next view or rescan).
 */
import { readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { MessageStatus, SpooledEnvelope } from './envelope.js';
import type { SpoolFolder, SpoolLayout } from './spool-layout.js';
import type { SpoolIndex } from './spool-index.js';

/** Messages of each folder the snapshot holds (`queue list`'s default page). */
export const SNAPSHOT_PAGE = 100;
const VERSION = 1;

export interface SpoolSnapshot {
  version: number;
  writtenAt: string;
  counts: Record<MessageStatus, number>;
  folders: Record<SpoolFolder, { total: number; first: SpooledEnvelope[] }>;
}

function snapshotPath(layout: SpoolLayout): string {
  return join(layout.root, 'summary.json');
}

export async function writeSnapshot(layout: SpoolLayout, index: SpoolIndex, nowMs: number): Promise<void> {
  const folders = {} as SpoolSnapshot['folders'];
  for (const folder of ['queue', 'dead'] as const) {
    const all = index.list(folder, SNAPSHOT_PAGE);
    folders[folder] = { total: index.size(folder), first: all };
  }
  const snapshot: SpoolSnapshot = { version: VERSION, writtenAt: new Date(nowMs).toISOString(), counts: index.summary(0).counts, folders };
  const temp = `${snapshotPath(layout)}.${process.pid}.tmp`;
  await writeFile(temp, JSON.stringify(snapshot), { mode: 0o600 });
  await rename(temp, snapshotPath(layout));
}

/** The snapshot, or null when there is none (or it is not one this version wrote). */
export async function readSnapshot(layout: SpoolLayout): Promise<SpoolSnapshot | null> {
  try {
    const parsed = JSON.parse(await readFile(snapshotPath(layout), 'utf8')) as SpoolSnapshot;
    return parsed?.version === VERSION && parsed.folders?.queue && parsed.folders.dead ? parsed : null;
  } catch {
    return null;
  }
}

/** Removes the snapshot (best effort: a process that changed the spool must not be shown the old one). */
export async function removeSnapshot(layout: SpoolLayout): Promise<void> {
  await unlink(snapshotPath(layout)).catch(() => undefined);
}

/** Writes the snapshot at most once per `delayMs` after a change; failures are ignored (it is only a view). */
export class SnapshotSchedule {
  private timer: NodeJS.Timeout | null = null;
  /** The write under way, if any: stop() waits for it, so nothing lands in the spool after the daemon stopped. */
  private writing: Promise<void> | null = null;

  constructor(
    private readonly write: () => Promise<void>,
    private readonly delayMs = 1000,
  ) {}

  changed(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      const writing: Promise<void> = this.write()
        .catch(() => undefined)
        .then(() => {
          if (this.writing === writing) this.writing = null;
        });
      this.writing = writing;
    }, this.delayMs);
    this.timer.unref();
  }

  /** No further write; resolves once the one under way (if any) is done. */
  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.writing;
  }
}
