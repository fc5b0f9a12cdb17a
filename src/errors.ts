/**
 * The one error catalogue. Every failure the relay reports carries a code from here, so that
 * the message an operator reads, the log level, and the reply a device sees are decided in one place.
 *
 * kind: who has to act.
 *   device   – the device sent something wrong (logged at info: it is not our fault)
 *   identity – the identity platform refused or failed (token problems)
 *   upstream – Exchange (or the test peer) refused or failed
 *   config   – the operator's configuration is wrong
 *   internal – a bug or a local resource problem (disk, permissions)
 */
export type ErrorKind = 'device' | 'identity' | 'upstream' | 'config' | 'internal';

/** Replies a device sees, per protocol. Only codes that can reach a device carry them. */
export interface DeviceReplies {
  smtp?: string;
  imap?: string;
  pop3?: string;
}

interface CatalogueEntry {
  kind: ErrorKind;
  /** What happened and what to do, for the operator. */
  message: string;
  replies?: DeviceReplies;
}

export const catalogue = {
  // ── configuration ────────────────────────────────────────────────────────────
  CONFIG_NOT_FOUND: { kind: 'config', message: 'configuration file not found: pass --config FILE or set XOAUTH2_RELAY_CONFIG' },
  CONFIG_UNREADABLE: { kind: 'config', message: 'configuration file cannot be read: check its path and permissions' },
  CONFIG_SYNTAX: { kind: 'config', message: 'configuration file is not valid YAML: fix the syntax at the line shown' },
  CONFIG_INVALID: { kind: 'config', message: 'configuration has errors: run `xoauth2-relay check-config` to list them all' },
  SECRET_FILE_UNREADABLE: { kind: 'config', message: 'a secret file named in the configuration cannot be read: check the path and that the service user may read it' },
  UNKNOWN_ACCOUNT: { kind: 'config', message: 'no such account in the configuration: see `xoauth2-relay status` for the configured accounts' },

  // ── token store ──────────────────────────────────────────────────────────────
  STORE_KEY_INVALID: { kind: 'config', message: 'token-store key is not usable: XOAUTH2_RELAY_KEY (or the credential/key file) must hold 32 bytes as 64 hex digits or base64' },
  STORE_DECRYPT_FAILED: { kind: 'internal', message: 'token store cannot be decrypted with this key (wrong key, or the file was altered): restore the key, or delete the token file and sign in again' },
  STORE_WRITE_FAILED: { kind: 'internal', message: 'token store cannot be written: check that stateDir exists, is writable by the service user and the disk is not full' },
  STORE_READ_FAILED: { kind: 'internal', message: 'token store cannot be read: check that stateDir/tokens and its files are readable by the service user' },
  STORE_KEY_MISSING: { kind: 'config', message: 'no token-store key: set XOAUTH2_RELAY_KEY, provide the systemd credential xoauth2-relay-key, or let the relay create stateDir/token-store.key' },
  STORE_KEY_UNREADABLE: { kind: 'config', message: 'token-store key file cannot be read: check its path and that the service user may read it' },
  STORE_KEY_INSECURE: { kind: 'config', message: 'token-store key file is readable by group or others: run `chmod 600` on it (and check who could have copied it)' },
  ACCOUNT_NAME_INVALID: { kind: 'config', message: 'account name is not usable: use 1 to 64 letters, digits, ".", "_" or "-", starting with a letter or digit' },

  // ── identity platform ────────────────────────────────────────────────────────
  TOKEN_NOT_ACQUIRED: {
    kind: 'identity',
    message: 'no token for this account yet: run `xoauth2-relay login <account>` (or Get token on the admin page)',
    replies: { smtp: '454 4.7.0 Relay has no mailbox token yet: ask the administrator to sign in', imap: 'NO [UNAVAILABLE] Relay has no mailbox token yet: ask the administrator to sign in', pop3: '-ERR [SYS/TEMP] Relay has no mailbox token yet: ask the administrator to sign in' },
  },
  TOKEN_INVALID: {
    kind: 'identity',
    message: 'the token is no longer valid (refresh refused): sign in again with `xoauth2-relay login <account>`',
    replies: { smtp: '454 4.7.0 Relay mailbox token is invalid: ask the administrator to sign in again', imap: 'NO [UNAVAILABLE] Relay mailbox token is invalid: ask the administrator to sign in again', pop3: '-ERR [SYS/TEMP] Relay mailbox token is invalid: ask the administrator to sign in again' },
  },
  TOKEN_REFRESH_FAILED: {
    kind: 'identity',
    message: 'the identity platform could not be reached or failed (the token is kept; retrying with back-off)',
    replies: { smtp: '451 4.4.3 Relay cannot reach the identity platform, try again later', imap: 'NO [UNAVAILABLE] Relay cannot reach the identity platform, try again later', pop3: '-ERR [SYS/TEMP] Relay cannot reach the identity platform, try again later' },
  },
  DEVICE_CODE_EXPIRED: { kind: 'identity', message: 'the device code expired before anyone signed in: start the sign-in again' },
  DEVICE_CODE_DECLINED: { kind: 'identity', message: 'the sign-in was declined at the device-login page: start it again and approve it' },
  SIGN_IN_FAILED: { kind: 'identity', message: 'the sign-in did not complete: see the reason, fix the app registration or consent, and start it again' },
  FLOW_NOT_SUPPORTED: { kind: 'config', message: 'this sign-in is not possible with the account\'s configured flow' },

  // ── local device authentication ──────────────────────────────────────────────
  AUTH_FAILED: {
    kind: 'device',
    message: 'device sent a wrong user name or password',
    replies: { smtp: '535 5.7.8 Authentication failed: wrong user name or password', imap: 'NO [AUTHENTICATIONFAILED] Wrong user name or password', pop3: '-ERR [AUTH] Wrong user name or password' },
  },
  AUTH_THROTTLED: {
    kind: 'device',
    message: 'too many failed logins from this address: it is refused for a while',
    replies: { smtp: '421 4.7.0 Too many failed logins, try again later', imap: 'NO [UNAVAILABLE] Too many failed logins, try again later', pop3: '-ERR [SYS/TEMP] Too many failed logins, try again later' },
  },
  SOURCE_NOT_ALLOWED: {
    kind: 'device',
    message: 'connection from an address that no device is allowed from',
    replies: { smtp: '530 5.7.0 Authentication required', imap: 'NO [AUTHENTICATIONFAILED] Not allowed from this address', pop3: '-ERR [AUTH] Not allowed from this address' },
  },

  PASSWORD_HASH_INVALID: { kind: 'config', message: 'a device passwordHash is not a valid scrypt hash: create one with `xoauth2-relay hash-password`' },

  // ── internal ─────────────────────────────────────────────────────────────────
  INTERNAL: { kind: 'internal', message: 'internal error: see the log line for details' },
} as const satisfies Record<string, CatalogueEntry>;

