/**
 * `npm run bench`: every benchmark, one after another, each in its own process (so one's memory and open sockets
 * do not colour the next's figures), each printing its figures next to a baseline measured in the same run.
 *
 *   spool.ts      SMTP acceptance: sessions/s at 1 and 32 clients, 250 p50/p99, fsyncs per message, 25 MB MB/s,
 *                 spool views and acceptance at 100,000 queued
 *   delivery.ts   delivery drain rate with connection reuse, against nodemailer's pool straight to the upstream
 *   sessions.ts   IMAP/POP3 login p50, 25 MB FETCH/RETR MB/s, idle sessions held at 1,000/5,000/10,000 with RSS each
 *   smtp-relay.ts end to end: device → relay → delivery → mailbox, latency and memory
 *
 *   npm run bench                      (all)
 *   npm run bench -- spool delivery    (some)
 * The figures are only comparable within one run on a quiet machine: nothing else should be using the CPU.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ALL = ['spool', 'delivery', 'sessions', 'smtp-relay'];
const chosen = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const names = chosen.length > 0 ? chosen : ALL;
const dir = fileURLToPath(new URL('.', import.meta.url));
let failed = 0;
for (const name of names) {
  const file = `${dir}${name}.ts`;
  if (!existsSync(file)) {
    process.stderr.write(`bench: no benchmark named ${name} (have: ${ALL.join(', ')})\n`);
    failed++;
    continue;
  }
  process.stdout.write(`\n=== bench/${name}.ts ${'='.repeat(Math.max(0, 90 - name.length))}\n`);
  const started = Date.now();
  const run = spawnSync(process.execPath, ['--import', 'tsx', file], { stdio: 'inherit' });
  process.stdout.write(`=== ${name}: ${run.status === 0 ? 'done' : `FAILED (exit ${run.status ?? run.signal})`} in ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
  if (run.status !== 0) failed++;
}
process.exitCode = failed > 0 ? 1 : 0;
