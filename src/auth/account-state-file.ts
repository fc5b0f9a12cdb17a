/**
 * The shown state of each account's token (not the token: that lives only in the encrypted store), in
 * `stateDir/state/<account>.json`. It is how a `login` run in one process, the daemon, and `status` in
 * another agree on what to show: *invalid* with its reason survives a restart, a sign-in finished by the
 * CLI reaches the running daemon.
 */
import { readFile, mkdir } from 'node:fs/promises';
import { watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { replaceFileDurably } from './store/durable-file.js';
import type { TokenState } from './token-state.js';

export interface PersistedAccountState {
  token: TokenState;
  lastRefresh: string | null;
  updatedAt: string;
  /** Which process wrote it last, so a process can ignore its own writes when watching. */
  writer: number;
}

export function accountStateDir(stateDir: string): string {
  return join(stateDir, 'state');
}

export class AccountStateFile {
  private readonly dir: string;

  constructor(stateDir: string) {
    this.dir = accountStateDir(stateDir);
  }

  private path(account: string): string {
    return join(this.dir, `${account}.json`);
  }

  async read(account: string): Promise<PersistedAccountState | null> {
    try {
      const parsed = JSON.parse(await readFile(this.path(account), 'utf8')) as PersistedAccountState;
      return parsed && typeof parsed === 'object' && parsed.token ? parsed : null;
    } catch {
      return null; // missing or torn by hand: the state is then derived from the token store
    }
  }

  async write(account: string, token: TokenState, lastRefresh: string | null): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const record: PersistedAccountState = { token, lastRefresh, updatedAt: new Date().toISOString(), writer: process.pid };
    await replaceFileDurably(this.path(account), JSON.stringify(record, null, 2), 0o600);
  }

  /** Calls back with the account name whenever another process changes a state file. */
  async watch(onChange: (account: string) => void): Promise<FSWatcher> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const watcher = watch(this.dir, (_event, file) => {
      const name = typeof file === 'string' ? file : null;
      if (name && name.endsWith('.json') && !name.startsWith('.')) onChange(name.slice(0, -'.json'.length));
    });
    watcher.unref();
    return watcher;
  }
}
