/**
 * Child process of the crash test: commits messages as fast as it can, and moves some to dead/ and back, until
 * it is killed with SIGKILL. After each commit resolves (the moment a device would get `250`) it prints
 * `<id> <sha256>` on standard output, which is synchronous for pipes, so every printed id was acknowledged.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { Spool } from '../../../src/smtp/spool/spool.js';

const stateDir = process.argv[2];
if (!stateDir) throw new Error('usage: commit-until-killed.ts <stateDir>');
const spool = await Spool.open(stateDir);

for (let i = 0; ; i += 1) {
  const size = 1 + Math.floor(Math.random() * 512 * 1024);
  const body = randomBytes(size);
  const chunks = Array.from({ length: Math.ceil(size / 16384) }, (_, k) => body.subarray(k * 16384, (k + 1) * 16384));
  const { id } = await spool.commit({ device: 'crash-test', account: 'scanner', mailFrom: 'a@example.test', rcptTo: ['b@example.test'], remoteAddress: '127.0.0.1', smtpUtf8: false }, Readable.from(chunks));
  process.stdout.write(`${id} ${createHash('sha256').update(body).digest('hex')}\n`);
  if (i % 3 === 1) await spool.bury(id, { code: 'UPSTREAM_REJECTED', reason: 'crash test', reply: '550 test' });
  if (i % 6 === 4) await spool.retry(id);
}
