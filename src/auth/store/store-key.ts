/**
 * Where the token-store key comes from. In order, the first that is present wins:
 *  1. the environment variable XOAUTH2_RELAY_KEY (containers, secret managers);
 *  2. the systemd credential `xoauth2-relay-key` (LoadCredential=/SetCredentialEncrypted=), which
 *     keeps the key out of the environment and, encrypted, off the disk in clear;
 *  3. `stateDir/token-store.key`, created with 32 random bytes on first run.
 * A source that is present but wrong is an error, never a reason to fall through to the next:
 * falling through would quietly encrypt with another key and make the stored tokens unreadable.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { RelayError } from '../../errors.js';
import { createFileDurablyIfAbsent, errorCode } from './durable-file.js';

/** The environment variable that may hold the key. */
export const STORE_KEY_ENV = 'XOAUTH2_RELAY_KEY';
/** The name of the systemd credential that may hold the key (in `$CREDENTIALS_DIRECTORY`). */
export const STORE_KEY_CREDENTIAL = 'xoauth2-relay-key';
/** The key file's name in the state directory. */
export const STORE_KEY_FILE = 'token-store.key';

const KEY_BYTES = 32;
const KEY_FORMS = '64 hex digits or base64 of 32 bytes (create one with `openssl rand -hex 32`)';

/** Where a key came from. */
export type StoreKeySource = 'env' | 'systemd-credential' | 'key-file';

/** A resolved key and where it came from. */
export interface ResolvedStoreKey {
  key: Buffer;
  source: StoreKeySource;
  /** The variable name or file path, for the log line that says which key is in use. */
  location: string;
  /** True when this call created the key file: the operator should back it up with the state. */
  created: boolean;
}

/** Options of `resolveStoreKey`. */
export interface ResolveStoreKeyOptions {
  stateDir: string;
  /** Defaults to `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Create `stateDir/token-store.key` when no key is found. Defaults to true. */
  createIfMissing?: boolean;
}

/**
 * Finds the token-store key (see the module comment for the order).
 * Throws `STORE_KEY_INVALID`, `STORE_KEY_INSECURE`, `STORE_KEY_UNREADABLE`, `STORE_KEY_MISSING`
 * or `STORE_WRITE_FAILED`; no message ever contains key material.
 */
export async function resolveStoreKey(opts: ResolveStoreKeyOptions): Promise<ResolvedStoreKey> {
  const env = opts.env ?? process.env;

  const fromEnv = env[STORE_KEY_ENV];
  // Set but empty counts as set: a compose file's `${KEY}` with KEY unset must not fall through to a new key file.
  if (fromEnv !== undefined) {
    const key = parseStoreKeyText(fromEnv);
    if (!key) throw new RelayError('STORE_KEY_INVALID', `${STORE_KEY_ENV} must be ${KEY_FORMS}`);
    return { key, source: 'env', location: STORE_KEY_ENV, created: false };
  }

  const credentialsDirectory = env.CREDENTIALS_DIRECTORY;
  if (credentialsDirectory) {
    const path = join(credentialsDirectory, STORE_KEY_CREDENTIAL);
    // systemd owns the credential's permissions, so they are not ours to judge.
    const key = await readKeyFile(path, { checkPermissions: false });
    if (key) return { key, source: 'systemd-credential', location: path, created: false };
  }

  const path = join(opts.stateDir, STORE_KEY_FILE);
  const existing = await readKeyFile(path, { checkPermissions: true });
  if (existing) return { key: existing, source: 'key-file', location: path, created: false };
  if (opts.createIfMissing === false) {
    throw new RelayError('STORE_KEY_MISSING', `none in ${STORE_KEY_ENV}, the systemd credential or ${path}`);
  }
  // Tokens already stored were sealed with some other key (the service's credential, an env variable): a new key
  // file would make them unreadable, e.g. when `xoauth2-relay status` runs in a shell without the credential.
  const sealed = (await readdir(join(opts.stateDir, 'tokens')).catch(() => [] as string[])).filter((f) => f.endsWith('.json.enc'));
  if (sealed.length > 0) {
    throw new RelayError('STORE_KEY_MISSING', `${sealed.length} token file(s) in ${join(opts.stateDir, 'tokens')} were sealed with a key this process does not have: set ${STORE_KEY_ENV} or run with the service's credential (see docs/running.md)`);
  }
  return createKeyFile(opts.stateDir, path);
}

