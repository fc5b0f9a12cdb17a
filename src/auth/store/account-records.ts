/**
 * The shared truth about each account, for every process on one state directory (the daemon, a CLI `login`,
 * `logout` or `status`): the shown token state, a sign-in waiting for a person, the last refresh, and a
 * generation number that a Delete token raises. Together with the token store it is the seam a shared store
 * (several relay instances on one account set) implements later: the same three operations over Redis.
 *
 *   update(account, change) – read-modify-write under the account's lock; `change` sees the current record
 *                             and returns the new one, or null to leave it as it is (a fenced, stale write);
 *   withLock(account, fn)   – the account's lock, also held by the token cache plugin from MSAL's load to its
 *                             save, so a refresh, a sign-in and a logout in different processes never interleave;
 *   watch(onChange)         – another process changed an account.
 *
 * The file implementation keeps one JSON file per account in `stateDir/state/` (written durably) and locks with
 * proper-lockfile (a lock directory with a heartbeat; a lock whose holder died goes stale after 10 s).
 */
import { mkdir, readFile } from 'node:fs/promises';
import { watch } from 'node:fs';
import { join } from 'node:path';
import lockfile from 'proper-lockfile';
import { RelayError } from '../../errors.js';
import type { TokenState } from '../token-state.js';
import { processAlive } from '../token-service-support.js';
import { replaceFileDurably } from './durable-file.js';
import { assertValidAccountName } from './token-store.js';

export interface AccountRecord {
  token: TokenState;
  lastRefresh: string | null;
  /** Raised by every Delete token: a result of an operation that began at an older generation is discarded. */
  generation: number;
  updatedAt: string;
  /** The process (file store: its pid) or instance (Redis) that wrote it last: a waiting sign-in is real only while that writer lives. */
  writer: number | string;
}

/** Sees the current record (under the lock) and returns the next one, or null to leave it unchanged. */
export type RecordChange = (current: AccountRecord | null) => AccountRecord | null | Promise<AccountRecord | null>;

export interface AccountRecords {
  /** This process, as `writer` fields name it. */
  readonly self: number | string;
  /** Whether a writer still lives (a sign-in it polls for is then still real). */
  writerAlive(writer: number | string): Promise<boolean>;
  /**
   * The lease to refresh an account's token: one holder at a time across every process (and instance) on the store,
   * so a cluster makes one token request where each instance would make its own. Resolves the function that gives
   * it back, or null when another holder has it (then wait for its result in the store).
   */
  tryLease(account: string, ms: number): Promise<(() => Promise<void>) | null>;
  read(account: string): Promise<AccountRecord | null>;
  update(account: string, change: RecordChange): Promise<AccountRecord | null>;
  withLock<T>(account: string, fn: () => Promise<T>): Promise<T>;
  watch(onChange: (account: string) => void, onError: (err: Error) => void): Promise<{ close(): void }>;
}

/** A stored record, or null when the text is not one (written by hand, torn). */
export function parseAccountRecord(text: string): AccountRecord | null {
  try {
    const parsed = JSON.parse(text) as Partial<AccountRecord>;
    if (!parsed || typeof parsed !== 'object' || !parsed.token) return null;
    return { token: parsed.token, lastRefresh: parsed.lastRefresh ?? null, generation: Number.isInteger(parsed.generation) ? parsed.generation! : 0, updatedAt: parsed.updatedAt ?? '', writer: parsed.writer ?? 0 };
  } catch {
    return null;
  }
}

/** Where the file records live. */
export function accountStateDir(stateDir: string): string {
  return join(stateDir, 'state');
}

const LOCK_STALE_MS = 10_000;
/** Longer than any critical section (a cache load and save), shorter than a device's patience. */
const LOCK_WAIT_MS = 15_000;

/** Records in `stateDir/state/<account>.json`, locks in `stateDir/locks/`. */
export class FileAccountRecords implements AccountRecords {
  readonly self = process.pid;
  private readonly dir: string;
  private readonly lockDir: string;
  /** In-process queue per account: proper-lockfile refuses a second lock from the same process. */
  private readonly local = new Map<string, Promise<unknown>>();

