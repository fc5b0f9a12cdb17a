/** config loader (never throws, a config or located problems, secrets never shown), bounded for `npm test` (see test/fuzz/; `npm run fuzz` runs it long). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { boundedBudget, describeReport, runFuzz } from '../fuzz/fuzz-target.js';
import { configLoaderTarget } from '../fuzz/targets/config-loader.js';
import { checkConfigText } from '../../src/config/load.js';

test('fuzz: config loader (never throws, a config or located problems, secrets never shown)', async () => {
  const report = await runFuzz(configLoaderTarget, boundedBudget);
  console.log(`# ${describeReport(report)}`);
  assert.equal(report.failed, false, report.report);
});

test('found by the fuzz: an alias without its anchor, or one expanded past the limit, is a located problem, not a crash', () => {
  const laughs = ['a: &a [x, x, x, x, x, x, x, x, x, x]', ...Array.from({ length: 6 }, (_, i) => `${'bcdefg'[i]}: &${'bcdefg'[i]} [${Array(10).fill(`*${'abcdef'[i]}`).join(', ')}]`)].join('\n');
  for (const text of ['*!', 'accounts: *nothing', laughs]) {
    const result = checkConfigText(text, '/etc/xoauth2-relay/config.yaml', {});
    assert.equal(result.ok, false);
    if (!result.ok) assert.match(result.problems[0]!.path, /^\(syntax\)/, JSON.stringify(result.problems));
  }
});
