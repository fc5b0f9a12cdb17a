/**
 * The daemon's in-memory view of its spool: every envelope by id, ids kept sorted (oldest first, ids sort by
 * arrival), and counts per status kept as changes happen. The admin page, /metrics and the delivery worker's
 * rescans read it instead of the disk, so they cost the same at 10 or 100,000 queued messages: counts and the
 * oldest age are O(1), the first page O(page), a change O(log n) plus a memmove of the id array.
 *
 * Built from disk once, at start (after recovery): one readdir per folder and every envelope read with a
 * bounded number of files open at a time (a `Promise.all` over 4,000 envelopes hits EMFILE at 1,024 files).
 */
import { join } from 'node:path';
import type { MessageStatus, SpooledEnvelope } from './envelope.js';
import { idsWithExtension, namesIn, readEnvelopeIfPresent, type SpoolFolder, type SpoolLayout } from './spool-layout.js';

/** Envelopes read at once while rebuilding (well under any file-descriptor limit). */
export const REBUILD_OPEN_FILES = 32;

/** What the admin page, /metrics and `queue list` show. */
export interface SpoolSummary {
  /** Messages per status (queue/ holds queued, deferred and held; dead/ the dead letters). */
  counts: Record<MessageStatus, number>;
  /** Messages in queue/. */
  waiting: number;
  /** receivedAt of the oldest message in queue/, or null when it is empty. */
  oldestReceivedAt: string | null;
  /** The first `limit` messages: queue/ oldest first, then dead/ oldest first. */
  first: SpooledEnvelope[];
  /** Messages in queue/ and dead/ together. */
  total: number;
}

/** Ids in ascending order with binary-search insert and remove. */
class SortedIds {
  readonly ids: string[] = [];

  private position(id: string): number {
    let lo = 0;
    let hi = this.ids.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.ids[mid]! < id) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  add(id: string): void {
    const last = this.ids[this.ids.length - 1];
    if (last === undefined || last < id) return void this.ids.push(id); // the usual case: a new commit
    const at = this.position(id);
    if (this.ids[at] !== id) this.ids.splice(at, 0, id);
  }

  remove(id: string): void {
    const at = this.position(id);
    if (this.ids[at] === id) this.ids.splice(at, 1);
  }
}

class FolderIndex {
  readonly byId = new Map<string, SpooledEnvelope>();
  readonly order = new SortedIds();
}

export class SpoolIndex {
  private readonly folders: Record<SpoolFolder, FolderIndex> = { queue: new FolderIndex(), dead: new FolderIndex() };
  private readonly counts: Record<MessageStatus, number> = { queued: 0, deferred: 0, held: 0, dead: 0 };

  get(folder: SpoolFolder, id: string): SpooledEnvelope | null {
    return this.folders[folder].byId.get(id) ?? null;
  }

  /** Records `envelope` as the current content of `folder`/`<id>.json`. */
  set(folder: SpoolFolder, envelope: SpooledEnvelope): void {
    const f = this.folders[folder];
    const before = f.byId.get(envelope.id);
    if (before) this.counts[statusIn(folder, before)] -= 1;
    else f.order.add(envelope.id);
    f.byId.set(envelope.id, envelope);
    this.counts[statusIn(folder, envelope)] += 1;
  }

  delete(folder: SpoolFolder, id: string): void {
    const f = this.folders[folder];
    const before = f.byId.get(id);
    if (!before) return;
    this.counts[statusIn(folder, before)] -= 1;
    f.byId.delete(id);
    f.order.remove(id);
  }

  /** The envelopes of `folder`, oldest first, all or the first `limit` (all is O(n): for the worker's rescan). */
  list(folder: SpoolFolder, limit = Infinity): SpooledEnvelope[] {
    const f = this.folders[folder];
    const ids = Number.isFinite(limit) ? f.order.ids.slice(0, limit) : f.order.ids;
    return ids.map((id) => f.byId.get(id)!);
  }

  size(folder: SpoolFolder): number {
    return this.folders[folder].byId.size;
  }

  summary(limit: number): SpoolSummary {
    const { queue, dead } = this.folders;
    const first: SpooledEnvelope[] = [];
    for (const f of [queue, dead]) {
      for (let i = 0; i < f.order.ids.length && first.length < limit; i += 1) first.push(f.byId.get(f.order.ids[i]!)!);
    }
    const oldestId = queue.order.ids[0];
    return {
      counts: { ...this.counts },
      waiting: queue.byId.size,
      oldestReceivedAt: oldestId === undefined ? null : queue.byId.get(oldestId)!.receivedAt,
      first,
      total: queue.byId.size + dead.byId.size,
    };
  }

  /**
   * Reads both folders into a new index. Envelopes that do not parse (hand-edited, disk trouble: a commit
   * never leaves one, its marker is whole before it has its name) are left out, as `list` skips them, and
   * returned apart.
   */
  static async rebuild(layout: SpoolLayout, openFiles = REBUILD_OPEN_FILES): Promise<{ index: SpoolIndex; unreadable: Array<{ folder: SpoolFolder; id: string }> }> {
    const index = new SpoolIndex();
    const unreadable: Array<{ folder: SpoolFolder; id: string }> = [];
    for (const folder of ['queue', 'dead'] as const) {
      const ids = [...idsWithExtension(await namesIn(layout.folder(folder)), '.json')].sort();
      const envelopes = await readAllBounded(ids.map((id) => layout.envelopePath(folder, id)), openFiles);
      ids.forEach((id, i) => {
        const envelope = envelopes[i];
        if (envelope === undefined) return; // removed meanwhile
        if (envelope === null || envelope.id !== id) unreadable.push({ folder, id });
        else index.set(folder, envelope);
      });
    }
    return { index, unreadable };
  }
}

/** Reads envelopes with at most `openFiles` reads in flight; undefined: the file is gone, null: it does not parse. */
export async function readAllBounded(paths: string[], openFiles: number): Promise<Array<SpooledEnvelope | null | undefined>> {
  const out = new Array<SpooledEnvelope | null | undefined>(paths.length);
  let next = 0;
  const reader = async () => {
    while (next < paths.length) {
      const i = next++;
      out[i] = await readEnvelopeIfPresent(paths[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(openFiles, paths.length) }, reader));
  return out;
}

function statusIn(folder: SpoolFolder, envelope: SpooledEnvelope): MessageStatus {
  return folder === 'dead' ? 'dead' : envelope.state.status;
}

/** Path of the change marker another process leaves for the daemon's index (see Spool.noteChange). */
export function changeMarkerPath(layout: SpoolLayout, id: string): string {
  return join(layout.changed, id);
}
