/**
 * The durable store between a device's `250` and Exchange's. Every later change is a rename or link plus a
 * directory fsync, in an order `spool-recovery.ts` can always finish or undo, so a `kill -9` or a power cut at
 * any moment loses no acknowledged message.
 *
 * Committing a message (`commit`), and the fsyncs it needs; the device's `250` waits for all of them:
 *   1. the bytes stream into `queue/<id>.eml` (a crash now leaves a message file without an envelope: recovery
 *      removes it; nothing was acknowledged);
 *   2. when the last byte is written, in parallel:
 *      - fdatasync of `queue/<id>.eml`                            fsync 1: the message bytes are on disk
 *      - the envelope written to `tmp/<id>.json`, fdatasync       fsync 2: the envelope bytes are on disk
 *      The envelope's NAME must not be in queue/ before both: a name on disk with bytes that are not would be an
 *      acknowledged-looking message that is empty or cut short. tmp/ is never synced: recovery empties it.
 *   3. rename `tmp/<id>.json` → `queue/<id>.json`: the commit marker (a reader sees it whole or not at all);
 *   4. fsync of `queue/`                                            fsync 3: both names (message and marker) are
 *      on disk. Shared: commits that arrive while an fsync of queue/ runs join the next one (directory-sync.ts),
 *      so k concurrent commits pay one directory fsync between them.
 * So 2 + 1/k fsyncs per message; none can go: without 1 or 2 a power cut can leave a marker over missing bytes,
 * without 3 a power cut can take back a commit the device was told about. (`kill -9` alone never loses page-cache
 * data: the crash tests check the order of names; the fsyncs are what a power cut needs.)
 * A delivered message is removed marker first (then the message file, then a shared fsync of queue/).
 *
 * Several processes may use one spool: the daemon (commits, delivery) and the `queue` CLI (retry, drop).
 * Each envelope write is atomic (temp file + rename), so a reader never sees a torn file; when the daemon and
 * the CLI change the same message at the same moment, the later write wins.
 *
 * The daemon's spool (opened with `recover`) keeps an in-memory index (spool-index.ts) of every envelope, built
 * once at start, so views and rescans never read the whole queue again. Another process's changes reach it
 * through `changed/<id>` markers it leaves behind (see `noteChange`); the index re-reads those ids on its next
 * view, and `get` (which the worker calls before each send) always reads the disk and corrects the index.
 */
import { EventEmitter } from 'node:events';
import { createReadStream } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { ensurePrivateDirectory, replaceFileDurably } from '../../auth/store/durable-file.js';
import { RelayError, type ErrorCode } from '../../errors.js';
import type { DeliveryState, NewEnvelope, SpooledEnvelope } from './envelope.js';
import { DirectorySync, FsyncCounter } from './directory-sync.js';
import { writeMessageFile, writeNewFileSynced } from './message-file.js';
import { isMessageId, newMessageId } from './message-id.js';
import { recoverSpool, type RecoveryReport } from './spool-recovery.js';
import { readSnapshot, removeSnapshot, SNAPSHOT_PAGE, SnapshotSchedule, writeSnapshot } from './spool-snapshot.js';
import { changeMarkerPath, readAllBounded, REBUILD_OPEN_FILES, SpoolIndex, type SpoolSummary } from './spool-index.js';
import { idsWithExtension, linkOrCopy, namesIn, readEnvelopeIfPresent, SpoolLayout, unlinkIfPresent, type SpoolFolder } from './spool-layout.js';

export interface SpoolOptions {
  /**
   * Clean up after a crash (see spool-recovery.ts). Only the daemon, before it accepts mail: another process
   * doing it (the queue CLI) could delete a message in the middle of its commit.
   */
  recover?: boolean;
  /**
   * Create the spool directories (default). The queue CLI passes false: run as root before the daemon ever
   * started, it would otherwise leave root-owned directories the service user cannot write.
   */
  create?: boolean;
  /**
   * Keep the in-memory index (spool-index.ts). Default: with `recover`, i.e. in the daemon, the one process
   * that commits. Other processes read the disk and leave change markers for the daemon's index.
   */
  index?: boolean;
  /** Envelopes read at once when a list or the index reads the disk (the file-descriptor budget). */
  openFiles?: number;
  /** Default byte limit of `commit` (smtp.maxMessageBytes); 35 MB when not given. */
  maxMessageBytes?: number;
  now?: () => number;
  /** For the crash tests: called (and awaited) at each step of a commit, see the header comment. */
  onCommitStep?: (step: CommitStep, id: string) => void | Promise<void>;
}

