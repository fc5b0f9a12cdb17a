/**
 * Device passwords, stored as scrypt hashes (RFC 7914) in the configuration:
 *
 *   scrypt$<N>$<r>$<p>$<salt base64>$<hash base64>     e.g. scrypt$32768$8$1$…$…
 *
 * The parameters travel with the hash, so raising the defaults later leaves existing hashes valid.
 */
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { RelayError } from '../errors.js';
import { createCredentialCache, type CredentialCacheOptions } from './credential-cache.js';
import { VerificationGate } from './verification-gate.js';

/** scrypt's cost parameters: N (CPU and memory), r (block size), p (parallelism). */
export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

/** 2^15 × 8 × 128 bytes = 32 MiB and some tens of milliseconds per check: OWASP's scrypt baseline. */
export const DEFAULT_SCRYPT_PARAMS: Readonly<ScryptParams> = Object.freeze({ N: 32768, r: 8, p: 1 });

/** A parsed password hash. */
export interface PasswordHash extends ScryptParams {
  salt: Buffer;
  hash: Buffer;
}

const SALT_BYTES = 16;
const HASH_BYTES = 32;
// Bounds on what a hash may ask for: a typo in the configuration must not make every login
// allocate gigabytes, and parameters below these would make the hash cheap to guess.
const MIN_N = 2 ** 14;
const MAX_N = 2 ** 20;
const MAX_R = 32;
const MAX_P = 16;
const MAX_MEMORY_BYTES = 256 * 1024 * 1024;
const MIN_BYTES = 16;
const MAX_BYTES = 64;
const SHAPE = 'must look like scrypt$32768$8$1$<salt>$<hash>';

/** Hashes a device password for the configuration (what `xoauth2-relay hash-password` prints). */
export async function hashPassword(password: string, params: ScryptParams = DEFAULT_SCRYPT_PARAMS): Promise<string> {
  const problem = paramsProblem(params);
  if (problem) throw new RelayError('PASSWORD_HASH_INVALID', problem);
  const salt = randomBytes(SALT_BYTES);
  const hash = await deriveKey(password, salt, HASH_BYTES, params);
  return ['scrypt', params.N, params.r, params.p, salt.toString('base64'), hash.toString('base64')].join('$');
}

/**
 * True when `password` matches the encoded hash; compares in constant time.
 * Throws `PASSWORD_HASH_INVALID` when `encoded` is malformed (configuration validation should have caught it).
 */
export async function verifyPassword(password: string, encoded: string): Promise<boolean> {
  const parsed = parsePasswordHash(encoded);
  const derived = await deriveKey(password, parsed.salt, parsed.hash.length, parsed);
  return timingSafeEqual(derived, parsed.hash);
}

/**
 * The parts of an encoded hash. Throws `PASSWORD_HASH_INVALID` whose detail says what is wrong
 * (the same text as `passwordHashProblem`).
 */
export function parsePasswordHash(encoded: string): PasswordHash {
  const result = parse(encoded);
  if (typeof result === 'string') throw new RelayError('PASSWORD_HASH_INVALID', result);
  return result;
}

/**
 * What is wrong with an encoded hash, phrased to follow the field name
 * ("devices[0].passwordHash must look like …"), or undefined when it is usable.
 * The text never repeats the salt or the hash.
 */
export function passwordHashProblem(encoded: string): string | undefined {
  const result = parse(encoded);
  return typeof result === 'string' ? result : undefined;
}

/**
 * A well-formed hash with these parameters that no password matches (its "hash" is random bytes): an unknown
 * user name is checked against it, so it costs exactly what a wrong password for a known one costs.
 */
export function decoyPasswordHash(params: ScryptParams = DEFAULT_SCRYPT_PARAMS): string {
  return ['scrypt', params.N, params.r, params.p, randomBytes(SALT_BYTES).toString('base64'), randomBytes(HASH_BYTES).toString('base64')].join('$');
}

/** Checks device logins; see `createPasswordVerifier`. */
export interface PasswordVerifier {
  /**
   * True when `password` is right for `username` whose configured hash is `encoded`.
   * Pass `encoded` undefined for an unknown user name: it is refused after the same scrypt
   * work as a wrong password (a decoy hash), so timing does not tell which user names exist.
   * Throws RelayError AUTH_BUSY when the gate's queue is full.
   */
  verify(username: string, password: string, encoded: string | undefined): Promise<boolean>;
}

export interface PasswordVerifierOptions extends CredentialCacheOptions {
  /** Bounds concurrent scrypt checks (a cache hit passes without one); default a gate of its own. */
  gate?: VerificationGate;
}

