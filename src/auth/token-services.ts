/**
 * All accounts' token services, built from the config: the encrypted store and its key, the shared account
 * records (state, generation, lock), the identity HTTP client (extra CA for the identity host only). Protocol code
 * uses `tokens()` (account-tokens.ts) and nothing else. A reload (`apply`) adds, rebuilds and retires services as
 * a whole; a retired service keeps answering the sessions that began with it, without timers.
 */
import { readFileSync } from 'node:fs';
import { EventEmitter } from 'node:events';
import type { Config } from '../config/schema.js';
import { RelayError } from '../errors.js';
import { errorFields, type Logger } from '../log.js';
import { accountTokens, type AccountTokens, type TokenProvider, type TokenStates } from './account-tokens.js';
import { createIdentityHttpClient } from './identity-http.js';
import { createMsalApp } from './msal-app.js';
import { FileAccountRecords, type AccountRecords } from './store/account-records.js';
import { RedisAccountRecords } from './store/redis-account-records.js';
import { RedisConnection, type StoreStatus } from './store/redis-connection.js';
import { createRedisTokenStore } from './store/redis-token-store.js';
import { createEncryptedFileStore, resolveStoreKey, type TokenStore } from './store/index.js';
import { TokenService, type AccessToken } from './token-service.js';
import type { TokenState, TokenStateName } from './token-state.js';

interface Shared {
  config: Config;
  store: TokenStore;
  records: AccountRecords;
  http: ReturnType<typeof createIdentityHttpClient>;
  log: Logger;
  env: NodeJS.ProcessEnv;
  /** Present with tokenStore.kind: redis. */
  redis: { connection: RedisConnection; records: RedisAccountRecords } | null;
}

/** 'state', 'refreshFailedTransient': any account's (services added by a reload included). */
export class TokenServices extends EventEmitter<{ state: [TokenState, string]; refreshFailedTransient: [string] }> implements TokenProvider, TokenStates, AccountTokens {
  private watcher: { close(): void } | null = null;
  private readonly services = new Map<string, TokenService>();
  private readonly retired = new Map<string, TokenService>();
  private readonly forward = (state: TokenState, name: string) => this.emit('state', state, name);
  private readonly forwardTransient = (name: string) => this.emit('refreshFailedTransient', name);

  private constructor(private shared: Shared) {
    super();
    this.setMaxListeners(0);
    for (const name of Object.keys(shared.config.accounts)) this.services.set(name, this.build(name, shared.config));
  }

  static async create(config: Config, logger: Logger, env: NodeJS.ProcessEnv = process.env): Promise<TokenServices> {
    const log = logger.child({ component: 'tokens' });
    const shared = config.tokenStore.kind === 'redis';
    // Instances sharing a Redis must share the key too: a key file made here would seal tokens no other instance opens.
    const key = await resolveStoreKey({ stateDir: config.stateDir, env, createIfMissing: !shared });
    if (key.created) log.warn({ keyFile: key.location }, 'created a new token-store key file: back it up with the state directory, tokens cannot be read without it');
    const extraCaPem = config.identity.extraCaFile ? readFileSync(config.identity.extraCaFile, 'utf8') : null;
    const http = createIdentityHttpClient({ extraCaPem, timeoutMs: config.identity.tokens.requestTimeoutSeconds * 1000 });
    if (!shared) {
      const store = createEncryptedFileStore({ stateDir: config.stateDir, key: key.key });
      return new TokenServices({ config, store, records: new FileAccountRecords(config.stateDir), http, log, env, redis: null });
    }
    const connection = new RedisConnection(config.tokenStore, log);
    const records = new RedisAccountRecords(connection, log);
    // CLI commands use the services without start(): they too must reach Redis and announce themselves (a sign-in
    // polled by a CLI `login` is live for the other instances while its heartbeat is).
    await connection.connect();
    records.start();
    return new TokenServices({ config, store: createRedisTokenStore(connection, key.key), records, http, log, env, redis: { connection, records } });
  }

  /** Where tokens live and whether that store answers now (the admin page, /metrics and /readyz show it). */
  storeStatus(): StoreStatus {
    const redis = this.shared.redis;
    if (!redis) return { kind: 'file', reachable: true, everReachable: true, where: this.shared.config.stateDir };
    return { kind: 'redis', reachable: redis.connection.reachable, everReachable: redis.connection.everReachable, where: redis.connection.where };
  }

