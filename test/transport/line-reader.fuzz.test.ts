/** line reader (exact lines whatever the cuts, overlong lines refused, bounded buffer), bounded for `npm test` (see test/fuzz/; `npm run fuzz` runs it long). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { boundedBudget, describeReport, runFuzz } from '../fuzz/fuzz-target.js';
import { lineReaderTarget } from '../fuzz/targets/line-reader.js';

test('fuzz: line reader (exact lines whatever the cuts, overlong lines refused, bounded buffer)', async () => {
  const report = await runFuzz(lineReaderTarget, boundedBudget);
  console.log(`# ${describeReport(report)}`);
  assert.equal(report.failed, false, report.report);
});