/**
 * A verifier that remembers recent successes (see `credential-cache.ts`): the same printer with the
 * same password skips scrypt for an hour, while a wrong password always costs the full scrypt.
 * Identical checks that overlap (a printer opening three connections at once) share one scrypt.
 * Every scrypt goes through the gate.
 */
export function createPasswordVerifier(opts: PasswordVerifierOptions = {}): PasswordVerifier {
  const successes = createCredentialCache(opts);
  const gate = opts.gate ?? new VerificationGate();
  const decoy = decoyPasswordHash();
  // Keyed by the same fields as the cache; holds only checks still running.
  const inFlight = new Map<string, Promise<boolean>>();

  async function verify(username: string, password: string, given: string | undefined): Promise<boolean> {
    const encoded = given ?? decoy;
    if (successes.has(username, encoded, password)) return true;
    const flightKey = JSON.stringify([username, encoded, password]);
    const running = inFlight.get(flightKey);
    if (running) return running;
    const check = gate.run(() => verifyPassword(password, encoded)).then((ok) => {
      if (ok) successes.remember(username, encoded, password);
      return ok;
    });
    inFlight.set(flightKey, check);
    try {
      return await check;
    } finally {
      inFlight.delete(flightKey);
    }
  }

  return { verify };
}

function parse(encoded: string): PasswordHash | string {
  const fields = encoded.trim().split('$');
  if (fields.length !== 6) return `${SHAPE} (6 fields separated by $, found ${fields.length})`;
  const [algorithm, nText, rText, pText, saltText, hashText] = fields as [string, string, string, string, string, string];
  if (algorithm !== 'scrypt') return `${SHAPE}: it must start with scrypt$ (no other algorithm is supported)`;
  const [N, r, p] = [nText, rText, pText].map(wholeNumber) as [number, number, number];
  if (Number.isNaN(N) || Number.isNaN(r) || Number.isNaN(p)) return `${SHAPE}: N, r and p must be whole numbers`;
  const problem = paramsProblem({ N, r, p });
  if (problem) return problem;
  const salt = strictBase64(saltText);
  if (!salt || salt.length < MIN_BYTES || salt.length > MAX_BYTES) {
    return `${SHAPE}: the salt must be base64 of ${MIN_BYTES} to ${MAX_BYTES} bytes`;
  }
  const hash = strictBase64(hashText);
  if (!hash || hash.length < MIN_BYTES || hash.length > MAX_BYTES) {
    return `${SHAPE}: the hash must be base64 of ${MIN_BYTES} to ${MAX_BYTES} bytes`;
  }
  return { N, r, p, salt, hash };
}

function paramsProblem({ N, r, p }: ScryptParams): string | undefined {
  if (!Number.isInteger(N) || N < MIN_N || N > MAX_N || (N & (N - 1)) !== 0) {
    return `has N=${N}: N must be a power of two from ${MIN_N} to ${MAX_N}`;
  }
  if (!Number.isInteger(r) || r < 1 || r > MAX_R) return `has r=${r}: r must be from 1 to ${MAX_R}`;
  if (!Number.isInteger(p) || p < 1 || p > MAX_P) return `has p=${p}: p must be from 1 to ${MAX_P}`;
  if (memoryFor({ N, r, p }) > MAX_MEMORY_BYTES) {
    return `has N=${N}, r=${r}: that needs ${Math.round(memoryFor({ N, r, p }) / 2 ** 20)} MiB per login, at most ${MAX_MEMORY_BYTES / 2 ** 20} MiB is allowed`;
  }
  return undefined;
}

function wholeNumber(text: string): number {
  return /^[1-9][0-9]{0,9}$/.test(text) ? Number(text) : Number.NaN;
}

/** Standard base64, padding optional; undefined for anything Buffer.from would have to guess at. */
function strictBase64(text: string): Buffer | undefined {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text)) return undefined;
  const bytes = Buffer.from(text, 'base64');
  return bytes.toString('base64').replace(/=+$/, '') === text.replace(/=+$/, '') ? bytes : undefined;
}

// scrypt needs about 128·N·r bytes for V plus 128·r·p for B; Node's default limit (32 MiB) is
// exactly the default V and so too small: allow twice the need.
function memoryFor({ N, r, p }: ScryptParams): number {
  return 128 * N * r + 128 * r * p;
}

function deriveKey(password: string, salt: Buffer, length: number, params: ScryptParams): Promise<Buffer> {
  const options: ScryptOptions = { N: params.N, r: params.r, p: params.p, maxmem: 2 * memoryFor(params) };
  return new Promise((resolve, reject) => {
    scrypt(Buffer.from(password, 'utf8'), salt, length, options, (err, key) => (err ? reject(err) : resolve(key)));
  });
}
