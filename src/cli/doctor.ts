/**
 * `xoauth2-relay doctor [account]`: for each account, in order, what works against the real tenant and what to
 * fix (src/checks/doctor/). Exit 0 only when every check passes; `--json` for scripts; `--send-to` also sends one
 * real message per checked sender (Exchange checks the From header only after the data).
 */
import { TokenServices } from '../auth/token-services.js';
import { runDoctor } from '../checks/doctor/doctor.js';
import { formatReport } from '../checks/doctor/findings.js';
import { Spool } from '../smtp/spool/spool.js';
import { loadUpstreamExtraCa } from '../transport/tls-options.js';
import { commandContext, type GlobalOptions } from './context.js';
import { exitCodes } from './exit-codes.js';

export interface DoctorCommandOptions extends GlobalOptions {
  json?: boolean;
  sendTo?: string;
}

/** Envelope senders of the spool's queued and dead messages for an account: the senders devices were seen to use. */
async function spoolSenders(stateDir: string, account: string): Promise<string[]> {
  const spool = await Spool.open(stateDir, { create: false });
  const envelopes = [...(await spool.list()), ...(await spool.listDead())];
  return [...new Set(envelopes.filter((e) => e.account === account && e.mailFrom !== '').map((e) => e.mailFrom))];
}

export async function doctorCommand(account: string | undefined, opts: DoctorCommandOptions): Promise<number> {
  const { loaded, logger } = commandContext(opts);
  const config = loaded.config;
  const tokens = await TokenServices.create(config, logger);
  try {
    await tokens.start();
    const reports = await runDoctor({
      config,
      tokens,
      account: (name) => tokens.get(name),
      extraCaPem: loadUpstreamExtraCa(config),
      logger,
      seenSenders: (name) => spoolSenders(config.stateDir, name),
      ...(opts.sendTo ? { sendTo: opts.sendTo } : {}),
    }, account);
    const ok = reports.every((r) => r.ok);
    if (opts.json) process.stdout.write(`${JSON.stringify({ ok, accounts: reports }, null, 2)}\n`);
    else process.stdout.write(`${reports.map(formatReport).join('\n\n')}\n`);
    return ok ? exitCodes.ok : exitCodes.failed;
  } finally {
    await tokens.stop();
  }
}