/** The points of `commit` a crash test stops at, in order. */
export type CommitStep = 'message-written' | 'synced' | 'marker-renamed' | 'directory-synced';

/** Why a message went to dead/: the last reply and the operator's reason, from the error catalogue. */
export interface DeadLetterVerdict {
  code: ErrorCode;
  reason: string;
  reply: string | null;
}

const FILE_MODE = 0o600;

export class Spool extends EventEmitter<{ committed: [SpooledEnvelope] }> {
  /** What recovery removed when the spool was opened with `recover`, else null. */
  readonly recovery: RecoveryReport | null;
  /** fsync(2) calls this spool made (files and directories): the bench prints them per message. */
  readonly fsyncs: FsyncCounter;
  private readonly layout: SpoolLayout;
  private readonly maxMessageBytes: number;
  private readonly now: () => number;
  private readonly openFiles: number;
  private readonly directories: DirectorySync;
  private readonly onCommitStep: SpoolOptions['onCommitStep'];
  /** The daemon's in-memory index, or null in other processes. */
  private readonly index: SpoolIndex | null;
  private markersApplied: Promise<void> = Promise.resolve();
  /** The daemon's summary for `queue list` (spool-snapshot.ts), rewritten after changes; null without index. */
  private readonly snapshot: SnapshotSchedule | null;

  private constructor(layout: SpoolLayout, recovery: RecoveryReport | null, index: SpoolIndex | null, fsyncs: FsyncCounter, opts: SpoolOptions) {
    super();
    this.layout = layout;
    this.recovery = recovery;
    this.index = index;
    this.fsyncs = fsyncs;
    this.directories = new DirectorySync(fsyncs);
    this.maxMessageBytes = opts.maxMessageBytes ?? 35 * 1024 * 1024;
    this.now = opts.now ?? Date.now;
    this.openFiles = opts.openFiles ?? REBUILD_OPEN_FILES;
    this.onCommitStep = opts.onCommitStep;
    this.snapshot = index ? new SnapshotSchedule(() => this.applyChangeMarkers().then(() => writeSnapshot(layout, index, this.now()))) : null;
  }

  /**
   * Opens (creating, mode 0700) `<stateDir>/spool`; with `recover`, first cleans up after a crash, then (the
   * daemon) reads every envelope once into the index.
   */
  static async open(stateDir: string, opts: SpoolOptions = {}): Promise<Spool> {
    const layout = new SpoolLayout(stateDir);
    if (opts.create !== false) {
      try {
        for (const dir of [layout.root, layout.tmp, layout.queue, layout.dead, layout.changed]) await ensurePrivateDirectory(dir);
      } catch (err) {
        throw new RelayError('SPOOL_WRITE_FAILED', `cannot create ${layout.root}`, { cause: err });
      }
    }
    const recovery = opts.recover ? await recoverSpool(layout) : null;
    let index: SpoolIndex | null = null;
    if (opts.index ?? opts.recover === true) {
      // Markers first: the full read below sees every change made before it; later ones leave new markers.
      for (const name of await namesIn(layout.changed)) await unlinkIfPresent(join(layout.changed, name));
      index = await reading(async () => (await SpoolIndex.rebuild(layout, opts.openFiles)).index);
    }
    const spool = new Spool(layout, recovery, index, new FsyncCounter(), opts);
    if (index) await writeSnapshot(layout, index, spool.now()).catch(() => undefined);
    return spool;
  }

  /** The daemon stops: the summary for `queue list` is written a last time, with every change in it. */
  async close(): Promise<void> {
    if (!this.snapshot || !this.index) return;
    await this.snapshot.stop();
    const index = this.index;
    await this.applyChangeMarkers()
      .then(() => writeSnapshot(this.layout, index, this.now()))
      .catch(() => undefined);
  }

  /** The spool directory (`<stateDir>/spool`). */
  get root(): string {
    return this.layout.root;
  }

