/**
 * Puts the spool back in order after a crash (`kill -9`, power cut), before the daemon accepts mail.
 *
 * Every spool operation is ordered so that an interruption leaves only states this file resolves:
 * - `tmp/*`: the envelope of a commit not yet renamed into queue/ (see spool.ts); its device never got
 *   `250` → removed.
 * - `<id>.eml` without `<id>.json`: a message still being received or synced (written straight into queue/,
 *   the marker not yet renamed in), or a remove/drop/move interrupted after the marker went → removed; never
 *   acknowledged or already done.
 * - `<id>.json` without `<id>.eml`: a drop interrupted, or a marker rename that reached the disk before the
 *   message file's name in a power cut during an unacknowledged commit → removed.
 * - `.<name>.tmp` files from `replaceFileDurably` → removed.
 * - the same id complete in both queue/ and dead/ (a bury or a retry from dead/ interrupted before it removed
 *   the source) → the copy with the newer `state.updatedAt` is the move's target and stays.
 *
 * Only the daemon, the one writer of tmp/ and of new commits, may run this, and only before it accepts mail:
 * run by the queue CLI while the daemon receives, it would delete messages in the middle of their commit.
 */
import { join } from 'node:path';
import { fsyncDirectory } from '../../auth/store/durable-file.js';
import { idsWithExtension, namesIn, readEnvelope, unlinkIfPresent, type SpoolFolder, type SpoolLayout } from './spool-layout.js';

/** What recovery removed; the daemon logs it at start. */
export interface RecoveryReport {
  /** Partial messages in tmp/ (never acknowledged). */
  tmpRemoved: number;
  /** Message files without an envelope, and envelopes without a message file. */
  orphansRemoved: number;
  /** Messages found in both queue/ and dead/ whose older copy was removed. */
  duplicatesResolved: number;
}

export async function recoverSpool(layout: SpoolLayout): Promise<RecoveryReport> {
  const report: RecoveryReport = { tmpRemoved: 0, orphansRemoved: 0, duplicatesResolved: 0 };
  for (const name of await namesIn(layout.tmp)) {
    if (await unlinkIfPresent(join(layout.tmp, name))) report.tmpRemoved += 1;
  }
  for (const folder of ['queue', 'dead'] as const) report.orphansRemoved += await removeOrphans(layout, folder);
  report.duplicatesResolved = await resolveDuplicates(layout);
  if (report.tmpRemoved + report.orphansRemoved + report.duplicatesResolved > 0) {
    await Promise.all([layout.tmp, layout.queue, layout.dead].map((dir) => fsyncDirectory(dir)));
  }
  return report;
}

async function removeOrphans(layout: SpoolLayout, folder: SpoolFolder): Promise<number> {
  const dir = layout.folder(folder);
  const names = await namesIn(dir);
  const messages = idsWithExtension(names, '.eml');
  const envelopes = idsWithExtension(names, '.json');
  let removed = 0;
  for (const name of names) {
    if (name.startsWith('.') && name.endsWith('.tmp') && (await unlinkIfPresent(join(dir, name)))) removed += 1;
  }
  for (const id of messages) {
    if (!envelopes.has(id) && (await unlinkIfPresent(layout.messagePath(folder, id)))) removed += 1;
  }
  for (const id of envelopes) {
    if (!messages.has(id) && (await unlinkIfPresent(layout.envelopePath(folder, id)))) removed += 1;
  }
  return removed;
}

async function resolveDuplicates(layout: SpoolLayout): Promise<number> {
  const queued = idsWithExtension(await namesIn(layout.queue), '.json');
  const dead = idsWithExtension(await namesIn(layout.dead), '.json');
  let resolved = 0;
  for (const id of queued) {
    if (!dead.has(id)) continue;
    const [inQueue, inDead] = await Promise.all([readEnvelope(layout.envelopePath('queue', id)), readEnvelope(layout.envelopePath('dead', id))]);
    const queueIsNewer = (inQueue?.state.updatedAt ?? '') > (inDead?.state.updatedAt ?? '');
    const loser: SpoolFolder = queueIsNewer ? 'dead' : 'queue';
    await unlinkIfPresent(layout.envelopePath(loser, id));
    await unlinkIfPresent(layout.messagePath(loser, id));
    resolved += 1;
  }
  return resolved;
}
