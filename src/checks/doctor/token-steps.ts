/**
 * The doctor's first two steps: is there a token, and is it the token Exchange needs (audience, tenant,
 * delegated `scp` or app-only `roles`, whose it is) for each protocol the relay serves. The token comes through
 * the one interface (`withAccessToken`); its claims are read from the JWT itself (never verified here: Exchange
 * does that, the doctor only reads what the identity platform put in).
 */
import { decodeJwt, type JWTPayload } from 'jose';
import type { AccountTokens } from '../../auth/account-tokens.js';
import type { AccessToken } from '../../auth/token-service.js';
import type { TokenState } from '../../auth/token-state.js';
import type { AccountConfig, Config } from '../../config/schema.js';
import { isRelayError } from '../../errors.js';
import { failed, passed, type DoctorStep } from './findings.js';

/** What the next steps need to know about the token. */
export interface TokenFacts {
  token: AccessToken;
  claims: JWTPayload;
  kind: 'user' | 'app';
}

export interface TokenStepInput {
  account: string;
  config: AccountConfig;
  state: TokenState;
  /** The last failed sign-in's reason (the daemon keeps it; a CLI process has none). */
  lastSignInFailure: string | null;
  tokens: AccountTokens;
  /** Protocols the relay serves for devices: SMTP always, IMAP/POP3 when they have listeners. */
  protocols: Array<'smtp' | 'imap' | 'pop3'>;
}

const EXCHANGE_AUDIENCES = ['https://outlook.office.com', 'https://outlook.office365.com', '00000002-0000-0ff1-ce00-000000000000'];
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The delegated permission each protocol needs (docs/exchange-online.md §3). */
export const delegatedPermission = { smtp: 'SMTP.Send', imap: 'IMAP.AccessAsUser.All', pop3: 'POP.AccessAsUser.All' } as const;
/** The Exchange RBAC role (and Entra application permission) each protocol needs for app-only access. */
export const applicationRole = { smtp: 'SMTP.SendAsApp', imap: 'IMAP.AccessAsApp', pop3: 'POP.AccessAsApp' } as const;

/** The protocols a configuration serves devices on. */
export function servedProtocols(config: Config): Array<'smtp' | 'imap' | 'pop3'> {
  return ['smtp' as const, ...(config.imap.listen.length > 0 ? ['imap' as const] : []), ...(config.pop3.listen.length > 0 ? ['pop3' as const] : [])];
}

const isConditionalAccessBlock = (text: string | null | undefined) => /AADSTS53003|Conditional Access/i.test(text ?? '');

/** The token step; on success the facts for the claims step. */
export async function tokenStep(input: TokenStepInput): Promise<{ step: DoctorStep; facts: TokenFacts | null }> {
  const names = { account: input.account, mailbox: input.config.mailbox, app: input.config.clientId };
  const st = input.state;
  if (st.state === 'waiting-authorization') return { step: failed('token', 'DOCTOR_TOKEN_WAITING', `waiting for a sign-in with code ${st.userCode ?? '(browser)'} at ${st.verificationUri}`, names), facts: null };
  if (st.state === 'invalid') {
    const code = isConditionalAccessBlock(st.reason) ? 'DOCTOR_DEVICE_CODE_BLOCKED' : 'DOCTOR_TOKEN_INVALID';
    return { step: failed('token', code, `invalid since ${st.since}: ${st.reason}`, names), facts: null };
  }
  try {
    const token = await input.tokens.withAccessToken(input.account, (get) => get());
    const claims = decodeJwt(token.token);
    const kind = claims.idtyp === 'app' || (claims.roles !== undefined && claims.scp === undefined) ? 'app' : 'user';
    return { step: passed('token', `acquired; the access token is valid until ${token.expiresAt.toISOString()}`), facts: { token, claims, kind } };
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err);
    if (isConditionalAccessBlock(detail) || (st.state !== 'acquired' && isConditionalAccessBlock(input.lastSignInFailure))) {
      return { step: failed('token', 'DOCTOR_DEVICE_CODE_BLOCKED', input.lastSignInFailure ?? detail, names), facts: null };
    }
    if (isRelayError(err, 'TOKEN_NOT_ACQUIRED')) return { step: failed('token', 'DOCTOR_TOKEN_NOT_ACQUIRED', 'no token is stored for this account', names), facts: null };
    if (isRelayError(err, 'TOKEN_REFRESH_FAILED')) return { step: failed('token', 'DOCTOR_IDENTITY_UNREACHABLE', detail, names), facts: null };
    return { step: failed('token', 'DOCTOR_TOKEN_INVALID', detail, names), facts: null };
  }
}

const str = (v: unknown): string => (typeof v === 'string' ? v : Array.isArray(v) ? v.join(' ') : '');

/** Audience, tenant, and the permission each served protocol needs. */
export function claimsStep(input: TokenStepInput, facts: TokenFacts): DoctorStep {
  const c = facts.claims;
  const aud = str(c.aud).replace(/\/$/, '');
  const tid = str(c.tid);
  const who = facts.kind === 'app' ? `app ${str(c.appid) || str(c.azp)}` : `user ${str(c.upn) || str(c.preferred_username)}`;
  const grants = facts.kind === 'app' ? `roles ${str(c.roles) || '(none: RBAC for Applications decides)'}` : `scp ${str(c.scp) || '(none)'}`;
  const detail = `aud ${aud || '(none)'}, ${grants}, tid ${tid || '(none)'}, ${who}`;
  const names = { account: input.account, mailbox: input.config.mailbox, app: input.config.clientId };
  if (!EXCHANGE_AUDIENCES.includes(aud)) return failed('claims', 'DOCTOR_WRONG_AUDIENCE', detail, names);
  if (GUID.test(input.config.tenantId) && tid !== '' && tid.toLowerCase() !== input.config.tenantId.toLowerCase()) return failed('claims', 'DOCTOR_WRONG_TENANT', detail, names);
  if (facts.kind === 'user') {
    const scopes = str(c.scp).split(' ');
    const missing = input.protocols.map((p) => delegatedPermission[p]).filter((p) => !scopes.includes(p));
    if (missing.length > 0) return failed('claims', 'DOCTOR_SCOPE_MISSING', `${detail}; missing ${missing.join(', ')}`, { ...names, permission: missing.join(', ') });
    const user = (str(c.upn) || str(c.preferred_username)).toLowerCase();
    if (user !== '' && user !== input.config.mailbox.toLowerCase()) return failed('claims', 'DOCTOR_OTHER_USER', detail, { ...names, user });
  }
  // App-only: the token's roles do not decide (with RBAC for Applications Exchange reads the role assignments,
  // and Microsoft asks not to add the Entra SMTP.SendAsApp permission); the protocol steps find a missing one.
  return passed('claims', detail);
}
