/**
 * The one owner of an account's token. Protocol code asks `accessToken()` for "a valid token now" and nothing
 * else; this class decides when to refresh (≥ refreshBeforeExpirySeconds ahead, and keep-alive when idle),
 * runs one refresh at a time (single-flight), keeps the token through network trouble, and turns *invalid*
 * only on a grant-class answer. State changes are events ('state') that the log, admin page and metrics follow.
 */
import { EventEmitter } from 'node:events';
import type { AccountInfo, AuthenticationResult } from '@azure/msal-node';
import type { AccountConfig, Config } from '../config/schema.js';
import { RelayError } from '../errors.js';
import { errorFields, fingerprint, type Logger } from '../log.js';
import type { AccountStateFile } from './account-state-file.js';
import { classifyIdentityError, type IdentityFailure } from './identity-errors.js';
import { ConfidentialClientApplication } from '@azure/msal-node';
import type { MsalApp } from './msal-app.js';
import { appOnlyScopes, delegatedScopes } from './scopes.js';
import { SignIn, type DeviceCodePrompt } from './sign-in.js';
import { nextStateName, type TokenEvent, type TokenState, type TokenStateName } from './token-state.js';
import type { TokenStore } from './store/token-store.js';

export interface AccessToken {
  token: string;
  expiresAt: Date;
  mailbox: string;
}

export interface TokenServiceOptions {
  name: string;
  account: AccountConfig;
  settings: Config['identity']['tokens'];
  /** Builds the MSAL client; called again after logout so no cached token survives in memory. */
  createApp: () => MsalApp;
  store: TokenStore;
  stateFile: AccountStateFile;
  logger: Logger;
  now?: () => number;
}

/** 'state': every change of the shown state; 'refreshFailedTransient': a refresh failed for a passing reason (token kept). */
export class TokenService extends EventEmitter<{ state: [TokenState, string]; refreshFailedTransient: [string] }> {
  readonly name: string;
  readonly mailbox: string;
  private app: MsalApp;
  private current: TokenState = { state: 'not-acquired' };
  private previousName: TokenStateName = 'not-acquired';
  private cached: AccessToken | null = null;
  private inflight: Promise<AccessToken> | null = null;
  private lastRefresh: Date | null = null;
  private backoffMs = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  private keepAliveTimer: NodeJS.Timeout | null = null;
  private readonly signIn: SignIn;
  private readonly log: Logger;
  private readonly now: () => number;
  private writes: Promise<void> = Promise.resolve();
  /** Why the last interactive sign-in ended without a token, for the person who started it. */
  lastSignInFailure: string | null = null;

  constructor(private readonly opts: TokenServiceOptions) {
    super();
    this.name = opts.name;
    this.mailbox = opts.account.mailbox;
    this.app = opts.createApp();
    this.log = opts.logger.child({ account: opts.name });
    this.now = opts.now ?? Date.now;
    this.signIn = new SignIn(() => this.app, delegatedScopes, this.log);
  }

  get state(): TokenState {
    return this.current;
  }

  get lastRefreshAt(): Date | null {
    return this.lastRefresh;
  }

  get flow(): AccountConfig['flow'] {
    return this.opts.account.flow;
  }

  /** Restores the shown state from disk (no network), and starts the keep-alive timer. */
  async start(): Promise<void> {
    await this.reloadFromDisk();
    const interval = Math.max(60_000, (this.opts.settings.keepAliveDays * 86_400_000) / 24);
    this.keepAliveTimer = setInterval(() => void this.keepAlive(), Math.min(interval, 2 ** 31 - 1));
    this.keepAliveTimer.unref();
  }

  /** Resolves when every state change so far is on disk (a CLI run waits for it before exiting). */
  flush(): Promise<void> {
    return this.writes;
  }

