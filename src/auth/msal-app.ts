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
import { RelayError } from '../errors.js';
import type { Logger } from '../log.js';
import { certificateThumbprints } from './certificate-thumbprints.js';
import type { TokenStore } from './store/token-store.js';
import type { AccountRecords } from './store/account-records.js';
import { identityCalls } from './identity-call.js';

export type MsalApp = PublicClientApplication | ConfidentialClientApplication;

/**
 * Cache plugin over the token store. It re-reads the store before each access (another process, or a sign-in
 * in this one, may have written it) and writes after every change; the write is awaited, so a failed write fails
 * the token request instead of losing a rotated refresh token. The account's lock is held from the load to the
 * save (as msal-node-extensions does), so processes sharing a state directory never interleave their
 * load-refresh-save; and the save is skipped when a Delete token raised the generation since the operation
 * began (identity-call.ts), so a refresh in flight cannot bring a deleted token back.
 */
export function storeCachePlugin(store: TokenStore, records: AccountRecords, account: string): ICachePlugin {
  const held = new WeakMap<TokenCacheContext, { release: () => Promise<void>; loaded: string }>();
  return {
    async beforeCacheAccess(ctx: TokenCacheContext) {
      const release = await holdLock(records, account);
      try {
        const data = await store.load(account);
        forgetInMemory(ctx);
        ctx.tokenCache.deserialize(data ?? '{}');
        held.set(ctx, { release, loaded: ctx.tokenCache.serialize() });
      } catch (err) {
        await release();
        throw err;
      }
    },
    async afterCacheAccess(ctx: TokenCacheContext) {
      const entry = held.get(ctx);
      held.delete(ctx);
      try {
        // deserialize() marks the cache changed; only a real change (a new or rotated token) is written.
        if (!ctx.cacheHasChanged) return;
        const serialized = ctx.tokenCache.serialize();
        if (entry && serialized === entry.loaded) return;
        const call = identityCalls.getStore();
        if (call) {
          const record = await records.read(account);
          if ((record?.generation ?? 0) !== call.generation) {
            call.fenced = true;
            return;
          }
        }
        await store.save(account, serialized);
      } finally {
        await entry?.release();
      }
    },
  };
}

/**
 * msal-node's deserialize() merges into the in-memory cache instead of replacing it, so a long-lived process would
 * keep (and write back) a token another process deleted. The store is the truth: memory is emptied before each load.
 * `storage.clear()` is msal-node's own (it keeps authority metadata); its absence after an upgrade must be loud.
 */
function forgetInMemory(ctx: TokenCacheContext): void {
  const storage = (ctx.tokenCache as unknown as { storage?: { clear?: () => void } }).storage;
  if (typeof storage?.clear !== 'function') throw new RelayError('INTERNAL', 'msal-node\'s token cache has no storage.clear(): check the msal-node upgrade (auth/msal-app.ts)');
  storage.clear();
}

/** Takes the account's lock and returns the function that gives it back (MSAL's before/after are two calls). */
async function holdLock(records: AccountRecords, account: string): Promise<() => Promise<void>> {
  let entered!: () => void;
  let letGo!: () => void;
  const inside = new Promise<void>((resolve) => (entered = resolve));
  const released = new Promise<void>((resolve) => (letGo = resolve));
  const holding = records.withLock(account, async () => {
    entered();
    await released;
  });
  await Promise.race([inside, holding]); // `holding` rejects when the lock cannot be taken
  return async () => {
    letGo();
    await holding;
  };
}

export interface MsalAppOptions {
  name: string;
  account: AccountConfig;
  authorityHost: string;
  store: TokenStore;
  records: AccountRecords;
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
    cache: { cachePlugin: storeCachePlugin(opts.store, opts.records, opts.name) },
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
