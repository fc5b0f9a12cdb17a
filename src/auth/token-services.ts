/**
 * All accounts' token services, built from the config: the encrypted store and its key, the identity HTTP
 * client (extra CA for the identity host only), the shared state files. Protocol code calls
 * `accessTokenFor(account)` and `tokenRejected(account, token)`, nothing else.
 */
import { readFileSync } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import type { Config } from '../config/schema.js';
import { RelayError } from '../errors.js';
import type { Logger } from '../log.js';
import { AccountStateFile } from './account-state-file.js';
import { createIdentityHttpClient } from './identity-http.js';
import { createMsalApp } from './msal-app.js';
import { createEncryptedFileStore, resolveStoreKey } from './store/index.js';
import { TokenService, type AccessToken } from './token-service.js';

export class TokenServices {
  private watcher: FSWatcher | null = null;

  private constructor(
    private readonly services: Map<string, TokenService>,
    private readonly stateFile: AccountStateFile,
    private readonly closeHttp: () => void,
  ) {}

  static async create(config: Config, logger: Logger, env: NodeJS.ProcessEnv = process.env): Promise<TokenServices> {
    const log = logger.child({ component: 'tokens' });
    const key = await resolveStoreKey({ stateDir: config.stateDir, env });
    if (key.created) log.warn({ keyFile: key.location }, 'created a new token-store key file: back it up with the state directory, tokens cannot be read without it');
    const store = createEncryptedFileStore({ stateDir: config.stateDir, key: key.key });
    const extraCaPem = config.identity.extraCaFile ? readFileSync(config.identity.extraCaFile, 'utf8') : null;
    const http = createIdentityHttpClient({ extraCaPem });
    const stateFile = new AccountStateFile(config.stateDir);
    const services = new Map<string, TokenService>();
    for (const [name, account] of Object.entries(config.accounts)) {
      services.set(
        name,
        new TokenService({
          name,
          account,
          settings: config.identity.tokens,
          store,
          stateFile,
          logger: log,
          createApp: () => createMsalApp({ name, account, authorityHost: config.identity.authorityHost, store, networkClient: http, logger: log.child({ account: name }), env }),
        }),
      );
    }
    return new TokenServices(services, stateFile, () => http.close());
  }

  /** Restores every account's state; with `watch`, follows changes other processes (CLI login/logout) make. */
  async start(opts: { watch?: boolean } = {}): Promise<void> {
    await Promise.all([...this.services.values()].map((s) => s.start()));
    if (opts.watch) {
      this.watcher = await this.stateFile.watch((name) => void this.services.get(name)?.reloadFromDisk());
    }
  }

  async stop(): Promise<void> {
    this.watcher?.close();
    for (const s of this.services.values()) s.stop();
    await Promise.all([...this.services.values()].map((s) => s.flush()));
    this.closeHttp();
  }

  get(name: string): TokenService {
    const service = this.services.get(name);
    if (!service) throw new RelayError('UNKNOWN_ACCOUNT', `${name} (configured: ${[...this.services.keys()].join(', ')})`);
    return service;
  }

  all(): TokenService[] {
    return [...this.services.values()];
  }

  accessTokenFor(account: string): Promise<AccessToken> {
    return this.get(account).accessToken();
  }

  tokenRejected(account: string, token: string): Promise<AccessToken> {
    return this.get(account).tokenRejected(token);
  }
}
