/**
 * Child of the spool-index test, run under a low file-descriptor limit (`ulimit -n`): opens the spool as the
 * daemon does (recovery, index rebuild) and as the queue CLI does (disk reads), and prints what each found.
 */
import { Spool } from '../../../src/smtp/spool/spool.js';

const stateDir = process.argv[2]!;
const daemon = await Spool.open(stateDir, { recover: true });
const summary = await daemon.summary(10);
const cli = await Spool.open(stateDir, { create: false });
const [listed, page, cliSummary] = [await cli.list(), await cli.firstPage('queue', 5), await cli.summary(10)];
process.stdout.write(`${JSON.stringify({ counts: summary.counts, waiting: summary.waiting, first: summary.first.map((e) => e.id), cliListed: listed.length, cliPage: page, cliCounts: cliSummary.counts })}\n`);
