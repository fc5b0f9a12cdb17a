/**
 * The one owner of an account's token. Protocol code asks for "a valid token now" and nothing else; this class
 * decides where it comes from and tells the truth about the account:
 *   - a token with more than refreshBeforeExpirySeconds left is served at once; one with less (but never less
 *     than 5 minutes: Exchange's HVE endpoint refuses such tokens) is served while one refresh runs behind it;
 *   - a caller waits only when no usable token exists, for MSAL's cache (no network) and then for at most
 *     maxWaitSeconds of one shared refresh; during a back-off after an identity-platform failure it does not
 *     wait at all (devices get "try again later" at once);
 *   - only the answers identity-errors.ts calls `grant` make the account *invalid*; "no token stored" makes it
 *     *not acquired*; a token file it cannot open makes this account alone *invalid*;
 *   - a sign-in started on a working account leaves it *acquired*, and its failure ends only the attempt;
 *   - a Delete token (here or in another process) raises the account's generation: results of operations that
 *     began before it are discarded, never written back.
 */
import { EventEmitter } from 'node:events';
import type { AccountInfo, AuthenticationResult } from '@azure/msal-node';
import { ConfidentialClientApplication } from '@azure/msal-node';
import type { AccountConfig, Config } from '../config/schema.js';
import { RelayError, isRelayError } from '../errors.js';
import { errorFields, fingerprint, type Logger } from '../log.js';
import { identityCalls, type IdentityCall } from './identity-call.js';
import { classifyIdentityError, type IdentityFailure } from './identity-errors.js';
import { storedAccessToken } from './msal-cache-view.js';
import type { MsalApp } from './msal-app.js';
import { appOnlyScopes, delegatedScopes } from './scopes.js';
import { SignIn, type DeviceCodePrompt } from './sign-in.js';
import type { AccountRecords } from './store/account-records.js';
import type { TokenStore } from './store/token-store.js';
import { nextStateName, type PendingSignIn, type TokenEvent, type TokenState, type TokenStateName } from './token-state.js';
import { describeStoreFailure, isStoreFailure, withDeadline } from './token-service-support.js';

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
  records: AccountRecords;
  logger: Logger;
  /** The identity host, named in failure reasons. */
  identityHost?: string;
  now?: () => number;
}

/** Exchange refuses tokens close to expiry (HVE: `501 5.5.127`); none with less left is ever handed out. */
export const MIN_PRESENTED_LIFETIME_MS = 5 * 60_000;

type RefreshReason = 'expiry' | 'rejected' | 'keep-alive' | 'retry';

/** 'state': every change of the shown state; 'refreshFailedTransient': a refresh failed for a passing reason. */
export class TokenService extends EventEmitter<{ state: [TokenState, string]; refreshFailedTransient: [string] }> {
  readonly name: string;
  readonly mailbox: string;
  private app: MsalApp;
  private current: TokenState = { state: 'not-acquired' };
  /** What to go back to when a sign-in ends without a token. */
  private beforeSignIn: TokenState = { state: 'not-acquired' };
  private cached: AccessToken | null = null;
  private inflight: Promise<AccessToken> | null = null;
  private inflightSince = 0;
  /** The last token an upstream refused: never taken from the store again (a peer's refresh replaces it). */
  private refused: string | null = null;
  private lastRefresh: Date | null = null;
  private generation = 0;
  private backoffMs = 0;
  private backoffUntil = 0;
  private lastTransient: IdentityFailure | null = null;
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
    this.signIn = new SignIn(() => this.app, delegatedScopes, this.log, (err) => this.classify(err));
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

  /** The account's configuration (a reload compares it to decide whether the service must be rebuilt). */
  get account(): AccountConfig {
    return this.opts.account;
  }

