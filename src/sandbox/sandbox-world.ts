/**
 * The whole sandbox in one process: identity simulator, XOAUTH2-only mailbox (SMTP submission, POP3S, IMAPS),
 * and a relay configuration that points at both. Used by `xoauth2-relay demo`; only hosts differ from
 * production, every code path of the relay is the real one.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { hashPassword } from '../auth/password-hash.js';
import { checkConfigText, type LoadedConfig } from '../config/load.js';
import type { ConfigInput } from '../config/schema.js';
import type { Logger } from '../log.js';
import { startIdentitySimulator, type IdentitySimulator } from './identity/simulator.js';
import { startSandboxMailbox, type SandboxMailbox } from './mailbox/mailbox.js';
import { createPki } from './pki.js';
import { SANDBOX_MAILBOX, SANDBOX_TENANT_ID, sandboxConfig } from './sandbox-config.js';

export interface SandboxWorldOptions {
  dir: string;
  /** Device-facing SMTP port of the relay (0: any free port). */
  smtpPort: number;
  /** Device-facing POP3 port of the relay (0: any free port); null: no POP3 listener. */
  pop3Port: number | null;
  /** Device-facing IMAP port of the relay (0: any free port); null (default): no IMAP listener. */
  imapPort?: number | null;
  /** Port of the admin page on 127.0.0.1 (0, the default: any free port). */
  adminPort?: number;
  /** The password of the demo device `mfp` (the address-admitted device needs none). */
  devicePassword: string;
  /** Written into `dir` right after it is made, so a later start knows the directory is its own to wipe. */
  marker?: { name: string; text: string };
  logger?: Logger;
  /** Passed to the sandbox mailbox (simultaneous POP3/IMAP connections per listener). */
  mailboxMaxConnections?: number;
}

export interface SandboxWorld {
  sim: IdentitySimulator;
  mailbox: SandboxMailbox;
  loaded: LoadedConfig;
  configFile: string;
  close(): Promise<void>;
}

export async function startSandboxWorld(opts: SandboxWorldOptions): Promise<SandboxWorld> {
  // A fresh state every time: the simulator's signing key is new at each start, old tokens could not verify.
  await rm(opts.dir, { recursive: true, force: true });
  await mkdir(opts.dir, { recursive: true, mode: 0o700 });
  if (opts.marker) await writeFile(join(opts.dir, opts.marker.name), opts.marker.text, { mode: 0o600 });
  const pki = await createPki('xoauth2-relay demo CA');
  const caFile = join(opts.dir, 'sandbox-ca.pem');
  await writeFile(caFile, pki.caCertPem);
  const sim = await startIdentitySimulator({ host: '127.0.0.1', port: 0, pki, pollIntervalSec: 1, expectedMailbox: SANDBOX_MAILBOX });
  const mailbox = await startSandboxMailbox({
    tls: await pki.issueServerCertificate(['127.0.0.1', 'localhost']),
    tokens: {
      publicKeyPem: sim.signingKey.publicKeyPem,
      kid: sim.signingKey.kid,
      issuers: [sim.issuer(SANDBOX_TENANT_ID)],
      audiences: ['https://outlook.office.com', 'https://outlook.office365.com'],
    },
    maildir: join(opts.dir, 'mailbox'),
    ...(opts.mailboxMaxConnections ? { maxConnections: opts.mailboxMaxConnections } : {}),
    ...(opts.logger ? { logger: opts.logger } : {}),
  });
  const base = sandboxConfig({ stateDir: join(opts.dir, 'state'), authorityHost: sim.url, extraCaFile: caFile });
  const input: ConfigInput = {
    ...base,
    devices: [
      { name: 'demo-scanner', account: 'scanner', allowFrom: ['127.0.0.1/32', '::1/128'] },
      { name: 'mfp', username: 'mfp', passwordHash: await hashPassword(opts.devicePassword), account: 'scanner' },
    ],
    smtp: { listen: [{ host: '127.0.0.1', port: opts.smtpPort, tls: 'none' }], upstream: { host: '127.0.0.1', port: mailbox.smtpPort } },
    pop3: {
      listen: opts.pop3Port === null ? [] : [{ host: '127.0.0.1', port: opts.pop3Port, tls: 'none' }],
      upstream: { host: '127.0.0.1', port: mailbox.pop3Port },
    },
    imap: {
      listen: opts.imapPort == null ? [] : [{ host: '127.0.0.1', port: opts.imapPort, tls: 'none' }],
      upstream: { host: '127.0.0.1', port: mailbox.imapPort ?? 993 },
    },
    upstreamTls: { extraCaFile: caFile },
    admin: { listen: `127.0.0.1:${opts.adminPort ?? 0}` },
  };
  const configFile = join(opts.dir, 'config.yaml');
  const text = `# xoauth2-relay demo configuration (made by \`xoauth2-relay demo\`): sandbox identity platform and mailbox.\n${stringify(input)}`;
  await writeFile(configFile, text, { mode: 0o600 });
  const checked = checkConfigText(text, configFile);
  if (!checked.ok) throw new Error(`the demo configuration is invalid (a bug): ${JSON.stringify(checked.problems)}`);
  return {
    sim,
    mailbox,
    loaded: checked.loaded,
    configFile,
    async close() {
      await mailbox.close();
      await sim.close();
    },
  };
}
