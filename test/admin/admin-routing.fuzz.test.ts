/** admin HTTP routing (no 500, no state change without a session, the page and the login after), bounded for `npm test` (see test/fuzz/; `npm run fuzz` runs it long). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { boundedBudget, describeReport, runFuzz } from '../fuzz/fuzz-target.js';
import { request } from 'node:http';
import { adminRoutingTarget } from '../fuzz/targets/admin-routing.js';
import { startAdminWorld } from './support/admin-world.js';

test('fuzz: admin HTTP routing (no 500, no state change without a session, the page and the login after)', async () => {
  const report = await runFuzz(adminRoutingTarget, boundedBudget);
  console.log(`# ${describeReport(report)}`);
  assert.equal(report.failed, false, report.report);
});

test('found by the fuzz: a request for // or /\\ gets 400, not a dropped connection and an internal error', async () => {
  const world = await startAdminWorld({ mailboxUp: false });
  try {
    for (const path of ['//', '/\\', '//%00']) {
      const status = await new Promise<number>((resolve, reject) => {
        request({ host: '127.0.0.1', port: world.admin.port, path }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        }).on('error', reject).end();
      });
      assert.equal(status, 400, path);
    }
  } finally {
    await world.close();
  }
});
