/** POP3 front (no escaped fault, valid replies, bounded output, nothing upstream before login, a real login after), bounded for `npm test` (see test/fuzz/; `npm run fuzz` runs it long). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { boundedBudget, describeReport, runFuzz } from '../fuzz/fuzz-target.js';
import { pop3FrontTarget } from '../fuzz/targets/pop3-front.js';

test('fuzz: POP3 front (no escaped fault, valid replies, bounded output, nothing upstream before login, a real login after)', async () => {
  const report = await runFuzz(pop3FrontTarget, boundedBudget);
  console.log(`# ${describeReport(report)}`);
  assert.equal(report.failed, false, report.report);
});
