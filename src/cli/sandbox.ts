/**
 * `xoauth2-relay sandbox`: runs the identity platform simulator on this host and writes a config that points
 * at it, so `login`, `status` and `logout` can be tried with no Microsoft tenant. Runs until Ctrl-C.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { resolve, join } from 'node:path';
import { startIdentitySimulator } from '../sandbox/identity/simulator.js';
import { SANDBOX_MAILBOX, sandboxConfigYaml } from '../sandbox/sandbox-config.js';
import { exitCodes } from './exit-codes.js';
import { cliCommand } from './invocation.js';

export async function sandboxCommand(opts: { port: string; stateDir: string }): Promise<number> {
  const port = Number(opts.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write(`xoauth2-relay: --port ${JSON.stringify(opts.port)} is not a TCP port (0-65535)\n`);
    return exitCodes.usage;
  }
  const dir = resolve(opts.stateDir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const sim = await startIdentitySimulator({ host: '127.0.0.1', port, expectedMailbox: SANDBOX_MAILBOX });
  const caFile = join(dir, 'sandbox-ca.pem');
  await writeFile(caFile, sim.caCertPem, { mode: 0o644 });
  const configFile = join(dir, 'config.yaml');
  await writeFile(configFile, sandboxConfigYaml({ stateDir: join(dir, 'state'), authorityHost: sim.url, extraCaFile: caFile }), { mode: 0o600 });

  const cli = cliCommand();
  process.stdout.write(
    [
      `Sandbox identity platform running at ${sim.url} (its CA: ${caFile})`,
      `Config that uses it: ${configFile}`,
      '',
      'In another terminal:',
      `  export XOAUTH2_RELAY_CONFIG=${configFile}`,
      `  ${cli} login scanner      # shows a code and a link`,
      `  # approve it at ${sim.verificationUri} (the mailbox is filled in)`,
      `  ${cli} status             # scanner ... acquired`,
      `  ${cli} logout scanner     # back to not-acquired`,
      '',
      'Press Ctrl-C to stop.',
      '',
    ].join('\n'),
  );
  await new Promise<void>((done) => {
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
  });
  await sim.close();
  return exitCodes.ok;
}
