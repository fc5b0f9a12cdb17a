/** `xoauth2-relay check-config`: every problem in the config at once, each with key, value and fix. */
import { checkConfigFile, configPath } from '../config/load.js';
import { deprecationNotes } from '../config/deprecations.js';
import { formatProblem } from '../config/problems.js';
import { exitCodes } from './exit-codes.js';
import type { GlobalOptions } from './context.js';

export function checkConfigCommand(opts: GlobalOptions): number {
  const path = configPath(opts.config);
  const result = checkConfigFile(path);
  if (!result.ok) {
    const count = result.problems.length;
    process.stderr.write(`${path}: ${count} problem${count === 1 ? '' : 's'}\n`);
    for (const p of result.problems) process.stderr.write(`  ${formatProblem(p).replaceAll('\n', '\n  ')}\n`);
    return exitCodes.config;
  }
  const c = result.loaded.config;
  const listeners = (['smtp', 'imap', 'pop3'] as const)
    .flatMap((p) => c[p].listen.map((l) => `${p} ${l.host}:${l.port} (${l.tls})`))
    .join(', ');
  process.stdout.write(
    `${path}: OK\n  accounts: ${Object.entries(c.accounts).map(([n, a]) => `${n} (${a.mailbox}, ${a.flow})`).join(', ')}\n` +
      `  devices: ${c.devices.length}\n  listeners: ${listeners || 'none'}\n  admin: ${c.admin.listen}\n  state: ${c.stateDir}\n`,
  );
  for (const note of deprecationNotes(c)) process.stdout.write(`  deprecated: ${note}\n`);
  return exitCodes.ok;
}