/**
 * The key in a text form: 64 hex digits, or base64 (standard or URL-safe, padding optional)
 * of exactly 32 bytes; surrounding white space (a trailing newline) is ignored. Undefined otherwise.
 */
export function parseStoreKeyText(text: string): Buffer | undefined {
  const trimmed = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(trimmed)) return Buffer.from(trimmed, 'hex');
  if (!/^[A-Za-z0-9+/]{43}=?$/.test(trimmed) && !/^[A-Za-z0-9_-]{43}=?$/.test(trimmed)) return undefined;
  const key = Buffer.from(trimmed, 'base64');
  // 43 characters carry 258 bits; the 2 spare bits must be zero or the text is not a key's encoding.
  const canonical = key.toString('base64').replace(/=+$/, '');
  const given = trimmed.replace(/=$/, '').replace(/-/g, '+').replace(/_/g, '/');
  return key.length === KEY_BYTES && canonical === given ? key : undefined;
}

/** A key file's key (raw 32 bytes or a text form), or undefined if the file does not exist. */
async function readKeyFile(path: string, { checkPermissions }: { checkPermissions: boolean }): Promise<Buffer | undefined> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return undefined;
    throw new RelayError('STORE_KEY_UNREADABLE', describe(err), { cause: err });
  }
  try {
    // fstat of the open file, not stat of the name: the file we check is the file we read.
    const stats = await handle.stat();
    if (!stats.isFile()) throw new RelayError('STORE_KEY_INVALID', `${path} is not a regular file`);
    if (checkPermissions && process.platform !== 'win32' && (stats.mode & 0o077) !== 0) {
      const mode = (stats.mode & 0o777).toString(8).padStart(3, '0');
      throw new RelayError('STORE_KEY_INSECURE', `${path} has mode ${mode}: run \`chmod 600 ${path}\``);
    }
    // Anything much longer than a text form is not a key; do not read an arbitrary file into memory.
    if (stats.size > 1024) throw new RelayError('STORE_KEY_INVALID', `${path} must hold 32 raw bytes or ${KEY_FORMS}`);
    const content = await handle.readFile();
    // 32 bytes can only be the raw form: every text form is at least 43 characters.
    const key = content.length === KEY_BYTES ? Buffer.from(content) : parseStoreKeyText(content.toString('latin1'));
    content.fill(0);
    if (!key) throw new RelayError('STORE_KEY_INVALID', `${path} must hold 32 raw bytes or ${KEY_FORMS}`);
    return key;
  } catch (err) {
    if (err instanceof RelayError) throw err;
    throw new RelayError('STORE_KEY_UNREADABLE', describe(err), { cause: err });
  } finally {
    await handle.close();
  }
}

async function createKeyFile(stateDir: string, path: string): Promise<ResolvedStoreKey> {
  const key = randomBytes(KEY_BYTES);
  let created: boolean;
  try {
    // Only a missing state directory is created private; an existing one is the operator's to set up.
    await mkdir(stateDir, { recursive: true, mode: 0o700 });
    created = await createFileDurablyIfAbsent(path, key, 0o600);
  } catch (err) {
    throw new RelayError('STORE_WRITE_FAILED', `cannot create the key file: ${describe(err)}`, { cause: err });
  }
  if (created) return { key, source: 'key-file', location: path, created: true };
  // Another process created it between our look and our write: use theirs, or the two would disagree.
  const theirs = await readKeyFile(path, { checkPermissions: true });
  if (!theirs) throw new RelayError('STORE_KEY_UNREADABLE', `${path} vanished while it was being created`);
  return { key: theirs, source: 'key-file', location: path, created: false };
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
