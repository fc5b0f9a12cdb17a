/** SMTP listener hooks (no escaped fault, valid replies, never an open relay, the admitted device after), bounded for `npm test` (see test/fuzz/; `npm run fuzz` runs it long). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { boundedBudget, describeReport, runFuzz } from '../fuzz/fuzz-target.js';
import { smtpListenerTarget } from '../fuzz/targets/smtp-listener.js';

test('fuzz: SMTP listener hooks (no escaped fault, valid replies, never an open relay, the admitted device after)', async () => {
  const report = await runFuzz(smtpListenerTarget, boundedBudget);
  console.log(`# ${describeReport(report)}`);
  assert.equal(report.failed, false, report.report);
});
