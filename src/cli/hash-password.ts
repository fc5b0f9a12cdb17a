/**
 * `xoauth2-relay hash-password`: reads a password (hidden when typed at a terminal, or one line from a pipe)
 * and prints its scrypt hash for `devices[].passwordHash` or `admin.passwordHash`. The password is never an
 * argument: arguments end up in shell history and `ps`.
 */
import { createInterface } from 'node:readline';
import { hashPassword } from '../auth/password-hash.js';
import { exitCodes } from './exit-codes.js';

async function readHidden(prompt: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  const output = rl as unknown as { _writeToOutput: (s: string) => void };
  process.stderr.write(prompt);
  output._writeToOutput = () => undefined; // hide what is typed
  const answer = await new Promise<string>((resolve) => rl.question('', resolve));
  rl.close();
  process.stderr.write('\n');
  return answer;
}

async function readLine(): Promise<string> {
  const rl = createInterface({ input: process.stdin, terminal: false });
  for await (const line of rl) {
    rl.close();
    return line;
  }
  return '';
}

export async function hashPasswordCommand(): Promise<number> {
  let password: string;
  if (process.stdin.isTTY) {
    password = await readHidden('Password: ');
    const again = await readHidden('Again: ');
    if (again !== password) {
      process.stderr.write('xoauth2-relay: the two passwords differ, nothing printed\n');
      return exitCodes.failed;
    }
  } else {
    password = await readLine();
  }
  if (password.length === 0) {
    process.stderr.write('xoauth2-relay: empty password refused\n');
    return exitCodes.failed;
  }
  process.stdout.write(`${await hashPassword(password)}\n`);
  return exitCodes.ok;
}
