/**
 * The on-disk form of one account's token cache: AES-256-GCM, sealed to the account name.
 *
 * ```json
 * {"v":1,"alg":"A256GCM","iv":"<12 bytes b64>","tag":"<16 bytes b64>","data":"<ciphertext b64>"}
 * ```
 * `v` lets a later release change the format and still read this one. The account name is
 * authenticated data, so a file copied or renamed to another account fails to open instead of
 * handing one mailbox's refresh token to another.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { RelayError } from '../../errors.js';

/** The current format version, written by `sealTokenCache`. */
export const TOKEN_FILE_VERSION = 1;
const ALGORITHM = 'A256GCM';
const KEY_BYTES = 32;
// 96-bit IVs are GCM's native size (NIST SP 800-38D); a fresh random one per write keeps
// (key, IV) pairs unique far beyond the number of writes a relay will ever make.
const IV_BYTES = 12;
const TAG_BYTES = 16;

interface TokenFileV1 {
  v: 1;
  alg: typeof ALGORITHM;
  iv: string;
  tag: string;
  data: string;
}

/** Encrypts an account's serialized token cache into the text of its token file. */
export function sealTokenCache(key: Buffer, account: string, serializedCache: string): string {
  assertKeyLength(key);
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(associatedData(account));
  const data = Buffer.concat([cipher.update(serializedCache, 'utf8'), cipher.final()]);
  const file: TokenFileV1 = {
    v: TOKEN_FILE_VERSION,
    alg: ALGORITHM,
    iv: iv.toString('base64'),
    tag: cipher.getAuthTag().toString('base64'),
    data: data.toString('base64'),
  };
  return JSON.stringify(file);
}

/**
 * Decrypts the text of an account's token file.
 * Throws `STORE_DECRYPT_FAILED` for anything that is not a file this key sealed for this account.
 */
export function openTokenCache(key: Buffer, account: string, fileText: string): string {
  assertKeyLength(key);
  const file = parseTokenFile(account, fileText);
  const decipher = createDecipheriv('aes-256-gcm', key, file.iv, { authTagLength: TAG_BYTES });
  decipher.setAAD(associatedData(account));
  decipher.setAuthTag(file.tag);
  try {
    const plain = Buffer.concat([decipher.update(file.data), decipher.final()]);
    return plain.toString('utf8');
  } catch (cause) {
    // GCM does not say which of these it was, and the cause holds no token material.
    throw new RelayError(
      'STORE_DECRYPT_FAILED',
      `account ${account}: authentication failed (wrong key, altered file, or a file of another account)`,
      { cause },
    );
  }
}

function parseTokenFile(account: string, fileText: string): { iv: Buffer; tag: Buffer; data: Buffer } {
  const malformed = (why: string): RelayError =>
    new RelayError('STORE_DECRYPT_FAILED', `account ${account}: not a token-store file (${why})`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(fileText);
  } catch {
    throw malformed('not JSON');
  }
  if (typeof parsed !== 'object' || parsed === null) throw malformed('not a JSON object');
  const record = parsed as Record<string, unknown>;
  if (record.v !== TOKEN_FILE_VERSION) {
    const version = typeof record.v === 'number' ? `version ${record.v}` : 'no version';
    throw malformed(`${version}; this relay reads version ${TOKEN_FILE_VERSION}, a newer relay may have written it`);
  }
  if (record.alg !== ALGORITHM) throw malformed(`algorithm is not ${ALGORITHM}`);
  const iv = strictBase64(record.iv);
  const tag = strictBase64(record.tag);
  const data = strictBase64(record.data);
  if (iv?.length !== IV_BYTES) throw malformed(`iv is not ${IV_BYTES} bytes of base64`);
  if (tag?.length !== TAG_BYTES) throw malformed(`tag is not ${TAG_BYTES} bytes of base64`);
  if (!data) throw malformed('data is not base64');
  return { iv, tag, data };
}

/** Base64 that re-encodes to itself: Buffer.from would quietly skip stray characters. */
function strictBase64(value: unknown): Buffer | undefined {
  if (typeof value !== 'string') return undefined;
  const bytes = Buffer.from(value, 'base64');
  return bytes.toString('base64') === value ? bytes : undefined;
}

// A fixed label in front of the name keeps this AAD from ever matching another use of the same key.
function associatedData(account: string): Buffer {
  return Buffer.from(`xoauth2-relay token-store v${TOKEN_FILE_VERSION}\0${account}`, 'utf8');
}

function assertKeyLength(key: Buffer): void {
  if (key.length !== KEY_BYTES) {
    throw new RelayError('STORE_KEY_INVALID', `the key is ${key.length} bytes, AES-256-GCM needs ${KEY_BYTES}`);
  }
}