export type ErrorCode = keyof typeof catalogue;

/** The one error type the relay throws. `detail` is operator-facing context; it must never hold a secret. */
export class RelayError extends Error {
  readonly code: ErrorCode;
  readonly kind: ErrorKind;
  readonly detail: string | undefined;

  constructor(code: ErrorCode, detail?: string, options?: { cause?: unknown }) {
    const entry: CatalogueEntry = catalogue[code];
    super(detail ? `${entry.message} (${detail})` : entry.message, options);
    this.name = 'RelayError';
    this.code = code;
    this.kind = entry.kind;
    this.detail = detail;
  }

  /** The reply a device sees for this error, or a generic temporary failure. */
  replyFor(protocol: keyof DeviceReplies): string {
    const entry: CatalogueEntry = catalogue[this.code];
    return entry.replies?.[protocol] ?? genericReplies[protocol];
  }
}

const genericReplies: Required<DeviceReplies> = {
  smtp: '451 4.3.0 Relay error, try again later',
  imap: 'NO [UNAVAILABLE] Relay error, try again later',
  pop3: '-ERR [SYS/TEMP] Relay error, try again later',
};

export function isRelayError(err: unknown, code?: ErrorCode): err is RelayError {
  return err instanceof RelayError && (code === undefined || err.code === code);
}