  constructor(stateDir: string) {
    this.dir = accountStateDir(stateDir);
    this.lockDir = join(stateDir, 'locks');
  }

  private path(account: string): string {
    assertValidAccountName(account);
    return join(this.dir, `${account}.json`);
  }

  async writerAlive(writer: number | string): Promise<boolean> {
    return writer === this.self || processAlive(Number(writer));
  }

  async tryLease(account: string, ms: number): Promise<(() => Promise<void>) | null> {
    assertValidAccountName(account);
    await mkdir(this.lockDir, { recursive: true, mode: 0o700 });
    try {
      const release = await lockfile.lock(join(this.lockDir, `${account}.refresh`), { realpath: false, stale: Math.max(ms, 5_000), update: Math.max(ms, 5_000) / 2, retries: 0, onCompromised: () => undefined });
      return () => release().catch(() => undefined);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ELOCKED') return null;
      throw new RelayError('STORE_LOCK_FAILED', `account ${account}: ${(err as Error).message}`, { cause: err });
    }
  }

  async read(account: string): Promise<AccountRecord | null> {
    let text: string;
    try {
      text = await readFile(this.path(account), 'utf8');
    } catch {
      return null; // missing: the state is then derived from the token store
    }
    return parseAccountRecord(text); // torn by hand: null, derived from the token store, rewritten at the next change
  }

  async update(account: string, change: RecordChange): Promise<AccountRecord | null> {
    return this.withLock(account, async () => {
      const current = await this.read(account);
      const next = await change(current);
      if (!next) return current;
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
      const record: AccountRecord = { ...next, updatedAt: new Date().toISOString(), writer: this.self };
      await replaceFileDurably(this.path(account), JSON.stringify(record, null, 2), 0o600);
      return record;
    });
  }

  withLock<T>(account: string, fn: () => Promise<T>): Promise<T> {
    assertValidAccountName(account);
    const before = this.local.get(account) ?? Promise.resolve();
    const run = before.catch(() => undefined).then(async () => {
      const release = await this.acquireFileLock(account);
      try {
        return await fn();
      } finally {
        await release().catch(() => undefined); // a lock we lost to staleness is released already
      }
    });
    // One entry per configured account, so the map stays as small as the config.
    this.local.set(account, run.catch(() => undefined));
    return run;
  }

  private async acquireFileLock(account: string): Promise<() => Promise<void>> {
    await mkdir(this.lockDir, { recursive: true, mode: 0o700 });
    const target = join(this.lockDir, account);
    const deadline = Date.now() + LOCK_WAIT_MS;
    for (;;) {
      try {
        return await lockfile.lock(target, { realpath: false, stale: LOCK_STALE_MS, update: LOCK_STALE_MS / 2, retries: 0, onCompromised: () => undefined });
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'ELOCKED') throw new RelayError('STORE_LOCK_FAILED', `account ${account}: ${(err as Error).message}`, { cause: err });
        if (Date.now() > deadline) throw new RelayError('STORE_LOCK_FAILED', `account ${account}: another process has held the lock for ${LOCK_WAIT_MS / 1000} s`, { cause: err });
        await new Promise((r) => setTimeout(r, 15 + Math.random() * 35));
      }
    }
  }

  async watch(onChange: (account: string) => void, onError: (err: Error) => void): Promise<{ close(): void }> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const watcher = watch(this.dir, (_event, file) => {
      const name = typeof file === 'string' ? file : null;
      if (name && name.endsWith('.json') && !name.startsWith('.')) onChange(name.slice(0, -'.json'.length));
    });
    // A watcher error (the directory removed, too many watches) must not end the process: the caller logs it,
    // and changes made by other processes are then seen at the next restart.
    watcher.on('error', onError);
    watcher.unref();
    return { close: () => watcher.close() };
  }
}
