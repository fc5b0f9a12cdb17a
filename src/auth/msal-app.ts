/**
 * Builds the msal-node client of one account: public client for device code and browser sign-in,
 * confidential client for client credentials; its cache goes through a plugin into the token store, so every
 * rotated refresh token is on disk (encrypted) before MSAL hands the new access token back.
 */
import { readFileSync } from 'node:fs';
import {
  ConfidentialClientApplication,
  LogLevel,
  PublicClientApplication,
  type Configuration,
  type ICachePlugin,
  type INetworkModule,
  type TokenCacheContext,
} from '@azure/msal-node';
import type { AccountConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import { certificateThumbprints } from './certificate-thumbprints.js';
import type { TokenStore } from './store/token-store.js';

export type MsalApp = PublicClientApplication | ConfidentialClientApplication;

/**
 * Cache plugin over the token store. It re-reads the store before each access (a `login` run in another
 * process, or the admin page, may have written it) and writes after every change; the write is awaited,
 * so a failed write fails the token request instead of losing a rotated refresh token.
 */
export function storeCachePlugin(store: TokenStore, account: string): ICachePlugin {
  return {
    async beforeCacheAccess(ctx: TokenCacheContext) {
      const data = await store.load(account);
      ctx.tokenCache.deserialize(data ?? '{}');
    },
    async afterCacheAccess(ctx: TokenCacheContext) {
      if (ctx.cacheHasChanged) await store.save(account, ctx.tokenCache.serialize());
    },
  };
}

export interface MsalAppOptions {
  name: string;
  account: AccountConfig;
  authorityHost: string;
  store: TokenStore;
  networkClient: INetworkModule;
  logger: Logger;
  env?: NodeJS.ProcessEnv;
}

/** MSAL's own log lines, at debug, through our logger. MSAL is told to leave out personal data (and it never logs tokens). */
function msalLogger(logger: Logger): NonNullable<Configuration['system']>['loggerOptions'] {
  return {
    piiLoggingEnabled: false,
    logLevel: LogLevel.Warning,
    loggerCallback: (level, message) => {
      if (level <= LogLevel.Warning) logger.debug({ msal: message }, 'msal');
    },
  };
}

export function createMsalApp(opts: MsalAppOptions): MsalApp {
  const host = new URL(opts.authorityHost).host;
  const config: Configuration = {
    auth: {
      clientId: opts.account.clientId,
      authority: `${opts.authorityHost.replace(/\/$/, '')}/${opts.account.tenantId}`,
      // The configured host is trusted as is: no instance discovery against login.microsoftonline.com,
      // which also lets sovereign clouds and the sandbox work with the same code path.
      knownAuthorities: [host],
    },
    cache: { cachePlugin: storeCachePlugin(opts.store, opts.name) },
    system: { networkClient: opts.networkClient, loggerOptions: msalLogger(opts.logger) },
  };
  if (opts.account.flow !== 'client-credentials') return new PublicClientApplication(config);
  return new ConfidentialClientApplication({ ...config, auth: { ...config.auth, ...clientCredential(opts.account, opts.env ?? process.env) } });
}

/** The client secret or certificate, read from the files the config names (never from the config itself). */
function clientCredential(account: AccountConfig, env: NodeJS.ProcessEnv): NonNullable<Configuration['auth']> extends infer A ? Partial<A> : never {
  if (account.clientSecretFile) return { clientSecret: readFileSync(account.clientSecretFile, 'utf8').trim() };
  if (account.clientSecretEnv) return { clientSecret: (env[account.clientSecretEnv] ?? '').trim() };
  const certPem = readFileSync(account.certificateFile!, 'utf8');
  const privateKey = readFileSync(account.privateKeyFile!, 'utf8');
  const x5c = certPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)?.join('\n');
  return { clientCertificate: { thumbprintSha256: certificateThumbprints(certPem).sha256, privateKey, ...(x5c ? { x5c } : {}) } };
}