  private build(name: string, config: Config): TokenService {
    const { store, records, http, log, env } = this.shared;
    const account = config.accounts[name]!;
    const service = new TokenService({
      name,
      account,
      settings: config.identity.tokens,
      store,
      records,
      logger: log,
      identityHost: new URL(config.identity.authorityHost).host,
      createApp: () => createMsalApp({ name, account, authorityHost: config.identity.authorityHost, store, records, networkClient: http, logger: log.child({ account: name }), env }),
    });
    service.on('state', this.forward);
    service.on('refreshFailedTransient', this.forwardTransient);
    return service;
  }

  /** Restores every account's state (one unreadable account never stops the others); with `watch`, follows other processes. */
  async start(opts: { watch?: boolean } = {}): Promise<void> {
    const redis = this.shared.redis;
    if (redis) {
      // Back after an outage: every account is read again, so each instance shows what the store now says.
      redis.connection.on('reachable', () => {
        for (const service of this.services.values()) service.reloadFromDisk().catch((err: unknown) => this.shared.log.error(errorFields(err), 'could not re-read an account'));
      });
    }
    await Promise.all([...this.services.values()].map((s) => s.start()));
    if (opts.watch) {
      this.watcher = await this.shared.records.watch(
        (name) => {
          const service = this.services.get(name);
          if (service) service.reloadFromDisk().catch((err: unknown) => this.shared.log.error({ ...errorFields(err), account: name }, 'could not follow a change of the account state'));
        },
        (err) => this.shared.log.error(errorFields(err), 'stopped following the state directory: changes by other processes are seen after a restart'),
      );
    }
  }

  /**
   * A reload's accounts, as a whole: new accounts get a started service, changed ones a new service (the old one
   * retired), removed ones are retired. Names what changed.
   */
  async apply(config: Config): Promise<{ added: string[]; rebuilt: string[]; removed: string[] }> {
    const previous = this.shared;
    this.shared = { ...this.shared, config };
    // Build every new service first: a failure here (an unreadable certificate) leaves everything as it was.
    const fresh = new Map<string, TokenService>();
    try {
      for (const [name, account] of Object.entries(config.accounts)) {
        const existing = this.services.get(name);
        if (!existing || JSON.stringify(existing.account) !== JSON.stringify(account)) fresh.set(name, this.build(name, config));
      }
    } catch (err) {
      for (const service of fresh.values()) this.detach(service);
      this.shared = previous;
      throw err;
    }
    const added = [...fresh.keys()].filter((name) => !this.services.has(name));
    const rebuilt = [...fresh.keys()].filter((name) => this.services.has(name));
    const removed = [...this.services.keys()].filter((name) => !config.accounts[name]);
    for (const name of [...rebuilt, ...removed]) this.retire(name, this.services.get(name)!);
    for (const name of removed) this.services.delete(name);
    for (const [name, service] of fresh) this.services.set(name, service);
    await Promise.all([...fresh.values()].map((s) => s.start())); // start() never throws
    return { added, rebuilt, removed };
  }

  private retire(name: string, service: TokenService): void {
    service.stop();
    this.detach(service);
    this.retired.set(name, service);
  }

  private detach(service: TokenService): void {
    service.off('state', this.forward);
    service.off('refreshFailedTransient', this.forwardTransient);
  }

  async stop(): Promise<void> {
    this.watcher?.close();
    const all = [...this.services.values(), ...this.retired.values()];
    for (const s of all) s.stop();
    await Promise.all(all.map((s) => s.flush()));
    this.shared.http.close();
    this.shared.redis?.records.stop();
    this.shared.redis?.connection.close();
  }

  get(name: string): TokenService {
    const service = this.services.get(name) ?? this.retired.get(name);
    if (!service) throw new RelayError('UNKNOWN_ACCOUNT', `${name} (configured: ${[...this.services.keys()].join(', ')})`);
    return service;
  }

  /** The configured accounts' services (not retired ones). */
  all(): TokenService[] {
    return [...this.services.values()];
  }

  accessTokenFor(account: string): Promise<AccessToken> {
    return this.get(account).accessToken();
  }

  tokenRejected(account: string, token: string): Promise<AccessToken> {
    return this.get(account).tokenRejected(token);
  }

  stateOf(account: string): TokenStateName {
    return this.services.get(account)?.state.state ?? 'not-acquired'; // an account removed from the config has no token
  }

  onStateChange(listener: (account: string, state: TokenStateName) => void): () => void {
    const onState = (state: TokenState, name: string) => listener(name, state.state);
    this.on('state', onState);
    return () => this.off('state', onState);
  }

  /** The one interface protocol code uses (account-tokens.ts: the refresh-once rule is there). */
  readonly withAccessToken: AccountTokens['withAccessToken'] = (account, use) => accountTokens(this).withAccessToken(account, use);
}
