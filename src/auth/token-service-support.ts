/** Small pure helpers of the token service, kept apart so its file reads as the policy it is. */
import { RelayError, isRelayError } from '../errors.js';

/** A failure to open the account's token file (another key, another owner), as opposed to the identity platform. */
export function isStoreFailure(err: unknown): err is RelayError {
  return isRelayError(err, 'STORE_DECRYPT_FAILED') || isRelayError(err, 'STORE_READ_FAILED');
}

/** The reason an account shows when its token file cannot be opened: the cause and the fix. */
export function describeStoreFailure(err: RelayError): string {
  const cause = err.code === 'STORE_DECRYPT_FAILED' ? 'sealed with another key, or altered' : `not readable by this user${/EACCES|EPERM/.test(err.message) ? ' (permission denied)' : ''}`;
  return `token store cannot be read: ${cause}. Give the service the key that wrote it, or chown/chmod 600 the file for the service user, or Delete token and sign in again`;
}

/** Resolves or rejects like `work`, but rejects with `onTimeout()` after `ms` (the work goes on). */
export function withDeadline<T>(work: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
    timer.unref();
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}

/** True when a process with this id exists (signal 0 probes without sending anything). */
export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
