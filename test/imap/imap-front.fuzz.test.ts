/** The IMAP pre-auth front's properties under generated input, bounded for `npm test` (see test/fuzz/). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { boundedBudget, describeReport, runFuzz } from '../fuzz/fuzz-target.js';
import { imapFrontTarget } from '../fuzz/targets/imap-front.js';

test('fuzz: IMAP front (no escaped fault, valid replies, bounded output, nothing upstream before login, a real login after)', async () => {
  const report = await runFuzz(imapFrontTarget, boundedBudget);
  console.log(`# ${describeReport(report)}`);
  assert.equal(report.failed, false, report.report);
});
