/**
 * The POP3 front's states before login and the commands each allows, as data (RFC 1939 §4 AUTHORIZATION state,
 * RFC 2449 CAPA, RFC 5034 AUTH, RFC 2595 STLS). A plain connection on a starttls or auto listener starts in
 * `tls-required` (USER, PASS and AUTH wait for STLS; see login-tls-rule.ts), or in `tls-offered` where the listener
 * says `loginBeforeTls: allow`; `none` listeners and TLS connections start in `authorization`; USER leads to
 * `user-given`, where PASS is accepted. `done` ends the front: QUIT, closed, or spliced to the upstream.
 */
import type { PlainLogin } from '../transport/login-tls-rule.js';

export type Pop3State = 'tls-required' | 'tls-offered' | 'authorization' | 'user-given' | 'done';
export type ReadingState = Exclude<Pop3State, 'done'>;

export const pop3Commands = ['CAPA', 'STLS', 'USER', 'PASS', 'AUTH', 'APOP', 'QUIT', 'NOOP'] as const;
export type Pop3CommandName = (typeof pop3Commands)[number];

export interface Pop3StateRules {
  allowed: readonly Pop3CommandName[];
  /** Refused until the connection is TLS (`-ERR [AUTH] Use STLS …`). */
  needTls: readonly Pop3CommandName[];
  /** CAPA lines in this state (RFC 2449 §5). */
  capabilities: readonly string[];
}

// TOP and UIDL are Exchange's and Dovecot's after login; some devices decide from the pre-login CAPA alone.
const common = ['RESP-CODES', 'AUTH-RESP-CODE', 'TOP', 'UIDL', 'IMPLEMENTATION xoauth2-relay'];
const loginCapabilities = ['USER', 'SASL PLAIN LOGIN', ...common];

export const pop3States: Record<ReadingState, Pop3StateRules> = {
  'tls-required': {
    allowed: ['CAPA', 'STLS', 'APOP', 'QUIT', 'NOOP'],
    needTls: ['USER', 'PASS', 'AUTH'],
    capabilities: ['STLS', ...common],
  },
  'tls-offered': {
    allowed: ['CAPA', 'STLS', 'USER', 'AUTH', 'APOP', 'QUIT', 'NOOP'],
    needTls: [],
    capabilities: ['STLS', ...loginCapabilities],
  },
  authorization: {
    allowed: ['CAPA', 'USER', 'AUTH', 'APOP', 'QUIT', 'NOOP'],
    needTls: [],
    capabilities: loginCapabilities,
  },
  'user-given': {
    allowed: ['CAPA', 'USER', 'PASS', 'AUTH', 'APOP', 'QUIT', 'NOOP'],
    needTls: [],
    capabilities: loginCapabilities,
  },
};

export function initialPop3State(plainLogin: PlainLogin, secure: boolean): ReadingState {
  if (secure || plainLogin === 'allowed') return 'authorization';
  return plainLogin === 'tls-first' ? 'tls-required' : 'tls-offered';
}

/** TRANSACTION-state commands: before login they get "log in first" rather than "unknown command". */
export const transactionCommands = new Set(['STAT', 'LIST', 'RETR', 'DELE', 'RSET', 'TOP', 'UIDL', 'LAST', 'UTF8']);
