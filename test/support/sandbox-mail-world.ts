/**
 * The sandbox identity simulator and the sandbox mailbox (Exchange look-alike) together, with a config that points
 * the relay at both: `scanner` signs in by device code (delegated), `frontdesk` is app-only with a certificate.
 * Tests switch the mailbox's emulated Exchange settings through its control API (`setRules`).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TokenServices } from '../../src/auth/token-services.js';
import { startSandboxMailbox, type SandboxMailbox } from '../../src/sandbox/mailbox/mailbox.js';
import { createPki } from '../../src/sandbox/pki.js';
import { SANDBOX_MAILBOX, SANDBOX_TENANT_ID } from '../../src/sandbox/sandbox-config.js';
import { setMailboxRules } from '../sandbox/mailbox-fixtures.js';
import { merge, startSandboxEnv, type SandboxEnv } from './sandbox-env.js';

export const APP_CLIENT_ID = 'a0000000-0000-4000-8000-0000000000f1';
export const APP_MAILBOX = 'frontdesk@sandbox.test';
export const KEY_ENV = { XOAUTH2_RELAY_KEY: 'cd'.repeat(32) };

export interface SandboxMailWorld {
  env: SandboxEnv;
  mailbox: SandboxMailbox;
  /** The sandbox mailbox's message store: `<maildir>/<address>/new/<file>`. */
  maildir: string;
  setRules(mailbox: string, rules: Record<string, unknown>): Promise<Record<string, unknown>>;
  /** Everything back to a tenant that lets the relay work. */
  resetRules(): Promise<void>;
  /** Deep-merged over the world's config (arrays replaced). */
  /** Signs `scanner` in by device code (approved as its mailbox) in a throw-away token service, then stops it. */
  signIn(): Promise<void>;
  close(): Promise<void>;
}

export async function startSandboxMailWorld(overrides: (world: { mailbox: SandboxMailbox; dir: string }) => Record<string, unknown> = () => ({})): Promise<SandboxMailWorld> {
  let mailbox: SandboxMailbox | undefined;
  let dir = '';
  const env = await startSandboxEnv({
    sim: { pollIntervalSec: 0.2 },
    config: async (sim) => {
      dir = await mkdtemp(join(tmpdir(), 'sandbox-mail-world-'));
      const pki = await createPki('sandbox mail world CA');
      mailbox = await startSandboxMailbox({
        tls: await pki.issueServerCertificate(['127.0.0.1', 'localhost']),
        tokens: { publicKeyPem: sim.signingKey.publicKeyPem, kid: sim.signingKey.kid, issuers: [sim.issuer(SANDBOX_TENANT_ID)], audiences: ['https://outlook.office.com', 'https://outlook.office365.com'] },
        maildir: join(dir, 'mailbox'),
      });
      const cert = await pki.issueClientCertificate('xoauth2-relay app');
      await writeFile(join(dir, 'app.crt'), cert.certPem);
      await writeFile(join(dir, 'app.key'), cert.keyPem, { mode: 0o600 });
      await writeFile(join(dir, 'mailbox-ca.pem'), pki.caCertPem);
      sim.registerClientCertificate(APP_CLIENT_ID, cert.certPem);
      return merge({
        accounts: {
          frontdesk: { mailbox: APP_MAILBOX, tenantId: SANDBOX_TENANT_ID, clientId: APP_CLIENT_ID, flow: 'client-credentials', certificateFile: join(dir, 'app.crt'), privateKeyFile: join(dir, 'app.key') },
        },
        smtp: { upstream: { host: '127.0.0.1', port: mailbox.smtpPort }, delivery: { retryInitialSeconds: 0.2, retryMaxSeconds: 0.5 } },
        imap: { upstream: { host: '127.0.0.1', port: mailbox.imapPort ?? 993 } },
        pop3: { upstream: { host: '127.0.0.1', port: mailbox.pop3Port } },
        upstreamTls: { extraCaFile: join(dir, 'mailbox-ca.pem') },
        admin: { listen: '127.0.0.1:0' },
      }, overrides({ mailbox, dir }));
    },
  });
  const box = mailbox!;
  return {
    env,
    mailbox: box,
    maildir: join(dir, 'mailbox'),
    setRules: (address, rules) => setMailboxRules(box.controlUrl, address, rules),
    async resetRules() {
      const res = await fetch(box.controlUrl, { method: 'DELETE' });
      if (!res.ok) throw new Error(`control API reset: ${res.status}`);
    },
    async signIn() {
      const services = await TokenServices.create(env.config, env.logger, { ...process.env, ...KEY_ENV });
      await services.start();
      const prompt = await services.get('scanner').startDeviceCode();
      env.sim.approve(prompt.userCode, SANDBOX_MAILBOX);
      await prompt.done;
      await services.stop();
    },
    async close() {
      await box.close();
      await env.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
