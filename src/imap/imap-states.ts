/**
 * The IMAP front's states before login and the commands each allows, as data (RFC 9051 §3, §6.1–6.2). A plain
 * connection on a starttls or auto listener starts in `tls-required` (LOGIN and AUTHENTICATE wait for STARTTLS: a
 * downgrade must not expose a password; see login-tls-rule.ts), or in `tls-offered` where the listener says
 * `loginBeforeTls: allow`; `none` listeners and TLS connections start in `not-authenticated`. `done` ends the
 * front: logged out, closed, or spliced to the upstream (from then on the relay parses nothing).
 */
import type { PlainLogin } from '../transport/login-tls-rule.js';

export type ImapState = 'tls-required' | 'tls-offered' | 'not-authenticated' | 'done';
export type ReadingState = Exclude<ImapState, 'done'>;

/** The commands the front itself answers. */
export const imapCommands = ['CAPABILITY', 'NOOP', 'LOGOUT', 'ID', 'STARTTLS', 'LOGIN', 'AUTHENTICATE'] as const;
export type ImapCommandName = (typeof imapCommands)[number];

export interface ImapStateRules {
  /** Commands answered in this state. */
  allowed: readonly ImapCommandName[];
  /** Commands refused in this state until the connection is TLS (answered `NO [PRIVACYREQUIRED]`). */
  needTls: readonly ImapCommandName[];
  /** Capabilities advertised in this state (greeting and CAPABILITY). */
  capabilities: readonly string[];
}

const common = ['IMAP4rev1', 'SASL-IR', 'LITERAL+', 'ID'];

export const imapStates: Record<ReadingState, ImapStateRules> = {
  'tls-required': {
    allowed: ['CAPABILITY', 'NOOP', 'LOGOUT', 'ID', 'STARTTLS'],
    needTls: ['LOGIN', 'AUTHENTICATE'],
    capabilities: [...common, 'STARTTLS', 'LOGINDISABLED'],
  },
  'tls-offered': {
    allowed: ['CAPABILITY', 'NOOP', 'LOGOUT', 'ID', 'STARTTLS', 'LOGIN', 'AUTHENTICATE'],
    needTls: [],
    capabilities: [...common, 'STARTTLS', 'AUTH=PLAIN', 'AUTH=LOGIN'],
  },
  'not-authenticated': {
    allowed: ['CAPABILITY', 'NOOP', 'LOGOUT', 'ID', 'LOGIN', 'AUTHENTICATE'],
    needTls: [],
    capabilities: [...common, 'AUTH=PLAIN', 'AUTH=LOGIN'],
  },
};

/** Where a new connection starts. */
export function initialImapState(plainLogin: PlainLogin, secure: boolean): ReadingState {
  if (secure || plainLogin === 'allowed') return 'not-authenticated';
  return plainLogin === 'tls-first' ? 'tls-required' : 'tls-offered';
}

/**
 * Commands of the later IMAP states: before login they get "log in first" rather than "unknown command"
 * (and do not count as garbage).
 */
export const postLoginCommands = new Set([
  'SELECT', 'EXAMINE', 'CREATE', 'DELETE', 'RENAME', 'SUBSCRIBE', 'UNSUBSCRIBE', 'LIST', 'LSUB', 'NAMESPACE', 'STATUS',
  'APPEND', 'IDLE', 'ENABLE', 'CHECK', 'CLOSE', 'UNSELECT', 'EXPUNGE', 'SEARCH', 'FETCH', 'STORE', 'COPY', 'MOVE', 'UID',
  'GETQUOTAROOT', 'GETQUOTA', 'GETACL', 'MYRIGHTS', 'COMPRESS', 'XLIST',
]);
