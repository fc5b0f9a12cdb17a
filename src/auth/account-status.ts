/**
 * One account's token state as people read it, shared by `xoauth2-relay status` and the admin page (so both say
 * the same thing). A sign-in waiting for a person shows its code whether the account is *waiting for
 * authorization* or still *acquired* with a working token.
 */
import type { TokenService } from './token-service.js';

export interface AccountStatus {
  account: string;
  mailbox: string;
  flow: TokenService['flow'];
  state: TokenService['state']['state'];
  /** Access-token expiry when acquired; the device code's expiry while waiting. */
  expiresAt: string | null;
  lastRefresh: string | null;
  reason: string | null;
  /** The code and link of a sign-in waiting for a person (also on an acquired account being signed in again). */
  userCode: string | null;
  verificationUri: string | null;
  signInExpiresAt: string | null;
}

export function accountStatus(s: Pick<TokenService, 'name' | 'mailbox' | 'flow' | 'state' | 'lastRefreshAt'>): AccountStatus {
  const st = s.state;
  const pending = st.state === 'waiting-authorization' ? st : st.state === 'acquired' ? st.signIn ?? null : null;
  return {
    account: s.name,
    mailbox: s.mailbox,
    flow: s.flow,
    state: st.state,
    expiresAt: st.state === 'acquired' ? st.expiresAt : st.state === 'waiting-authorization' ? st.expiresAt : null,
    lastRefresh: s.lastRefreshAt?.toISOString() ?? null,
    reason: st.state === 'invalid' ? st.reason : null,
    userCode: pending?.userCode ?? null,
    verificationUri: pending?.verificationUri ?? null,
    signInExpiresAt: pending?.expiresAt ?? null,
  };
}
