/**
 * `xoauth2-relay hash-password`: reads a password (hidden when typed at a terminal, or one line from a pipe)
 * and prints its scrypt hash for `devices[].passwordHash` or `admin.passwordHash`. The password is never an
 * argument: arguments end up in shell history and `ps`.
 */
import { createInterface } from 'node:readline';
import { hashPassword } from '../auth/password-hash.js';
import { exitCodes } from './exit-codes.js';
import { readHiddenLine } from './hidden-input.js';

/**
 * Shorter passwords fall to a guess at the login back-off's pace; devices that cannot store 8 characters are
 * rare, and can be admitted by address instead.
 */
export const MIN_PASSWORD_LENGTH = 8;

async function readLine(): Promise<string> {
  const rl = createInterface({ input: process.stdin, terminal: false });
  for await (const line of rl) {
    rl.close();
    return line;
  }
  return '';
}

/** The refusal for a password that is too short, or null when it is long enough. */
export function passwordProblem(password: string): string | null {
  const length = [...password].length;
  if (length === 0) return 'empty password refused, nothing printed';
  if (length < MIN_PASSWORD_LENGTH) return `the password has ${length} character${length === 1 ? '' : 's'}, at least ${MIN_PASSWORD_LENGTH} are needed: nothing printed`;
  return null;
}

export async function hashPasswordCommand(): Promise<number> {
  let password: string;
  if (process.stdin.isTTY) {
    const first = await readHiddenLine('Password: ');
    if (first === null) return exitCodes.failed;
    const early = passwordProblem(first);
    if (early) {
      // Said before "Again:", so nobody types a short password twice to be told so.
      process.stderr.write(`xoauth2-relay: ${early}\n`);
      return exitCodes.failed;
    }
    const again = await readHiddenLine('Again: ');
    if (again === null) return exitCodes.failed;
    if (again !== first) {
      process.stderr.write('xoauth2-relay: the two passwords differ, nothing printed\n');
      return exitCodes.failed;
    }
    password = first;
  } else {
    password = await readLine();
  }
  const problem = passwordProblem(password);
  if (problem) {
    process.stderr.write(`xoauth2-relay: ${problem}\n`);
    return exitCodes.failed;
  }
  process.stdout.write(`${await hashPassword(password)}\n`);
  return exitCodes.ok;
}
