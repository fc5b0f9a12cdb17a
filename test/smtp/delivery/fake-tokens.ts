/**
 * A stand-in for the token services (tested on their own elsewhere): hands out `tok-1`, `tok-2`, … and
 * counts the calls. A test sets an account's state; any state but 'acquired' makes accessTokenFor throw what
 * the real token service throws.
 */
import { accountTokens, type AccountTokens, type TokenProvider, type TokenStates } from '../../../src/auth/account-tokens.js';
import type { AccessToken } from '../../../src/auth/token-service.js';
import type { TokenStateName } from '../../../src/auth/token-state.js';
import { RelayError } from '../../../src/errors.js';

/** The fake stands for the provider underneath; the refresh-once rule on top is the product's own (accountTokens). */
export class FakeTokens implements TokenProvider, TokenStates, AccountTokens {
  issued = 0;
  /** accessTokenFor calls (delivery asks once per new upstream connection, not per message). */
  requests = 0;
  /** Life of a minted token; tokens are re-minted when less than `refreshAheadMs` of it is left (as the token service refreshes ahead). */
  lifetimeMs = 3600_000;
  refreshAheadMs = 0;
  private readonly expiry = new Map<string, number>();
  readonly rejectedTokens: string[] = [];
  /** Set to make the next accessTokenFor calls fail with TOKEN_REFRESH_FAILED (network trouble). */
  refreshFails = false;
  private current = new Map<string, string>();
  private readonly states = new Map<string, TokenStateName>();
  private readonly listeners = new Set<(account: string, state: TokenStateName) => void>();

  constructor(private readonly defaultState: TokenStateName = 'acquired') {}

  readonly withAccessToken: AccountTokens['withAccessToken'] = (account, use) => accountTokens(this).withAccessToken(account, use);

  async accessTokenFor(account: string): Promise<AccessToken> {
    const state = this.stateOf(account);
    if (state === 'invalid') throw new RelayError('TOKEN_INVALID', `${account}: refresh refused`);
    if (state !== 'acquired') throw new RelayError('TOKEN_NOT_ACQUIRED', account);
    if (this.refreshFails) throw new RelayError('TOKEN_REFRESH_FAILED', 'network down');
    this.requests += 1;
    const current = this.current.get(account);
    if (current && (this.expiry.get(current) ?? 0) - Date.now() > this.refreshAheadMs) return this.shaped(current);
    return this.shaped(this.mint(account));
  }

  async tokenRejected(account: string, token: string): Promise<AccessToken> {
    this.rejectedTokens.push(token);
    if (this.current.get(account) !== token) return this.shaped(this.current.get(account) ?? this.mint(account));
    return this.shaped(this.mint(account));
  }

  private shaped(token: string): AccessToken {
    return { token, expiresAt: new Date(this.expiry.get(token) ?? Date.now() + this.lifetimeMs), mailbox: 'fake@mailbox.test' };
  }

  stateOf(account: string): TokenStateName {
    return this.states.get(account) ?? this.defaultState;
  }

  onStateChange(listener: (account: string, state: TokenStateName) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Changes an account's state and tells the listeners, as the token service's 'state' event does. */
  setState(account: string, state: TokenStateName): void {
    this.states.set(account, state);
    for (const listener of this.listeners) listener(account, state);
  }

  private mint(account: string): string {
    this.issued += 1;
    const token = `tok-${this.issued}`;
    this.current.set(account, token);
    this.expiry.set(token, Date.now() + this.lifetimeMs);
    return token;
  }
}