  /**
   * Streams `message` to disk and commits it with `envelope`; resolves only when both are durable (then, and
   * only then, may the device get `250`; the order and the fsyncs are in the header comment). Never holds the
   * whole message in memory. Over the byte limit it rejects with MESSAGE_TOO_LARGE and leaves no file; disk
   * trouble rejects with SPOOL_WRITE_FAILED. Emits 'committed' so an in-process worker starts at once.
   */
  async commit(envelope: NewEnvelope, message: Readable, limits: { maxBytes?: number } = {}): Promise<{ id: string; size: number }> {
    const nowMs = this.now();
    const id = newMessageId(nowMs);
    const markerTmp = join(this.layout.tmp, `${id}.json`);
    const messagePath = this.layout.messagePath('queue', id);
    const receivedAt = envelope.receivedAt ?? new Date(nowMs).toISOString();
    let committed: SpooledEnvelope | null = null;
    const writeMarker = async (size: number) => {
      await this.onCommitStep?.('message-written', id);
      committed = {
        ...envelope,
        id,
        receivedAt,
        size,
        state: { status: 'queued', attempts: 0, nextAttemptAt: receivedAt, lastReply: null, lastReason: null, lastCode: null, updatedAt: new Date(nowMs).toISOString(), since: receivedAt },
      };
      await writeNewFileSynced(markerTmp, `${JSON.stringify(committed, null, 1)}\n`, this.fsyncs);
    };
    let size: number;
    try {
      size = await writeMessageFile(message, messagePath, limits.maxBytes ?? this.maxMessageBytes, { fsyncs: this.fsyncs, alongsideSync: writeMarker });
    } catch (err) {
      // writeMessageFile removed the message file; its error stays as it is (the source's own, or a RelayError).
      await unlinkIfPresent(markerTmp).catch(() => undefined);
      throw err;
    }
    try {
      await this.onCommitStep?.('synced', id);
      await rename(markerTmp, this.layout.envelopePath('queue', id));
      await this.onCommitStep?.('marker-renamed', id);
      await this.directories.sync(this.layout.queue);
      await this.onCommitStep?.('directory-synced', id);
    } catch (err) {
      // Marker first, as in every removal: without it the message file counts as never committed.
      await unlinkIfPresent(markerTmp).catch(() => undefined);
      await unlinkIfPresent(this.layout.envelopePath('queue', id)).catch(() => undefined);
      await unlinkIfPresent(messagePath).catch(() => undefined);
      throw new RelayError('SPOOL_WRITE_FAILED', `cannot commit message ${id}`, { cause: err });
    }
    this.index?.set('queue', committed!);
    this.snapshot?.changed();
    try {
      this.emit('committed', committed!);
    } catch {
      // A listener's trouble must not turn a durable commit into a failure the device would retry (a duplicate).
    }
    return { id, size };
  }

  /** Queued messages (queued, deferred, held), oldest first. */
  async list(): Promise<SpooledEnvelope[]> {
    if (!this.index) return this.listFolder('queue');
    await this.applyChangeMarkers();
    return this.index.list('queue');
  }

  /** Dead letters, oldest first. */
  async listDead(): Promise<SpooledEnvelope[]> {
    if (!this.index) return this.listFolder('dead');
    await this.applyChangeMarkers();
    return this.index.list('dead');
  }

  /**
   * Counts, oldest age and the first `limit` messages (queue/ then dead/), for the admin page and /metrics.
   * From the index in the daemon: constant time whatever the queue length. Elsewhere it reads every envelope.
   */
  async summary(limit: number): Promise<SpoolSummary> {
    if (this.index) {
      await this.applyChangeMarkers();
      return this.index.summary(limit);
    }
    const index = new SpoolIndex();
    for (const e of await this.listFolder('queue')) index.set('queue', e);
    for (const e of await this.listFolder('dead')) index.set('dead', e);
    return index.summary(limit);
  }

  /**
   * The oldest `limit` messages of a folder and how many it holds: one directory read, then only those
   * envelopes (what `queue list` shows without reading 100,000 files).
   */
  async firstPage(folder: SpoolFolder, limit: number): Promise<{ total: number; envelopes: SpooledEnvelope[]; asOf?: string }> {
    if (this.index) {
      await this.applyChangeMarkers();
      return { total: this.index.size(folder), envelopes: this.index.list(folder, limit) };
    }
    const snapshot = limit <= SNAPSHOT_PAGE ? await readSnapshot(this.layout) : null;
    if (snapshot) return { total: snapshot.folders[folder].total, envelopes: snapshot.folders[folder].first.slice(0, limit), asOf: snapshot.writtenAt };
    return reading(async () => {
      const ids = [...idsWithExtension(await namesIn(this.layout.folder(folder)), '.json')].sort();
      const read = await readAllBounded(ids.slice(0, limit).map((id) => this.layout.envelopePath(folder, id)), this.openFiles);
      return { total: ids.length, envelopes: read.filter((e): e is SpooledEnvelope => !!e) };
    });
  }

