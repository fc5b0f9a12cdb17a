/**
 * The configuration of the built-in sandbox: one account on the simulator's tenant, listeners on loopback
 * only. Made with the config schema's own types so it cannot drift from what the relay accepts.
 */
import { stringify } from 'yaml';
import type { ConfigInput } from '../config/schema.js';

/** Fixed ids of the sandbox tenant and app: they only have to look like Entra's, nothing checks them elsewhere. */
export const SANDBOX_TENANT_ID = '5a4d8b0c-0000-4000-8000-5a4db0c5a4d0';
export const SANDBOX_CLIENT_ID = 'c11e4700-0000-4000-8000-000000000001';
export const SANDBOX_MAILBOX = 'scanner@sandbox.test';

export interface SandboxConfigOptions {
  stateDir: string;
  authorityHost: string;
  extraCaFile: string;
}

export function sandboxConfig(opts: SandboxConfigOptions): ConfigInput {
  return {
    stateDir: opts.stateDir,
    identity: { authorityHost: opts.authorityHost, extraCaFile: opts.extraCaFile },
    accounts: {
      scanner: { mailbox: SANDBOX_MAILBOX, tenantId: SANDBOX_TENANT_ID, clientId: SANDBOX_CLIENT_ID, flow: 'device-code' },
    },
    smtp: { listen: [{ host: '127.0.0.1', port: 2525, tls: 'none' }] },
    admin: { listen: '127.0.0.1:8025' },
  };
}

export function sandboxConfigYaml(opts: SandboxConfigOptions): string {
  return `# xoauth2-relay sandbox configuration (made by \`xoauth2-relay sandbox\`): no Microsoft tenant involved.\n${stringify(sandboxConfig(opts))}`;
}
