/**
 * The storage under the token service: one serialized MSAL token cache per account.
 * The token service's MSAL cache plugin calls `load` before and `save` after every token operation,
 * so a rotated refresh token is on disk before anyone uses it.
 */
import { RelayError } from '../../errors.js';

/** Where the token service keeps each account's serialized MSAL cache. */
export interface TokenStore {
  /** The serialized MSAL cache of an account, or null if none. */
  load(account: string): Promise<string | null>;
  /**
   * Durably replace it (atomic: temp file + fsync + rename + fsync dir).
   * Concurrent saves for one account are serialized, last call wins: when a save resolves,
   * the store holds its value or that of a later call.
   */
  save(account: string, serializedCache: string): Promise<void>;
  /** Delete it (logout). Idempotent. */
  remove(account: string): Promise<void>;
}

// The name becomes a file name, so it must not be able to climb out of the tokens directory
// ("..", "/"), hide (leading "."), or collide with our temp files; 64 characters keep paths short.
const ACCOUNT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** True when `account` can name a token file. */
export function isValidAccountName(account: string): boolean {
  return ACCOUNT_NAME.test(account);
}

/** Throws `ACCOUNT_NAME_INVALID` unless `account` can name a token file. */
export function assertValidAccountName(account: string): void {
  if (!isValidAccountName(account)) {
    // The name is configuration, not a secret, but it may be hostile: show it JSON-quoted and cut short.
    throw new RelayError('ACCOUNT_NAME_INVALID', `got ${JSON.stringify(account.slice(0, 80))}`);
  }
}