  /** Restores the shown state from disk (no network), and starts the keep-alive timer. Never throws. */
  async start(): Promise<void> {
    await this.reloadFromDisk();
    const interval = Math.max(60_000, (this.opts.settings.keepAliveDays * 86_400_000) / 24);
    this.keepAliveTimer = setInterval(() => this.keepAlive(), Math.min(interval, 2 ** 31 - 1));
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

  /** Re-reads the shared record; another process (CLI login/logout) may have changed it. Never throws. */
  async reloadFromDisk(): Promise<void> {
    try {
      await this.reload();
    } catch (err) {
      if (isStoreFailure(err)) return this.onStoreUnreadable(err);
      this.log.error(errorFields(err), 'could not read the account state: the shown state is kept');
    }
  }

  private async reload(): Promise<void> {
    const record = await this.opts.records.read(this.name);
    const hasToken = await this.hasStoredToken();
    if (record && record.generation !== this.generation) {
      this.generation = record.generation;
      this.cached = null; // a Delete token happened elsewhere: nothing from before it is served
      this.app = this.opts.createApp();
    }
    if (record?.lastRefresh) this.lastRefresh = new Date(record.lastRefresh);
    const acquired = (signIn: PendingSignIn | null = null): TokenState => ({ state: 'acquired', expiresAt: this.cached?.expiresAt.toISOString() ?? null, lastRefresh: this.lastRefresh?.toISOString() ?? '', scopes: [], signIn });
    let next: TokenState = record?.token ?? (hasToken ? acquired() : { state: 'not-acquired' });
    if (next.state === 'acquired' && !hasToken) next = { state: 'not-acquired' };
    // A waiting sign-in is real only while the process polling for it lives (this one, or a CLI `login`).
    const poller = record?.writer ?? 0;
    const polling = poller === this.opts.records.self ? this.signIn.active : await this.opts.records.writerAlive(poller);
    if (next.state === 'waiting-authorization' && (!polling || Date.parse(next.expiresAt) < this.now())) next = hasToken ? acquired() : { state: 'not-acquired' };
    if (next.state === 'acquired' && next.signIn && (!polling || Date.parse(next.signIn.expiresAt) < this.now())) next = { ...next, signIn: null };
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
   * A token with at least 5 minutes left (see the file comment for where it comes from). Concurrent callers share
   * one refresh. Throws RelayError TOKEN_NOT_ACQUIRED / TOKEN_INVALID / TOKEN_REFRESH_FAILED.
   */
  async accessToken(): Promise<AccessToken> {
    const left = this.cached ? this.cached.expiresAt.getTime() - this.now() : 0;
    if (this.cached && left > this.marginMs) return this.cached;
    if (this.current.state === 'invalid') throw new RelayError('TOKEN_INVALID', this.current.reason);
    if (this.cached && left > MIN_PRESENTED_LIFETIME_MS) {
      this.refreshBehind();
      return this.cached;
    }
    const waitMs = this.opts.settings.maxWaitSeconds * 1000;
    const late = () => new RelayError('TOKEN_REFRESH_FAILED', `the identity platform${this.opts.identityHost ? ` (${this.opts.identityHost})` : ''} has not answered for ${Math.round((this.now() - this.inflightSince) / 1000)} s; the refresh goes on in the background`);
    // A refresh already older than the wait tells enough: a platform that slow is not waited for again.
    if (this.inflight && this.now() - this.inflightSince > waitMs) throw late();
    return withDeadline(this.refresh('expiry'), waitMs, late);
  }

  /** After an upstream refused `token`: one forced refresh (shared by everyone who saw the same token refused). */
  async tokenRejected(token: string): Promise<AccessToken> {
    if (this.cached && this.cached.token !== token) return this.cached; // somebody already refreshed past it
    this.log.warn({ tokenFingerprint: fingerprint(token) }, 'upstream rejected the access token: refreshing once');
    this.cached = null;
    this.refused = token;
    return this.refresh('rejected');
  }

  /** A failure read with what this operation's context saw (HTTP status, network cause) and the identity host. */
  private classify(err: unknown): IdentityFailure {
    const call = identityCalls.getStore();
    return classifyIdentityError(err, { httpStatus: call?.httpStatus ?? null, networkFailure: call?.networkFailure ?? null, errorCodes: call?.errorCodes ?? null, ...(this.opts.identityHost ? { host: this.opts.identityHost } : {}) });
  }

  private get marginMs(): number {
    return this.opts.settings.refreshBeforeExpirySeconds * 1000;
  }

  private refreshBehind(): void {
    if (this.inflight || this.now() < this.backoffUntil) return;
    // Failures are logged, counted and scheduled for retry inside; the caller already has its token.
    this.refresh('expiry').catch(() => undefined);
  }

  private refresh(why: RefreshReason): Promise<AccessToken> {
    if (!this.inflight) this.inflightSince = this.now();
    this.inflight ??= this.obtain(why).finally(() => {
      this.inflight = null;
    });
    return this.inflight;
  }

  private async obtain(why: RefreshReason): Promise<AccessToken> {
    let record;
    try {
      record = await this.opts.records.read(this.name);
    } catch (err) {
      if (isRelayError(err, 'STORE_UNREACHABLE')) return this.onStoreUnreachable(err);
      throw err;
    }
    if ((record?.generation ?? 0) !== this.generation) await this.reloadFromDisk();
    if (this.current.state === 'invalid') throw new RelayError('TOKEN_INVALID', this.current.reason);
    const call: IdentityCall = { generation: this.generation, httpStatus: null, fenced: false };
    return identityCalls.run(call, async () => {
      try {
        return await this.obtainInContext(why, call);
      } catch (err) {
        if (isRelayError(err, 'STORE_UNREACHABLE')) return this.onStoreUnreachable(err);
        if (isRelayError(err)) {
          if (isStoreFailure(err)) this.onStoreUnreadable(err);
          throw err;
        }
        return this.onRefreshFailure(this.classify(err), err);
      }
    });
  }

  private async obtainInContext(why: RefreshReason, call: IdentityCall): Promise<AccessToken> {
    // 1. MSAL's cache, no network: after a start, a sign-in or another process's refresh it usually has a fresh one.
    if (why === 'expiry' || why === 'retry') {
      const stored = await this.storedToken();
      const usable = stored && stored.token !== this.refused ? stored : null;
      if (usable && usable.expiresAt.getTime() - this.now() > this.marginMs) return this.accept(usable, null);
      if (usable && usable.expiresAt.getTime() - this.now() > MIN_PRESENTED_LIFETIME_MS) this.cached = usable;
    }
    // 2. The identity platform, unless it failed a moment ago: then the retry timer asks, not every caller.
    if (why !== 'retry' && this.now() < this.backoffUntil && this.lastTransient) {
      if (this.cached && this.cached.expiresAt.getTime() - this.now() > MIN_PRESENTED_LIFETIME_MS) return this.cached;
      throw new RelayError('TOKEN_REFRESH_FAILED', `${this.lastTransient.reason}; ${this.keptWords()}, next try in ${Math.ceil((this.backoffUntil - this.now()) / 1000)} s`);
    }
    // 3. One refresh for everyone on the store: without the lease, another process or instance is refreshing
    //    right now, and its token arrives in the store.
    const lease = await this.opts.records.tryLease(this.name, this.opts.settings.requestTimeoutSeconds * 1000 + 5_000);
    if (!lease) return this.awaitPeerRefresh();
    let result: AuthenticationResult | null;
    try {
      // The holder before us may have finished just now: its token is in the store.
      const stored = await this.storedToken();
      if (stored && stored.token !== this.refused && stored.expiresAt.getTime() - this.now() > this.marginMs) return this.accept(stored, null);
      result = await this.requestToken();
    } finally {
      await lease();
    }
    if (!result) return this.onRefreshFailure({ class: 'absent', reason: 'no token is stored for this account: sign in', error: 'no_tokens_found', aadsts: null }, null);
    if (call.fenced || ((await this.opts.records.read(this.name))?.generation ?? 0) !== call.generation) {
      this.log.info({ why }, 'a token request that began before Delete token finished: its result is discarded');
      await this.reloadFromDisk();
      throw new RelayError('TOKEN_NOT_ACQUIRED', `${this.name}: the token was deleted`);
    }
    this.log.info({ why, expiresAt: result.expiresOn?.toISOString(), tokenFingerprint: fingerprint(result.accessToken) }, 'access token refreshed');
    return this.accept({ token: result.accessToken, expiresAt: result.expiresOn ?? new Date(this.now() + 3600_000), mailbox: this.mailbox }, result.scopes);
  }

  /** Another process or instance holds the refresh lease: its token appears in the store; wait for it, bounded. */
  private async awaitPeerRefresh(): Promise<AccessToken> {
    const until = this.now() + this.opts.settings.requestTimeoutSeconds * 1000 + 5_000;
    while (this.now() < until) {
      await new Promise((r) => setTimeout(r, 100));
      const stored = await this.storedToken();
      if (stored && stored.token !== this.refused && stored.expiresAt.getTime() - this.now() > this.marginMs) return this.accept(stored, null);
      if (this.current.state !== 'acquired') throw new RelayError('TOKEN_NOT_ACQUIRED', this.name);
    }
    throw new RelayError('TOKEN_REFRESH_FAILED', 'another relay instance is refreshing this token and has not finished; try again');
  }

  /** The access token in MSAL's (re-read) cache for this account, without any network request. */
  private async storedToken(): Promise<AccessToken | null> {
    const account = this.isAppOnly ? null : await this.findAccount();
    if (!this.isAppOnly && !account) return null;
    if (this.isAppOnly) await this.app.getTokenCache().getAllAccounts(); // loads the store into MSAL's memory
    const found = storedAccessToken(this.app.getTokenCache().serialize(), { homeAccountId: account?.homeAccountId ?? '', scope: this.isAppOnly ? appOnlyScopes[0]! : delegatedScopes[0]! });
    return found ? { token: found.secret, expiresAt: found.expiresAt, mailbox: this.mailbox } : null;
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

  /**
   * Keeps a token that came from the cache (`scopes` null), a refresh, or a sign-in (`fromSignIn`): only a
   * sign-in ends a waiting sign-in; a refresh leaves a pending re-sign-in shown.
   */
  private accept(token: AccessToken, scopes: string[] | null, fromSignIn = false): AccessToken {
    this.cached = token;
    this.backoffMs = 0;
    this.backoffUntil = 0;
    this.lastTransient = null;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (scopes) this.lastRefresh = new Date(this.now());
    if (this.current.state === 'waiting-authorization' && !fromSignIn) return token;
    const signIn = !fromSignIn && this.current.state === 'acquired' ? this.current.signIn ?? null : null;
    const known = this.current.state === 'acquired' ? this.current.scopes : [];
    this.transition('token-obtained', { state: 'acquired', expiresAt: token.expiresAt.toISOString(), lastRefresh: this.lastRefresh?.toISOString() ?? '', scopes: scopes ?? known, signIn });
    return token;
  }

  private onRefreshFailure(failure: IdentityFailure, err: unknown): AccessToken {
    if (failure.class === 'grant') {
      this.log.error({ error: failure.error, aadsts: failure.aadsts }, `token is invalid: ${failure.reason}`);
      this.cached = null;
      this.transition('grant-rejected', { state: 'invalid', reason: failure.reason, since: new Date(this.now()).toISOString() });
      throw new RelayError('TOKEN_INVALID', failure.reason, { cause: err });
    }
    if (failure.class === 'absent') {
      this.log.info('no token is stored for this account (deleted, or never signed in): not acquired');
      this.cached = null;
      this.transition('token-missing', { state: 'not-acquired' });
      throw new RelayError('TOKEN_NOT_ACQUIRED', this.name, { cause: err });
    }
    this.lastTransient = failure;
    this.scheduleRetry();
    this.emit('refreshFailedTransient', this.name);
    this.log.warn({ ...errorFields(err), error: failure.error, httpError: failure.aadsts, retryInMs: this.backoffMs }, `token refresh failed: ${failure.reason}; ${this.keptWords()}`);
    // Still inside its lifetime: serve it (Exchange accepts it until exp) rather than fail the device.
    if (this.cached && this.cached.expiresAt.getTime() - this.now() > MIN_PRESENTED_LIFETIME_MS) return this.cached;
    throw new RelayError('TOKEN_REFRESH_FAILED', `${failure.reason}; ${this.keptWords()}`, { cause: err });
  }

  /** What is true about the token after a passing failure, in words (issue: never claim a token that is not there). */
  private keptWords(): string {
    if (this.current.state !== 'acquired') return 'no token was lost (there was none yet)';
    return `the stored token is kept and retried with back-off (${Math.round(this.backoffMs / 1000)} s)`;
  }

  private scheduleRetry(): void {
    const { retryInitialSeconds, retryMaxSeconds } = this.opts.settings;
    this.backoffMs = Math.min(retryMaxSeconds * 1000, this.backoffMs === 0 ? retryInitialSeconds * 1000 : this.backoffMs * 2);
    const jittered = this.backoffMs * (0.8 + Math.random() * 0.4);
    this.backoffUntil = this.now() + jittered;
    if (this.retryTimer || this.current.state !== 'acquired') return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.refresh('retry').catch(() => undefined); // logged inside; the next failure schedules the next retry
    }, jittered);
    this.retryTimer.unref();
  }

  private keepAlive(): void {
    if (this.current.state !== 'acquired') return;
    const idleMs = this.now() - (this.lastRefresh?.getTime() ?? 0);
    if (idleMs < this.opts.settings.keepAliveDays * 86_400_000 || this.now() < this.backoffUntil) return;
    this.refresh('keep-alive').catch(() => undefined);
  }

  /** Starts a device-code sign-in (any public-client account); resolves once the code is published (see `state`). */
  async startDeviceCode(): Promise<DeviceCodePrompt> {
    if (this.isAppOnly) throw new RelayError('FLOW_NOT_SUPPORTED', `account ${this.name} uses client-credentials: no one signs in`);
    const call: IdentityCall = { generation: this.generation, httpStatus: null, fenced: false };
    return identityCalls.run(call, () =>
      this.signIn.deviceCode({
        onPrompt: (p) => this.signInStarted({ userCode: p.userCode, verificationUri: p.verificationUri, expiresAt: p.expiresAt.toISOString(), message: p.message }),
        onResult: async (r) => this.signInSucceeded(r, call),
        onFailure: (f) => this.onSignInFailure(f),
      }),
    );
  }

  /** Starts a browser sign-in (PKCE, loopback redirect): `openBrowser` receives the URL to show the admin. */
  async startBrowser(openBrowser: (url: string) => Promise<void>): Promise<AccessToken> {
    if (this.isAppOnly) throw new RelayError('FLOW_NOT_SUPPORTED', `account ${this.name} uses client-credentials: no one signs in`);
    const call: IdentityCall = { generation: this.generation, httpStatus: null, fenced: false };
    const result = await identityCalls.run(call, () =>
      this.signIn.browser({
        redirectPort: this.opts.account.redirectPort,
        loginHint: this.mailbox,
        openBrowser: async (url) => {
          this.signInStarted({ userCode: null, verificationUri: url, expiresAt: new Date(this.now() + 15 * 60_000).toISOString(), message: 'open the link and sign in as the mailbox owner' });
          await openBrowser(url);
        },
        onFailure: (f) => this.onSignInFailure(f),
      }),
    );
    const token = await this.signInSucceeded(result, call);
    if (!token) throw new RelayError('TOKEN_NOT_ACQUIRED', `${this.name}: the token was deleted while the sign-in ran`);
    return token;
  }

  /** Client credentials: the first token request is the sign-in. */
  async acquireAppOnly(): Promise<AccessToken> {
    if (!this.isAppOnly) throw new RelayError('FLOW_NOT_SUPPORTED', `account ${this.name} uses flow ${this.flow}`);
    if (this.current.state === 'invalid') this.setState({ state: 'not-acquired' }, true); // the operator fixed the secret: try again
    this.backoffUntil = 0; // a person asked: try now
    return this.refresh('rejected');
  }

  private signInStarted(prompt: PendingSignIn): void {
    this.lastSignInFailure = null;
    if (this.current.state !== 'waiting-authorization' && !(this.current.state === 'acquired' && this.current.signIn)) this.beforeSignIn = this.current;
    if (this.current.state === 'acquired') this.transition('sign-in-started', { ...this.current, signIn: prompt });
    else this.transition('sign-in-started', { state: 'waiting-authorization', ...prompt });
  }

  private async signInSucceeded(result: AuthenticationResult, call: IdentityCall): Promise<AccessToken | null> {
    if (call.fenced) {
      this.log.info('a sign-in that began before Delete token finished: its token is discarded');
      await this.reloadFromDisk();
      return null;
    }
    this.log.info({ expiresAt: result.expiresOn?.toISOString(), tokenFingerprint: fingerprint(result.accessToken) }, 'signed in');
    return this.accept({ token: result.accessToken, expiresAt: result.expiresOn ?? new Date(this.now() + 3600_000), mailbox: this.mailbox }, result.scopes, true);
  }

  private onSignInFailure(failure: IdentityFailure): void {
    this.lastSignInFailure = failure.reason;
    this.log.warn({ error: failure.error, aadsts: failure.aadsts }, `sign-in ended without a token: ${failure.reason}`);
    if (this.current.state === 'acquired') {
      this.transition('sign-in-ended-without-token', { ...this.current, signIn: null }); // the working token stays
      return;
    }
    if (failure.class === 'grant') this.transition('grant-rejected', { state: 'invalid', reason: failure.reason, since: new Date(this.now()).toISOString() });
    else this.transition('sign-in-ended-without-token', this.beforeSignIn.state === 'waiting-authorization' ? { state: 'not-acquired' } : this.beforeSignIn);
  }

  /** Deletes the token (store and memory, here and for every process on the state directory): *not acquired*. */
  async logout(): Promise<void> {
    this.signIn.cancel();
    const written = await this.opts.records.update(this.name, async (record) => {
      await this.opts.store.remove(this.name);
      return { token: { state: 'not-acquired' }, lastRefresh: null, generation: (record?.generation ?? 0) + 1, updatedAt: '', writer: 0 };
    });
    this.generation = written?.generation ?? this.generation + 1;
    this.cached = null;
    this.lastRefresh = null;
    this.backoffMs = this.backoffUntil = 0;
    this.lastTransient = null;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.app = this.opts.createApp();
    this.setState({ state: 'not-acquired' }, false); // written above, with the new generation
    this.log.info({ generation: this.generation }, 'token deleted');
  }

  /** The shared store (Redis) is away: keep serving what is held, retry with back-off, change no state. */
  private onStoreUnreachable(err: RelayError): AccessToken {
    const failure: IdentityFailure = { class: 'transient', reason: `the token store cannot be reached (${err.detail ?? err.message})`, error: 'store_unreachable', aadsts: null };
    return this.onRefreshFailure(failure, err);
  }

  private onStoreUnreadable(err: RelayError): void {
    const reason = describeStoreFailure(err);
    if (this.current.state === 'invalid' && this.current.reason === reason) return;
    this.log.error({ ...errorFields(err), code: 'TOKEN_STORE_UNREADABLE' }, reason);
    this.cached = null;
    // Not persisted: it is derived from the file each time, so a fixed file works again after a restart.
    this.applyEvent('store-unreadable', { state: 'invalid', reason, since: new Date(this.now()).toISOString() }, false);
  }

  private transition(event: TokenEvent, target: TokenState): void {
    this.applyEvent(event, target, true);
  }

  private applyEvent(event: TokenEvent, target: TokenState, persist: boolean): void {
    const name: TokenStateName | null = nextStateName(this.current.state, event, this.beforeSignIn.state);
    if (name === null) {
      this.log.warn({ event, from: this.current.state }, 'ignored token event not allowed in this state');
      return;
    }
    if (name === target.state) this.setState(target, persist);
    else if (name !== this.current.state) this.setState(this.beforeSignIn, persist); // 'previous'
    // else: the table keeps the state as it is (a delivery finding no token while a sign-in waits changes nothing)
  }

  private setState(next: TokenState, persist: boolean): void {
    const changed = JSON.stringify(next) !== JSON.stringify(this.current);
    this.current = next;
    if (persist) {
      const lastRefresh = this.lastRefresh?.toISOString() ?? null;
      const generation = this.generation;
      this.writes = this.writes
        .then(async () => {
          // Written only while no Delete token happened since: a late result never undoes a newer one.
          const written = await this.opts.records.update(this.name, (record) => ((record?.generation ?? 0) !== generation ? null : { token: next, lastRefresh, generation, updatedAt: '', writer: 0 }));
          if (written && written.generation !== generation) await this.reloadFromDisk();
        })
        .catch((err: unknown) => this.log.error(errorFields(err), 'could not write the account state file'));
    }
    if (changed) this.emit('state', next, this.name);
  }
}