  /** A message by id, queued or dead (its `state.status` says which), or null. Always read from disk. */
  async get(id: string): Promise<SpooledEnvelope | null> {
    return (await this.read('queue', id)) ?? (await this.read('dead', id));
  }

  /** The message bytes of a queued message (or a dead one), as a file stream. */
  openMessage(id: string, folder: SpoolFolder = 'queue'): Readable {
    this.assertId(id);
    return createReadStream(this.layout.messagePath(folder, id));
  }

  /** Path of a message file, for senders that open it themselves. */
  messagePath(id: string, folder: SpoolFolder = 'queue'): string {
    this.assertId(id);
    return this.layout.messagePath(folder, id);
  }

  /**
   * Writes a queued message's new delivery state (and, after a partial delivery, the recipients still to do).
   * False when the message is no longer queued (delivered, dropped or buried meanwhile): nothing is written,
   * so a late update never brings back a message an operator dropped.
   */
  async update(id: string, state: DeliveryState, changes: { rcptTo?: string[] } = {}): Promise<boolean> {
    const current = await this.read('queue', id);
    if (!current) return false;
    const next: SpooledEnvelope = { ...current, ...changes, state };
    await writing(`update ${id}`, () => replaceFileDurably(this.layout.envelopePath('queue', id), `${JSON.stringify(next, null, 1)}\n`, FILE_MODE));
    await this.changed('queue', id, next);
    return true;
  }

  /** Removes a delivered message. */
  async remove(id: string): Promise<boolean> {
    return this.removeFrom('queue', id);
  }

  /** Moves a queued message to dead/ with the reply and reason. False when it was not queued. */
  async bury(id: string, verdict: DeadLetterVerdict): Promise<boolean> {
    const current = await this.read('queue', id);
    if (!current) return false;
    await writing(`bury ${id}`, async () => {
      await this.writeDead(current, verdict, id);
      await this.removeFrom('queue', id);
    });
    return true;
  }

  /**
   * Dead-letters some recipients of a queued message that stays queued (a partial delivery): dead/ gets a new
   * entry with only those recipients, sharing the message bytes (hard link). Resolves the new id.
   */
  async buryRecipients(id: string, rcptTo: string[], verdict: DeadLetterVerdict): Promise<string | null> {
    const current = await this.read('queue', id);
    if (!current) return null;
    const copyId = newMessageId(this.now());
    await writing(`dead-letter recipients of ${id}`, () => this.writeDead({ ...current, id: copyId, rcptTo, splitFrom: id }, verdict, id));
    return copyId;
  }

  /**
   * Makes a message due now: a deferred or held one keeps its attempt count; a dead one comes back to the
   * queue with a fresh count and a fresh maxAgeHours period. Resolves what happened, or null for no such id.
   */
  async retry(id: string): Promise<'queued' | 'resurrected' | null> {
    const nowIso = new Date(this.now()).toISOString();
    const queued = await this.read('queue', id);
    if (queued) {
      await this.update(id, { ...queued.state, status: 'queued', nextAttemptAt: nowIso, updatedAt: nowIso });
      return 'queued';
    }
    const dead = await this.read('dead', id);
    if (!dead) return null;
    const state: DeliveryState = { ...dead.state, status: 'queued', attempts: 0, nextAttemptAt: nowIso, updatedAt: nowIso, since: nowIso };
    const back: SpooledEnvelope = { ...dead, state };
    await writing(`retry ${id}`, async () => {
      await linkOrCopy(this.layout.messagePath('dead', id), this.layout.messagePath('queue', id));
      await replaceFileDurably(this.layout.envelopePath('queue', id), `${JSON.stringify(back, null, 1)}\n`, FILE_MODE);
      await this.changed('queue', id, back);
      await this.removeFrom('dead', id);
    });
    return 'resurrected';
  }

  /** Deletes a message, queued or dead, for good. False for no such id. */
  async drop(id: string): Promise<boolean> {
    return (await this.removeFrom('queue', id)) || (await this.removeFrom('dead', id));
  }

