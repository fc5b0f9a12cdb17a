/**
 * The durable store between a device's `250` and Exchange's. A message is committed (bytes, then envelope,
 * each fsynced and renamed into place, then the directory fsynced) before `commit` resolves, so a `kill -9` at
 * any moment loses no acknowledged message. Every later change is a rename or link plus a directory fsync, in
 * an order `spool-recovery.ts` can always finish or undo.
 *
 * Several processes may use one spool: the daemon (commits, delivery) and the `queue` CLI (retry, drop).
 * Each envelope write is atomic (temp file + rename), so a reader never sees a torn file; when the daemon and
 * the CLI change the same message at the same moment, the later write wins.
 */
import { EventEmitter } from 'node:events';
import { createReadStream } from 'node:fs';
import { rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { ensurePrivateDirectory, fsyncDirectory, replaceFileDurably } from '../../auth/store/durable-file.js';
import { RelayError, type ErrorCode } from '../../errors.js';
import type { DeliveryState, NewEnvelope, SpooledEnvelope } from './envelope.js';
import { writeMessageFile } from './message-file.js';
import { isMessageId, newMessageId } from './message-id.js';
import { recoverSpool, type RecoveryReport } from './spool-recovery.js';
import { idsWithExtension, linkOrCopy, namesIn, readEnvelope, SpoolLayout, unlinkIfPresent, type SpoolFolder } from './spool-layout.js';

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
  /** Default byte limit of `commit` (smtp.maxMessageBytes); 35 MB when not given. */
  maxMessageBytes?: number;
  now?: () => number;
}

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
  private readonly layout: SpoolLayout;
  private readonly maxMessageBytes: number;
  private readonly now: () => number;

  private constructor(layout: SpoolLayout, recovery: RecoveryReport | null, opts: SpoolOptions) {
    super();
    this.layout = layout;
    this.recovery = recovery;
    this.maxMessageBytes = opts.maxMessageBytes ?? 35 * 1024 * 1024;
    this.now = opts.now ?? Date.now;
  }

  /** Opens (creating, mode 0700) `<stateDir>/spool`; with `recover`, first cleans up after a crash. */
  static async open(stateDir: string, opts: SpoolOptions = {}): Promise<Spool> {
    const layout = new SpoolLayout(stateDir);
    if (opts.create !== false) {
      try {
        for (const dir of [layout.root, layout.tmp, layout.queue, layout.dead]) await ensurePrivateDirectory(dir);
      } catch (err) {
        throw new RelayError('SPOOL_WRITE_FAILED', `cannot create ${layout.root}`, { cause: err });
      }
    }
    const recovery = opts.recover ? await recoverSpool(layout) : null;
    return new Spool(layout, recovery, opts);
  }

  /** The spool directory (`<stateDir>/spool`). */
  get root(): string {
    return this.layout.root;
  }

  /**
   * Streams `message` to disk and commits it with `envelope`; resolves only when both are durable (then, and
   * only then, may the device get `250`). Never holds the whole message in memory. Over the byte limit it
   * rejects with MESSAGE_TOO_LARGE and leaves no file; disk trouble rejects with SPOOL_WRITE_FAILED.
   * Emits 'committed' so an in-process worker starts at once.
   */
  async commit(envelope: NewEnvelope, message: Readable, limits: { maxBytes?: number } = {}): Promise<{ id: string; size: number }> {
    const nowMs = this.now();
    const id = newMessageId(nowMs);
    const tmpPath = join(this.layout.tmp, `${id}.eml`);
    const messagePath = this.layout.messagePath('queue', id);
    const size = await writeMessageFile(message, tmpPath, limits.maxBytes ?? this.maxMessageBytes);
    const receivedAt = envelope.receivedAt ?? new Date(nowMs).toISOString();
    const committed: SpooledEnvelope = {
      ...envelope,
      id,
      receivedAt,
      size,
      state: { status: 'queued', attempts: 0, nextAttemptAt: receivedAt, lastReply: null, lastReason: null, lastCode: null, updatedAt: new Date(nowMs).toISOString(), since: receivedAt },
    };
    try {
      await rename(tmpPath, messagePath);
      // Also fsyncs queue/, which makes the message rename above durable with it.
      await replaceFileDurably(this.layout.envelopePath('queue', id), `${JSON.stringify(committed, null, 1)}\n`, FILE_MODE);
    } catch (err) {
      await unlinkIfPresent(tmpPath).catch(() => undefined);
      await unlinkIfPresent(messagePath).catch(() => undefined);
      throw new RelayError('SPOOL_WRITE_FAILED', `cannot commit message ${id}`, { cause: err });
    }
    try {
      this.emit('committed', committed);
    } catch {
      // A listener's trouble must not turn a durable commit into a failure the device would retry (a duplicate).
    }
    return { id, size };
  }

  /** Queued messages (queued, deferred, held), oldest first. */
  list(): Promise<SpooledEnvelope[]> {
    return this.listFolder('queue');
  }

  /** Dead letters, oldest first. */
  listDead(): Promise<SpooledEnvelope[]> {
    return this.listFolder('dead');
  }

  /** A message by id, queued or dead (its `state.status` says which), or null. */
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
    await writing(`retry ${id}`, async () => {
      await linkOrCopy(this.layout.messagePath('dead', id), this.layout.messagePath('queue', id));
      await replaceFileDurably(this.layout.envelopePath('queue', id), `${JSON.stringify({ ...dead, state }, null, 1)}\n`, FILE_MODE);
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
    await linkOrCopy(this.layout.messagePath('queue', sourceId), this.layout.messagePath('dead', envelope.id));
    // Fsyncs dead/, making the link above durable before the caller removes the queue entry.
    await replaceFileDurably(this.layout.envelopePath('dead', envelope.id), `${JSON.stringify({ ...envelope, state }, null, 1)}\n`, FILE_MODE);
  }

  /** Envelope first: without it the message counts as never committed, whatever happens next. */
  private async removeFrom(folder: SpoolFolder, id: string): Promise<boolean> {
    if (!isMessageId(id)) return false;
    return writing(`remove ${id}`, async () => {
      const hadEnvelope = await unlinkIfPresent(this.layout.envelopePath(folder, id));
      const hadMessage = await unlinkIfPresent(this.layout.messagePath(folder, id));
      if (hadEnvelope || hadMessage) await fsyncDirectory(this.layout.folder(folder));
      return hadEnvelope;
    });
  }

  private async read(folder: SpoolFolder, id: string): Promise<SpooledEnvelope | null> {
    if (!isMessageId(id)) return null;
    return reading(() => readEnvelope(this.layout.envelopePath(folder, id)));
  }

  private async listFolder(folder: SpoolFolder): Promise<SpooledEnvelope[]> {
    return reading(async () => {
      const ids = [...idsWithExtension(await namesIn(this.layout.folder(folder)), '.json')].sort();
      const envelopes = await Promise.all(ids.map((id) => readEnvelope(this.layout.envelopePath(folder, id))));
      return envelopes.filter((e): e is SpooledEnvelope => e !== null);
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
