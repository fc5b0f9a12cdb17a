/**
 * Child process of the commit crash-point test: commits one message fully (prints `acked <id> <sha256>`: the
 * device would have its 250), then starts a second commit and kills itself with SIGKILL at `step`, after
 * printing `crashing <id> <sha256>`. Standard output to a pipe is synchronous, so both lines arrive.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { Spool, type CommitStep } from '../../../src/smtp/spool/spool.js';

const [stateDir, step] = process.argv.slice(2) as [string, CommitStep];
const envelope = { device: 'crash-test', account: 'scanner', mailFrom: 'a@example.test', rcptTo: ['b@example.test'], remoteAddress: '127.0.0.1', smtpUtf8: false };
const body = (size: number) => randomBytes(size);
const chunks = (bytes: Buffer) => Array.from({ length: Math.ceil(bytes.length / 16384) }, (_, k) => bytes.subarray(k * 16384, (k + 1) * 16384));
const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

let crashing: Buffer | null = null;
const spool = await Spool.open(stateDir, {
  onCommitStep: (at, id) => {
    if (crashing && at === step) {
      process.stdout.write(`crashing ${id} ${sha(crashing)}\n`);
      process.kill(process.pid, 'SIGKILL');
    }
  },
});
const first = body(70_000);
const { id } = await spool.commit(envelope, Readable.from(chunks(first)));
process.stdout.write(`acked ${id} ${sha(first)}\n`);
crashing = body(200_000);
await spool.commit(envelope, Readable.from(chunks(crashing)));
process.stdout.write('not killed\n');
