/** SASL PLAIN, LOGIN and XOAUTH2 codecs (no throw, round trips, their own rules hold), bounded for `npm test` (see test/fuzz/; `npm run fuzz` runs it long). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { boundedBudget, describeReport, runFuzz } from '../fuzz/fuzz-target.js';
import { saslCodecsTarget } from '../fuzz/targets/sasl-codecs.js';

test('fuzz: SASL PLAIN, LOGIN and XOAUTH2 codecs (no throw, round trips, their own rules hold)', async () => {
  const report = await runFuzz(saslCodecsTarget, boundedBudget);
  console.log(`# ${describeReport(report)}`);
  assert.equal(report.failed, false, report.report);
});
