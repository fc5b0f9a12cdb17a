/**
 * The process-wide fault policy in a child process of its own (the test runner has its own handlers): after start-up a
 * rejection nobody handled and an exception nobody caught are logged with UNHANDLED_FAULT, counted in /metrics, and
 * the process keeps running; during start-up such a fault ends it with exit 70.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const faults = fileURLToPath(new URL('../src/faults.ts', import.meta.url));
const log = fileURLToPath(new URL('../src/log.ts', import.meta.url));
const metrics = fileURLToPath(new URL('../src/admin/metrics.ts', import.meta.url));

function runChild(script: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += String(d)));
    child.stderr.on('data', (d) => (out += String(d)));
    child.on('exit', (code) => resolve({ code, out }));
  });
}

test('after start-up: an unhandled rejection and an uncaught exception are logged, counted, and the process serves on', async () => {
  const { code, out } = await runChild(`
    import { installFaultPolicy } from ${JSON.stringify(faults)};
    import { createLogger } from ${JSON.stringify(log)};
    import { RelayMetrics } from ${JSON.stringify(metrics)};
    const policy = installFaultPolicy(createLogger({ level: 'info' }), (c) => process.exit(c));
    policy.serving();
    const m = new RelayMetrics({ processMetrics: false });
    Promise.reject(new Error('a bug in some callback'));
    setTimeout(() => { throw new Error('a throw in a timer'); }, 10);
    setTimeout(async () => {
      const text = await m.registry.metrics();
      console.log('METRIC ' + /xoauth2_relay_internal_faults_total (\\d+)/.exec(text)?.[1]);
      console.log('STILL SERVING');
      process.exit(0);
    }, 200);
  `);
  assert.equal(code, 0, out);
  assert.match(out, /"code":"UNHANDLED_FAULT"[^\n]*"origin":"unhandledRejection"|"origin":"unhandledRejection"[^\n]*"code":"UNHANDLED_FAULT"/);
  assert.match(out, /"origin":"uncaughtException"/);
  assert.match(out, /METRIC 2/);
  assert.match(out, /STILL SERVING/);
});

test('during start-up a fault ends the process with exit 70 and a fatal line', async () => {
  const { code, out } = await runChild(`
    import { installFaultPolicy } from ${JSON.stringify(faults)};
    import { createLogger } from ${JSON.stringify(log)};
    installFaultPolicy(createLogger({ level: 'info' }), (c) => process.exit(c));
    Promise.reject(new Error('broken before serving'));
    setTimeout(() => console.log('SHOULD NOT PRINT'), 500);
  `);
  assert.equal(code, 70, out);
  assert.match(out, /"level":"fatal"|"level":60/);
  assert.doesNotMatch(out, /SHOULD NOT PRINT/);
});
