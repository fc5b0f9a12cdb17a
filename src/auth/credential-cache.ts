/**
 * Memory of recent successful device logins, so a printer that logs in for every page does not
 * pay a full scrypt (tens of milliseconds and 32 MiB) each time.
 *
 * Only successes are remembered, and only under a keyed hash of (user name, stored hash,
 * password): the cache never holds a password, a wrong password never matches an entry (it
 * always pays the full scrypt), and a changed stored hash misses because it is part of the key.
 * The HMAC key is random per process, so entries mean nothing outside it (not even in a core dump
 * without the key) and cannot be precomputed.
 */
import { createHmac, randomBytes } from 'node:crypto';

/** Options of `createCredentialCache`. */
export interface CredentialCacheOptions {
  /** Most entries kept; the least recently used goes first. Default 1,000. */
  maxEntries?: number;
  /** How long a success counts, from the scrypt check that proved it (hits do not extend it). Default 1 hour. */
  ttlMs?: number;
  /** Clock in milliseconds; tests replace it. Default `Date.now`. */
  now?: () => number;
}

/** Recent successful logins, by keyed hash. */
export interface CredentialCache {
  /** True when exactly this user name, stored hash and password succeeded within the TTL. */
  has(username: string, encodedHash: string, password: string): boolean;
  /** Records a success; call only after a full scrypt check said yes. */
  remember(username: string, encodedHash: string, password: string): void;
  /** Forgets everything (e.g. on configuration reload). */
  clear(): void;
  /** How many entries are held. */
  readonly size: number;
}

/** A bounded, expiring cache of successful logins. */
export function createCredentialCache(opts: CredentialCacheOptions = {}): CredentialCache {
  const maxEntries = opts.maxEntries ?? 1000;
  const ttlMs = opts.ttlMs ?? 60 * 60 * 1000;
  const now = opts.now ?? Date.now;
  const processKey = randomBytes(32);
  // Map keeps insertion order: the first key is the least recently used.
  const expiresAtByKey = new Map<string, number>();

  function has(username: string, encodedHash: string, password: string): boolean {
    const key = credentialKey(processKey, username, encodedHash, password);
    const expiresAt = expiresAtByKey.get(key);
    if (expiresAt === undefined) return false;
    expiresAtByKey.delete(key);
    if (expiresAt <= now()) return false;
    expiresAtByKey.set(key, expiresAt);
    return true;
  }

  function remember(username: string, encodedHash: string, password: string): void {
    const key = credentialKey(processKey, username, encodedHash, password);
    expiresAtByKey.delete(key);
    expiresAtByKey.set(key, now() + ttlMs);
    while (expiresAtByKey.size > maxEntries) {
      const oldest = expiresAtByKey.keys().next().value;
      if (oldest === undefined) break;
      expiresAtByKey.delete(oldest);
    }
  }

  return {
    has,
    remember,
    clear: () => expiresAtByKey.clear(),
    get size() {
      return expiresAtByKey.size;
    },
  };
}

/**
 * HMAC-SHA256 over the three fields, each prefixed with its byte length: unlike a separator,
 * a length cannot be forged by putting the separator inside a field.
 */
function credentialKey(processKey: Buffer, username: string, encodedHash: string, password: string): string {
  const hmac = createHmac('sha256', processKey);
  for (const field of [username, encodedHash, password]) {
    const bytes = Buffer.from(field, 'utf8');
    const length = Buffer.alloc(4);
    length.writeUInt32BE(bytes.length);
    hmac.update(length).update(bytes);
  }
  return hmac.digest('base64');
}
