/**
 * The default token store: one AES-256-GCM encrypted file per account under `stateDir/tokens/`.
 * The files hold refresh tokens (long-lived mailbox access), so they are encrypted at rest, written
 * crash-safely (a torn write would lose the only copy of a rotated refresh token), and only the
 * service user may read them.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RelayError } from '../../errors.js';
import { ensurePrivateDirectory, errorCode, removeFileDurably, replaceFileDurably } from './durable-file.js';
import { LatestWinsQueue } from './latest-wins-queue.js';
import { openTokenCache, sealTokenCache } from './token-file-format.js';
import { assertValidAccountName, type TokenStore } from './token-store.js';

const TOKEN_FILE_MODE = 0o600;

/** Options of `createEncryptedFileStore`. */
export interface EncryptedFileStoreOptions {
  /** The relay's state directory; token files go to its `tokens/` subdirectory. */
  stateDir: string;
  /** 32 bytes, usually from `resolveStoreKey`. */
  key: Buffer;
}

/** The directory that holds the token files of a state directory. */
export function tokenDirectory(stateDir: string): string {
  return join(stateDir, 'tokens');
}

/** The token file of an account (whether or not it exists). Throws `ACCOUNT_NAME_INVALID` for an unusable name. */
export function tokenFilePath(stateDir: string, account: string): string {
  assertValidAccountName(account);
  return join(tokenDirectory(stateDir), `${account}.json.enc`);
}

/**
 * A token store that keeps each account's serialized MSAL cache encrypted in a file.
 * Throws `STORE_KEY_INVALID` if the key is not 32 bytes. Its methods throw `ACCOUNT_NAME_INVALID`,
 * `STORE_READ_FAILED`, `STORE_DECRYPT_FAILED` or `STORE_WRITE_FAILED`; none of their messages
 * contains token material.
 */
export function createEncryptedFileStore(opts: EncryptedFileStoreOptions): TokenStore {
  if (opts.key.length !== 32) {
    throw new RelayError('STORE_KEY_INVALID', `the key is ${opts.key.length} bytes, 32 are needed`);
  }
  // A copy, so a caller that wipes or reuses its buffer cannot change the key under us.
  const key = Buffer.from(opts.key);
  const directory = tokenDirectory(opts.stateDir);
  const writes = new LatestWinsQueue();

  async function load(account: string): Promise<string | null> {
    const path = tokenFilePath(opts.stateDir, account);
    // Read our own writes: a save this process started is finished before we look.
    await writes.settled(account);
    let fileText: string;
    try {
      fileText = await readFile(path, 'utf8');
    } catch (err) {
      if (errorCode(err) === 'ENOENT') return null;
      throw new RelayError('STORE_READ_FAILED', `account ${account}: ${describe(err)}`, { cause: err });
    }
    return openTokenCache(key, account, fileText);
  }

  async function save(account: string, serializedCache: string): Promise<void> {
    const path = tokenFilePath(opts.stateDir, account);
    // Sealed when the write runs, so a save replaced by a newer one costs no encryption.
    return writes.submit(account, async () => {
      try {
        await ensurePrivateDirectory(directory);
        await replaceFileDurably(path, sealTokenCache(key, account, serializedCache), TOKEN_FILE_MODE);
      } catch (err) {
        throw new RelayError('STORE_WRITE_FAILED', `account ${account}: ${describe(err)}`, { cause: err });
      }
    });
  }

  async function remove(account: string): Promise<void> {
    const path = tokenFilePath(opts.stateDir, account);
    return writes.submit(account, async () => {
      try {
        await removeFileDurably(path);
      } catch (err) {
        throw new RelayError('STORE_WRITE_FAILED', `account ${account}: ${describe(err)}`, { cause: err });
      }
    });
  }

  return { load, save, remove };
}

// File-system errors name the path and the reason, never the content: safe to show.
function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