  stop(): void {
    if (this.keepAliveTimer) clearInterval(this.keepAliveTimer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.signIn.cancel();
  }

  /** Re-reads the persisted state; another process (CLI login/logout) may have changed it. */
  async reloadFromDisk(): Promise<void> {
    const persisted = await this.opts.stateFile.read(this.name);
    const hasToken = await this.hasStoredToken();
    this.lastRefresh = persisted?.lastRefresh ? new Date(persisted.lastRefresh) : this.lastRefresh;
    let next: TokenState = persisted?.token ?? { state: hasToken ? 'acquired' : 'not-acquired', ...(hasToken ? { expiresAt: null, lastRefresh: this.lastRefresh?.toISOString() ?? '', scopes: [] } : {}) } as TokenState;
    if (next.state === 'acquired' && !hasToken) next = { state: 'not-acquired' };
    // A waiting sign-in is real only while the process polling for it lives (this one, or a CLI `login`).
    const poller = persisted?.writer ?? 0;
    const polling = poller === process.pid ? this.signIn.active : processAlive(poller);
    if (next.state === 'waiting-authorization' && (!polling || Date.parse(next.expiresAt) < this.now())) {
      next = hasToken ? { state: 'acquired', expiresAt: null, lastRefresh: this.lastRefresh?.toISOString() ?? '', scopes: [] } : { state: 'not-acquired' };
    }
    if (next.state !== 'acquired') this.cached = null;
    this.setState(next, false);
  }

  private async hasStoredToken(): Promise<boolean> {
    // App-only: MSAL's cache plugin stores the app token like any other, so a stored cache means acquired.
    if (this.isAppOnly) return (await this.opts.store.load(this.name)) !== null;
    return (await this.findAccount()) !== null;
  }

  private get isAppOnly(): boolean {
    return this.opts.account.flow === 'client-credentials';
  }

  private async findAccount(): Promise<AccountInfo | null> {
    const accounts = await this.app.getTokenCache().getAllAccounts();
    const wanted = this.opts.account.mailbox.toLowerCase();
    return accounts.find((a) => a.username.toLowerCase() === wanted) ?? accounts[0] ?? null;
  }

  /**
   * A token valid for at least refreshBeforeExpirySeconds, refreshing first when needed. Concurrent callers
   * share one refresh. Throws RelayError TOKEN_NOT_ACQUIRED / TOKEN_INVALID / TOKEN_REFRESH_FAILED.
   */
  async accessToken(): Promise<AccessToken> {
    const fresh = this.cached && this.cached.expiresAt.getTime() - this.now() > this.opts.settings.refreshBeforeExpirySeconds * 1000;
    if (fresh && this.cached) return this.cached;
    return this.refresh('expiry');
  }

  /** After an upstream refused `token`: one forced refresh (shared by everyone who saw the same token refused). */
  async tokenRejected(token: string): Promise<AccessToken> {
    if (this.cached && this.cached.token !== token) return this.cached; // somebody already refreshed past it
    this.log.warn({ tokenFingerprint: fingerprint(token) }, 'upstream rejected the access token: refreshing once');
    this.cached = null;
    return this.refresh('rejected');
  }

  private refresh(why: 'expiry' | 'rejected' | 'keep-alive' | 'retry'): Promise<AccessToken> {
    this.inflight ??= this.doRefresh(why).finally(() => {
      this.inflight = null;
    });
    return this.inflight;
  }

  private async doRefresh(why: string): Promise<AccessToken> {
    if (this.current.state === 'invalid') throw new RelayError('TOKEN_INVALID', this.current.reason);
    let result: AuthenticationResult | null;
    try {
      result = await this.requestToken();
    } catch (err) {
      if (err instanceof RelayError) throw err;
      return this.onRefreshFailure(classifyIdentityError(err), err);
    }
    if (!result) throw new RelayError('TOKEN_NOT_ACQUIRED', this.name);
    this.log.info({ why, expiresAt: result.expiresOn?.toISOString(), tokenFingerprint: fingerprint(result.accessToken) }, 'access token refreshed');
    return this.onTokenObtained(result);
  }

  /** The token request for this flow; null when there is no sign-in to refresh from. */
  private async requestToken(): Promise<AuthenticationResult | null> {
    if (this.app instanceof ConfidentialClientApplication) {
      return this.app.acquireTokenByClientCredential({ scopes: [...appOnlyScopes], skipCache: true });
    }
    const account = await this.findAccount();
    if (!account) return null;
    // forceRefresh: MSAL's own margin is 5 minutes; ours (≥ 10) is stricter, so we decide, MSAL obeys.
    return this.app.acquireTokenSilent({ account, scopes: [...delegatedScopes], forceRefresh: true });
  }

  private async onTokenObtained(result: AuthenticationResult): Promise<AccessToken> {
    const expiresAt = result.expiresOn ?? new Date(this.now() + 3600_000);
    this.cached = { token: result.accessToken, expiresAt, mailbox: this.mailbox };
    this.lastRefresh = new Date(this.now());
    this.backoffMs = 0;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.transition('token-obtained', { state: 'acquired', expiresAt: expiresAt.toISOString(), lastRefresh: this.lastRefresh.toISOString(), scopes: result.scopes });
    return this.cached;
  }

  private onRefreshFailure(failure: IdentityFailure, err: unknown): AccessToken {
    if (failure.class === 'grant') {
      this.log.error({ error: failure.error, aadsts: failure.aadsts }, `token is invalid: ${failure.reason}`);
      this.cached = null;
      this.transition('grant-rejected', { state: 'invalid', reason: failure.reason, since: new Date(this.now()).toISOString() });
      throw new RelayError('TOKEN_INVALID', failure.reason, { cause: err });
    }
    this.scheduleRetry();
    this.emit('refreshFailedTransient', this.name);
    this.log.warn({ ...errorFields(err), retryInMs: this.backoffMs }, `token refresh failed, token kept: ${failure.reason}`);
    // Still inside its lifetime: serve it (Exchange accepts it until exp) rather than fail the device.
    if (this.cached && this.cached.expiresAt.getTime() > this.now() + 30_000) return this.cached;
    throw new RelayError('TOKEN_REFRESH_FAILED', failure.reason, { cause: err });
  }

  private scheduleRetry(): void {
    const { retryInitialSeconds, retryMaxSeconds } = this.opts.settings;
    this.backoffMs = Math.min(retryMaxSeconds * 1000, this.backoffMs === 0 ? retryInitialSeconds * 1000 : this.backoffMs * 2);
    if (this.retryTimer || this.current.state !== 'acquired') return;
    const jitter = 0.8 + Math.random() * 0.4;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.refresh('retry').catch(() => undefined);
    }, this.backoffMs * jitter);
    this.retryTimer.unref();
  }

  private async keepAlive(): Promise<void> {
    if (this.current.state !== 'acquired') return;
    const idleMs = this.now() - (this.lastRefresh?.getTime() ?? 0);
    if (idleMs < this.opts.settings.keepAliveDays * 86_400_000) return;
    await this.refresh('keep-alive').catch(() => undefined);
  }

  /** Starts a device-code sign-in (any public-client account; `flow` only picks the default); resolves once the code is published (see `state`), completion arrives as events. */
  async startDeviceCode(): Promise<DeviceCodePrompt> {
    if (this.isAppOnly) throw new RelayError('FLOW_NOT_SUPPORTED', `account ${this.name} uses client-credentials: no one signs in`);
    return this.signIn.deviceCode({
      onPrompt: (p) => this.transition('sign-in-started', { state: 'waiting-authorization', userCode: p.userCode, verificationUri: p.verificationUri, expiresAt: p.expiresAt.toISOString(), message: p.message }),
      onResult: (r) => this.onTokenObtained(r).catch((err) => this.log.error(errorFields(err), 'could not keep the new token')),
      onFailure: (f) => this.onSignInFailure(f),
    });
  }

  /** Starts a browser sign-in (PKCE, loopback redirect): `openBrowser` receives the URL to show the admin. */
  async startBrowser(openBrowser: (url: string) => Promise<void>): Promise<AccessToken> {
    if (this.isAppOnly) throw new RelayError('FLOW_NOT_SUPPORTED', `account ${this.name} uses client-credentials: no one signs in`);
    const result = await this.signIn.browser({
      redirectPort: this.opts.account.redirectPort,
      loginHint: this.mailbox,
      openBrowser: async (url) => {
        this.transition('sign-in-started', { state: 'waiting-authorization', userCode: null, verificationUri: url, expiresAt: new Date(this.now() + 15 * 60_000).toISOString(), message: 'open the link and sign in as the mailbox owner' });
        await openBrowser(url);
      },
      onFailure: (f) => this.onSignInFailure(f),
    });
    return this.onTokenObtained(result);
  }

  /** Client credentials: the first token request is the sign-in. */
  async acquireAppOnly(): Promise<AccessToken> {
    if (!this.isAppOnly) throw new RelayError('FLOW_NOT_SUPPORTED', `account ${this.name} uses flow ${this.flow}`);
    if (this.current.state === 'invalid') this.setState({ state: 'not-acquired' }, true); // the operator fixed the secret: try again
    return this.refresh('expiry');
  }

  private onSignInFailure(failure: IdentityFailure): void {
    this.lastSignInFailure = failure.reason;
    this.log.warn({ error: failure.error, aadsts: failure.aadsts }, `sign-in ended without a token: ${failure.reason}`);
    if (failure.class === 'grant') this.transition('grant-rejected', { state: 'invalid', reason: failure.reason, since: new Date(this.now()).toISOString() });
    else this.transition('sign-in-ended-without-token', this.previousStateRestored());
  }

  private previousStateRestored(): TokenState {
    if (this.previousName === 'acquired' && this.cached) return { state: 'acquired', expiresAt: this.cached.expiresAt.toISOString(), lastRefresh: this.lastRefresh?.toISOString() ?? '', scopes: [] };
    return { state: 'not-acquired' };
  }

  /** Deletes the token (store and memory): the state goes back to *not acquired*. */
  async logout(): Promise<void> {
    this.signIn.cancel();
    await this.opts.store.remove(this.name);
    this.cached = null;
    this.lastRefresh = null;
    this.app = this.opts.createApp();
    this.transition('token-deleted', { state: 'not-acquired' });
    this.log.info('token deleted');
  }

  private transition(event: TokenEvent, target: TokenState): void {
    const name = nextStateName(this.current.state, event, this.previousName);
    if (name === null) {
      this.log.warn({ event, from: this.current.state }, 'ignored token event not allowed in this state');
      return;
    }
    this.setState(name === target.state ? target : this.previousStateRestored(), true);
  }

  private setState(next: TokenState, persist: boolean): void {
    const changed = JSON.stringify(next) !== JSON.stringify(this.current);
    if (next.state !== this.current.state) this.previousName = this.current.state;
    this.current = next;
    if (persist) {
      const lastRefresh = this.lastRefresh?.toISOString() ?? null;
      this.writes = this.writes
        .then(() => this.opts.stateFile.write(this.name, next, lastRefresh))
        .catch((err) => this.log.error(errorFields(err), 'could not write the account state file'));
    }
    if (changed) this.emit('state', next, this.name);
  }
}

function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
