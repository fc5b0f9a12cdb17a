/** SMTP header editor (output as the contract says whatever the cuts, body untouched, bounded header), bounded for `npm test` (see test/fuzz/; `npm run fuzz` runs it long). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { boundedBudget, describeReport, runFuzz } from '../fuzz/fuzz-target.js';
import { headerEditorTarget } from '../fuzz/targets/header-editor.js';

test('fuzz: SMTP header editor (output as the contract says whatever the cuts, body untouched, bounded header)', async () => {
  const report = await runFuzz(headerEditorTarget, boundedBudget);
  console.log(`# ${describeReport(report)}`);
  assert.equal(report.failed, false, report.report);
});
