/**
 * `npm run fuzz`: every fuzz target for FUZZ_SECONDS each (default 60), one after another, printing inputs per
 * second and totals, and for a failure its seed, path and counterexample. Replay one failure with
 * `FUZZ_TARGET=<name> FUZZ_SEED=<seed> FUZZ_PATH=<path> npm run fuzz`. Exits 1 when any property failed.
 */
import { describeReport, runFuzz, type FuzzReport, type FuzzTarget } from './fuzz-target.js';
import { adminRoutingTarget } from './targets/admin-routing.js';
import { configLoaderTarget } from './targets/config-loader.js';
import { headerEditorTarget } from './targets/header-editor.js';
import { imapFrontTarget } from './targets/imap-front.js';
import { lineReaderTarget } from './targets/line-reader.js';
import { pop3FrontTarget } from './targets/pop3-front.js';
import { saslCodecsTarget } from './targets/sasl-codecs.js';
import { smtpListenerTarget } from './targets/smtp-listener.js';

const targets: Array<FuzzTarget<never>> = [
  imapFrontTarget, pop3FrontTarget, smtpListenerTarget, headerEditorTarget, saslCodecsTarget, lineReaderTarget, configLoaderTarget, adminRoutingTarget,
] as Array<FuzzTarget<never>>;

const seconds = Number(process.env.FUZZ_SECONDS ?? 60);
const only = process.env.FUZZ_TARGET;
const seed = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);
const chosen = targets.filter((t) => !only || t.name === only);
if (chosen.length === 0) {
  console.error(`no fuzz target ${only}; targets: ${targets.map((t) => t.name).join(', ')}`);
  process.exit(64);
}

const reports: FuzzReport[] = [];
for (const target of chosen) {
  const report = await runFuzz(target, { timeLimitMs: seconds * 1000, maxRuns: Number.MAX_SAFE_INTEGER, ...(seed !== undefined ? { seed } : {}), ...(process.env.FUZZ_PATH ? { path: process.env.FUZZ_PATH } : {}) });
  reports.push(report);
  console.log(describeReport(report));
  if (report.failed) console.log(`  replay: FUZZ_TARGET=${report.name} FUZZ_SEED=${report.seed} npm run fuzz\n${report.report.replace(/^/gm, '  ')}`);
}
const total = reports.reduce((n, r) => n + r.inputs, 0);
const failed = reports.filter((r) => r.failed);
console.log(`total: ${total} inputs in ${reports.reduce((n, r) => n + r.seconds, 0).toFixed(0)} s over ${reports.length} targets; ${failed.length === 0 ? 'no failure' : `FAILED: ${failed.map((r) => `${r.name} (seed ${r.seed})`).join(', ')}`}`);
process.exit(failed.length === 0 ? 0 : 1);