  private async writeDead(envelope: SpooledEnvelope, verdict: DeadLetterVerdict, sourceId: string): Promise<void> {
    const nowIso = new Date(this.now()).toISOString();
    const state: DeliveryState = { ...envelope.state, status: 'dead', lastReply: verdict.reply, lastReason: verdict.reason, lastCode: verdict.code, updatedAt: nowIso };
    const dead: SpooledEnvelope = { ...envelope, state };
    await linkOrCopy(this.layout.messagePath('queue', sourceId), this.layout.messagePath('dead', envelope.id));
    // Fsyncs dead/, making the link above durable before the caller removes the queue entry.
    await replaceFileDurably(this.layout.envelopePath('dead', envelope.id), `${JSON.stringify(dead, null, 1)}\n`, FILE_MODE);
    await this.changed('dead', envelope.id, dead);
  }

  /** Envelope first: without it the message counts as never committed, whatever happens next. */
  private async removeFrom(folder: SpoolFolder, id: string): Promise<boolean> {
    if (!isMessageId(id)) return false;
    return writing(`remove ${id}`, async () => {
      const hadEnvelope = await unlinkIfPresent(this.layout.envelopePath(folder, id));
      const hadMessage = await unlinkIfPresent(this.layout.messagePath(folder, id));
      await this.changed(folder, id, null); // gone for every reader now, as on disk; the fsync makes it last
      if (hadEnvelope || hadMessage) await this.directories.sync(this.layout.folder(folder));
      return hadEnvelope;
    });
  }

  /**
   * After this process changed `folder/<id>`: the index takes the new envelope (null: gone). A process without
   * the index leaves a marker in changed/ for the daemon's, and removes the daemon's summary, now older than
   * this change (both best effort: a lost marker only delays what the daemon shows until it reads the message
   * again, before its next send or at its next start).
   */
  private async changed(folder: SpoolFolder, id: string, envelope: SpooledEnvelope | null): Promise<void> {
    if (this.index) {
      if (envelope) this.index.set(folder, envelope);
      else this.index.delete(folder, id);
      this.snapshot?.changed();
      return;
    }
    await writeFile(changeMarkerPath(this.layout, id), '', { mode: FILE_MODE }).catch(() => undefined);
    await removeSnapshot(this.layout);
  }

  /** Re-reads the messages other processes marked as changed (one directory read when there are none). */
  private applyChangeMarkers(): Promise<void> {
    const index = this.index;
    if (!index) return Promise.resolve();
    const run = this.markersApplied.then(() =>
      reading(async () => {
        for (const id of await namesIn(this.layout.changed)) {
          if (!isMessageId(id)) continue;
          await unlinkIfPresent(changeMarkerPath(this.layout, id)); // before reading: a later change leaves a new one
          for (const folder of ['queue', 'dead'] as const) await this.read(folder, id);
        }
      }),
    );
    this.markersApplied = run.catch(() => undefined);
    return run;
  }

  /** The envelope on disk; the index (if any) is corrected to match it. */
  private async read(folder: SpoolFolder, id: string): Promise<SpooledEnvelope | null> {
    if (!isMessageId(id)) return null;
    const found = await reading(() => readEnvelopeIfPresent(this.layout.envelopePath(folder, id)));
    if (this.index && found !== null) {
      const before = this.index.get(folder, id);
      if (found) this.index.set(folder, found);
      else this.index.delete(folder, id);
      if (before?.state.updatedAt !== found?.state.updatedAt) this.snapshot?.changed();
    }
    return found ?? null;
  }

  private async listFolder(folder: SpoolFolder): Promise<SpooledEnvelope[]> {
    return reading(async () => {
      const ids = [...idsWithExtension(await namesIn(this.layout.folder(folder)), '.json')].sort();
      const envelopes = await readAllBounded(ids.map((id) => this.layout.envelopePath(folder, id)), this.openFiles);
      return envelopes.filter((e): e is SpooledEnvelope => !!e);
    });
  }

  private assertId(id: string): void {
    if (!isMessageId(id)) throw new RelayError('INTERNAL', `not a spool message id: ${JSON.stringify(id)}`);
  }
}

/** File-system failures while changing the spool, as the catalogue's SPOOL_WRITE_FAILED. */
async function writing<T>(what: string, change: () => Promise<T>): Promise<T> {
  try {
    return await change();
  } catch (err) {
    throw err instanceof RelayError ? err : new RelayError('SPOOL_WRITE_FAILED', `cannot ${what}`, { cause: err });
  }
}

async function reading<T>(read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (err) {
    throw err instanceof RelayError ? err : new RelayError('SPOOL_READ_FAILED', undefined, { cause: err });
  }
}
