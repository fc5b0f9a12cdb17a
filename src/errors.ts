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
  /** Doctor findings: the Exchange/Entra setting behind the failure, in words. */
  cause?: string;
  /** Doctor findings: the exact fix (PowerShell line or portal path); `<mailbox>`, `<sender>`, `<app>`, `<account>` are filled in. */
  fix?: string;
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
  STORE_LOCK_FAILED: { kind: 'internal', message: 'the account lock in stateDir/locks cannot be taken: check that stateDir is writable by the service user; a lock left by a crashed process goes stale by itself within seconds' },
  TOKEN_STORE_UNREADABLE: { kind: 'internal', message: 'this account\'s token file cannot be read: it was sealed with another key (XOAUTH2_RELAY_KEY, the systemd credential or stateDir/token-store.key differ between the service and the shell that wrote it) or is not readable by the service user (a CLI run as root): give the service the same key, or `chown`/`chmod 600` the file to the service user, or delete it and sign in again; the other accounts are not affected' },
  STORE_UNREACHABLE: { kind: 'internal', message: 'the shared token store (Redis) cannot be reached: the relay keeps serving with the tokens it holds and retries; check tokenStore.url, the network and the Redis server' },
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
    message: 'no token could be obtained from the identity platform just now',
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
  AUTH_BUSY: {
    kind: 'device',
    message: 'more device logins were waiting for a password check than logins.maxQueuedChecks allows (a login flood, or many devices at once): this one was told to try again later without checking',
    replies: { smtp: '454 4.7.0 Too many logins in progress, try again later', imap: 'NO [UNAVAILABLE] Too many logins in progress, try again later', pop3: '-ERR [SYS/TEMP] Too many logins in progress, try again later' },
  },
  LOGINS_BUSY: {
    kind: 'device',
    message: 'more device logins were waiting for their upstream login than logins.maxQueuedUpstreamLogins allows (a burst of devices logging in at once): this one was told to try again later; raise logins.maxConcurrentUpstreamLogins if the mail server keeps up',
    replies: { imap: 'NO [UNAVAILABLE] Too many logins in progress, try again later', pop3: '-ERR [SYS/TEMP] Too many logins in progress, try again later' },
  },
  DEVICE_GONE: {
    kind: 'device',
    message: 'the device closed its connection while its login waited for an upstream login slot: no upstream login was made',
    replies: { imap: 'NO [UNAVAILABLE] Try again later', pop3: '-ERR [SYS/TEMP] Try again later' },
  },
  SOURCE_NOT_ALLOWED: {
    kind: 'device',
    message: 'connection from an address that no device is allowed from',
    replies: { smtp: '530 5.7.0 Authentication required', imap: 'NO [AUTHENTICATIONFAILED] Not allowed from this address', pop3: '-ERR [AUTH] Not allowed from this address' },
  },

  PASSWORD_HASH_INVALID: { kind: 'config', message: 'a device passwordHash is not a valid scrypt hash: create one with `xoauth2-relay hash-password`' },

  // ── spool ────────────────────────────────────────────────────────────────────
  MESSAGE_TOO_LARGE: {
    kind: 'device',
    message: 'device sent a message larger than smtp.maxMessageBytes: lower the scan resolution or split the job (nothing was kept)',
    replies: { smtp: '552 5.3.4 Message too big for the relay' },
  },
  SPOOL_WRITE_FAILED: {
    kind: 'internal',
    message: 'the spool cannot be written: check that stateDir/spool is writable by the service user and the disk is not full',
    replies: { smtp: '452 4.3.1 Relay cannot store the message now, try again later' },
  },

  SPOOL_READ_FAILED: { kind: 'internal', message: 'the spool cannot be read: check that stateDir/spool and its files are readable by the service user' },

  // ── delivery to Exchange Online (what the queue and the dead-letter folder show) ─
  UPSTREAM_UNREACHABLE: { kind: 'upstream', message: 'the upstream SMTP server could not be reached or dropped the connection (network, DNS or firewall; check smtp.upstream if it lasts)' },
  UPSTREAM_TLS_FAILED: { kind: 'upstream', message: 'TLS with the upstream SMTP server failed (no STARTTLS, or a certificate that is not trusted): check smtp.upstream and upstreamTls.extraCaFile' },
  UPSTREAM_TEMPORARY: { kind: 'upstream', message: 'Exchange answered with a temporary failure (4xx: busy, throttled, or a passing fault)' },
  UPSTREAM_TOKEN_REJECTED: { kind: 'upstream', message: 'Exchange refused the access token even after a refresh (535 5.7.3): check the app\'s SMTP.Send permission (SMTP.SendAsApp and the Exchange service principal for client-credentials) and that the account\'s mailbox is the signed-in user or one it may use' },
  UPSTREAM_SMTP_AUTH_DISABLED: { kind: 'upstream', message: 'Exchange has SMTP AUTH switched off (535 5.7.139): enable it for the tenant with `Set-TransportConfig -SmtpClientAuthenticationDisabled $false` or for the mailbox with `Set-CASMailbox <mailbox> -SmtpClientAuthenticationDisabled $false` (Security Defaults also block it), then `xoauth2-relay queue retry <id>`' },
  UPSTREAM_BASIC_AUTH_REFUSED: { kind: 'upstream', message: 'Exchange refused basic authentication (550 5.7.30): the upstream session did not use XOAUTH2; check that smtp.upstream is smtp.office365.com:587' },
  UPSTREAM_NOT_AUTHENTICATED: { kind: 'upstream', message: 'Exchange says the session was not authenticated (530 5.7.57): the upstream did not offer AUTH XOAUTH2 after STARTTLS; check that smtp.upstream is smtp.office365.com:587' },
  UPSTREAM_SEND_AS_DENIED: { kind: 'upstream', message: 'the mailbox may not send as this sender (550 5.7.60 at MAIL FROM, 554 5.2.0 SendAsDenied for the From header): use the default senderPolicy (auto: the mailbox becomes the sender, the original goes to Reply-To), or grant Send As in Exchange with `Add-RecipientPermission -Identity <sender> -Trustee <mailbox> -AccessRights SendAs` and list the sender in the account\'s sendAsGranted, then `xoauth2-relay queue retry <id>`' },
  UPSTREAM_TOKEN_EXPIRES_SOON: { kind: 'upstream', message: 'the upstream refused a token close to its expiry (501 5.5.127, High Volume Email): the relay refreshes and retries; if it lasts, raise identity.tokens.refreshBeforeExpirySeconds' },
  UPSTREAM_EXTERNAL_RECIPIENT: { kind: 'upstream', message: 'the upstream refused a recipient outside the organisation (550 5.7.54; High Volume Email takes internal recipients only): set the device\'s allowedRecipientDomains to your accepted domains, or send external mail through a normal mailbox (smtp.office365.com)' },
  UPSTREAM_QUOTA_EXCEEDED: { kind: 'upstream', message: 'the mailbox reached Exchange Online\'s sending quota (SubmissionQuotaExceeded: 10,000 recipients a day): wait for the quota to recover, or spread the devices over more mailboxes' },
  UPSTREAM_MESSAGE_TOO_LARGE: { kind: 'upstream', message: 'Exchange refused the message as too large (552 / 5.2.270; 35 MB by default): lower the scan resolution or split the job, or raise the mailbox limit with `Set-Mailbox <mailbox> -MaxSendSize` (up to 150 MB)' },
  UPSTREAM_RECIPIENT_REJECTED: { kind: 'upstream', message: 'Exchange refused the recipient (5.1.x: unknown address or not allowed): correct the address in the device\'s address book' },
  UPSTREAM_REJECTED: { kind: 'upstream', message: 'Exchange refused the message permanently (5xx): see the reply' },
  DELIVERY_EXPIRED: { kind: 'upstream', message: 'the message could not be delivered within smtp.delivery.maxAgeHours: fix the last reason shown, then `xoauth2-relay queue retry <id>`' },

  // ── SMTP from devices ────────────────────────────────────────────────────────
  SMTP_AUTH_REQUIRED: {
    kind: 'device',
    message: 'a client neither logged in nor came from an address a device is admitted from (open-relay attempt or misconfigured device)',
    replies: { smtp: '530 5.7.0 Authentication required: log in, or ask the administrator to admit this address' },
  },
  SENDER_NOT_ALLOWED: {
    kind: 'device',
    message: 'the device used a sender address its allowedSenders do not list',
    replies: { smtp: '550 5.7.1 Sender address not allowed for this device' },
  },
  RECIPIENT_NOT_ALLOWED: {
    kind: 'device',
    message: 'the device sent to a domain its allowedRecipientDomains do not list',
    replies: { smtp: '550 5.7.1 Recipient domain not allowed for this device' },
  },
  TOO_MANY_RECIPIENTS: {
    kind: 'device',
    message: 'more recipients than Exchange Online accepts in one message (500)',
    replies: { smtp: '452 4.5.3 Too many recipients: send the rest in another message' },
  },
  TOO_MANY_CONNECTIONS: {
    kind: 'device',
    message: 'too many simultaneous connections from one address (smtp.maxConnectionsPerAddress)',
    replies: { smtp: '421 4.7.0 Too many connections from your address, try again later', imap: 'BYE Too many connections from your address', pop3: '-ERR [SYS/TEMP] Too many connections from your address' },
  },

  LISTENER_BUSY: {
    kind: 'device',
    message: 'a listener holds smtp.maxConnectionsPerListener connections: a new one was refused (a connection flood, or raise the limit if this many devices are real)',
    replies: { smtp: '421 4.3.2 Too many connections, try again later', imap: 'BYE [UNAVAILABLE] Too many connections, try again later', pop3: '-ERR [SYS/TEMP] Too many connections, try again later' },
  },

  // ── IMAP and POP3: devices and the upstream mail server ──────────────────────
  UPSTREAM_UNAVAILABLE: {
    kind: 'upstream',
    message: 'the upstream IMAP/POP3 server could not be reached, did not answer in time or closed the connection: check imap.upstream / pop3.upstream, DNS and the firewall (the device was told to try again later; the token was not used)',
    replies: { imap: 'NO [UNAVAILABLE] Mail server unreachable, try again later', pop3: '-ERR [SYS/TEMP] Mail server unreachable, try again later' },
  },
  UPSTREAM_CERTIFICATE_UNTRUSTED: {
    kind: 'upstream',
    message: "the upstream IMAP/POP3 server's TLS certificate is not trusted or does not match its name: check the host in imap.upstream / pop3.upstream, and upstreamTls.extraCaFile for a private server",
    replies: { imap: 'NO [UNAVAILABLE] Mail server unreachable, try again later', pop3: '-ERR [SYS/TEMP] Mail server unreachable, try again later' },
  },
  UPSTREAM_PROTOCOL_ERROR: {
    kind: 'upstream',
    message: 'the upstream IMAP/POP3 server answered something the relay did not expect (no greeting, BYE, no XOAUTH2): check that imap.upstream / pop3.upstream point at Exchange Online (outlook.office365.com:993 / :995)',
    replies: { imap: 'NO [UNAVAILABLE] Mail server error, try again later', pop3: '-ERR [SYS/TEMP] Mail server error, try again later' },
  },
  UPSTREAM_AUTH_REJECTED: {
    kind: 'upstream',
    message: "the mail server refused the access token even after a refresh: check the app's IMAP.AccessAsUser.All / POP.AccessAsUser.All permission (client credentials: IMAP.AccessAsApp / POP.AccessAsApp, the Exchange service principal and its mailbox permission), that IMAP/POP is enabled for the mailbox (`Set-CASMailbox <mailbox> -ImapEnabled $true -PopEnabled $true`), and that the account's mailbox is the signed-in user or one it may open",
    // The device's own password was right: a temporary-failure code keeps it from "correcting" it.
    replies: { imap: "NO [UNAVAILABLE] Mail server refused the relay's login: ask the administrator", pop3: "-ERR [SYS/TEMP] Mail server refused the relay's login: ask the administrator" },
  },
  UPSTREAM_SESSION_REFUSED: {
    kind: 'upstream',
    message: 'the mail server refused the session for a reason other than the token (too many connections for the mailbox, or the server is busy or in maintenance; see the reply): Exchange Online limits simultaneous IMAP/POP3 connections per mailbox, so if the reply says so, spread the devices over more accounts or lower their connections; the token was not refreshed',
    replies: { imap: 'NO [UNAVAILABLE] Mail server busy, try again later', pop3: '-ERR [SYS/TEMP] Mail server busy, try again later' },
  },
  MAILBOX_BUSY: {
    kind: 'config',
    message: 'a device login found its mailbox holding mailboxSessions.maxPerMailbox upstream IMAP/POP3 sessions and no slot came free in time (or too many logins were already waiting): the device was told to try again later. If it happens often, lengthen the devices\' poll intervals, spread them over more mailboxes, or raise mailboxSessions.maxPerMailbox (Exchange Online refuses more than about 16 to 20 per mailbox)',
    // RFC 5530 UNAVAILABLE and RFC 2449 §8.1.1 IN-USE: both say "temporary, try again later" without blaming the password.
    replies: { imap: 'NO [UNAVAILABLE] Too many sessions on this mailbox, try again later', pop3: '-ERR [IN-USE] Too many sessions on this mailbox, try again later' },
  },
  LINE_TOO_LONG: {
    kind: 'device',
    message: 'a client sent a line longer than the relay accepts before login (garbage, a port scan, or a misconfigured device): the connection was closed',
    replies: { imap: 'BYE Line too long', pop3: '-ERR Line too long' },
  },
  LITERAL_TOO_LARGE: {
    kind: 'device',
    message: 'a client announced an IMAP literal larger than the relay accepts before login: refused',
    replies: { imap: 'BAD [TOOBIG] Literal too large before login' },
  },
  TOO_MANY_ERRORS: {
    kind: 'device',
    message: 'a client sent too many invalid commands before login (not an IMAP/POP3 client, or garbage): the connection was closed',
    replies: { imap: 'BYE Too many invalid commands', pop3: '-ERR Too many invalid commands' },
  },
  TOO_MANY_COMMANDS: {
    kind: 'device',
    message: 'a client sent more commands before logging in than logins.maxCommandsBeforeLogin allows: the connection was closed',
    replies: { imap: 'BYE Too many commands before login', pop3: '-ERR Too many commands before login' },
  },
  TLS_REQUIRED: {
    kind: 'device',
    message: 'a device tried to log in without TLS on a listener with tls: starttls or auto: set the device to use STARTTLS (SMTP, IMAP) / STLS (POP3) or SSL/TLS, or set loginBeforeTls: allow on the listener, or give it a listener with tls: none',
    // RFC 3207 §4 (SMTP), RFC 5530 §3 PRIVACYREQUIRED (IMAP), RFC 3206 §4 [AUTH] (POP3).
    replies: { smtp: '530 5.7.0 Must issue a STARTTLS command first', imap: 'NO [PRIVACYREQUIRED] Use STARTTLS before logging in', pop3: '-ERR [AUTH] Use STLS before logging in' },
  },
  DEVICE_TIMEOUT: {
    kind: 'device',
    message: 'a client stayed silent for too long (before login, or idle in a session): the connection was closed',
    replies: { imap: 'BYE Autologout: idle for too long', pop3: '-ERR Autologout: idle for too long' },
  },
  SHUTTING_DOWN: {
    kind: 'internal',
    message: 'the relay is shutting down: open device sessions were ended',
    replies: { smtp: '421 4.3.2 Relay shutting down, try again later', imap: 'BYE Relay shutting down, try again later', pop3: '-ERR [SYS/TEMP] Relay shutting down, try again later' },
  },

  // ── admin page, JSON API and notifications ───────────────────────────────────
  ADMIN_PASSWORD_REQUIRED: { kind: 'config', message: 'the admin page would be reachable from the network without a password: set admin.passwordHash (from `xoauth2-relay hash-password`), or set admin.listen to 127.0.0.1:8025' },
  ADMIN_PLAIN_HTTP: { kind: 'config', message: 'the admin page would speak plain HTTP on a network address (the admin password and session cookie in clear text): set admin.tls.enabled: true (with admin.tls or tls certificate files), or listen on 127.0.0.1, or set admin.allowPlainHttp: true behind a TLS reverse proxy' },
  ADMIN_TLS_UNREADABLE: { kind: 'config', message: 'the admin page\'s certificate or key cannot be read: check admin.tls.certFile/keyFile (or tls.certFile/keyFile) and that the service user may read them' },
  ADMIN_LISTEN_FAILED: { kind: 'config', message: 'the admin page cannot listen on admin.listen (address in use or not on this host): pick another host:port' },
  ADMIN_SESSION_REQUIRED: { kind: 'device', message: 'an admin request came without a valid session: log in on the admin page first (sessions end when the relay restarts)' },
  ADMIN_CSRF_REJECTED: { kind: 'device', message: 'an admin request that changes something came without the page\'s CSRF token (or from another site): reload the admin page and try again' },
  ADMIN_LOGIN_FAILED: { kind: 'device', message: 'wrong admin password' },
  ADMIN_LOGIN_THROTTLED: { kind: 'device', message: 'too many wrong admin passwords from this address: wait a moment before trying again' },
  ADMIN_HOST_REFUSED: { kind: 'device', message: 'an admin request named a host this relay does not answer to without a password (DNS rebinding?): open the page as http://127.0.0.1:<port>/ or set admin.passwordHash' },
  NO_SUCH_MESSAGE: { kind: 'device', message: 'no such message in the queue or the dead letters (it may have been delivered or dropped meanwhile)' },
  ACCOUNT_TEST_UNAVAILABLE: { kind: 'config', message: 'account checks are not available in this process' },
  WEBHOOK_FAILED: { kind: 'upstream', message: 'the notification webhook did not accept the notice (not retried; the log line above says what the notice was): check notify.webhookUrl and that the receiver is up' },

  // ── doctor findings (`xoauth2-relay doctor`, admin page): cause and exact fix per failed check ─────────
  DOCTOR_TOKEN_NOT_ACQUIRED: { kind: 'identity', message: 'the account has no token', cause: 'nobody has signed in for this account yet (or the token was deleted)', fix: 'xoauth2-relay login <account>   (or Get token on the admin page)' },
  DOCTOR_TOKEN_WAITING: { kind: 'identity', message: 'a sign-in is waiting for a person', cause: 'a device code or browser sign-in was started and not finished', fix: 'finish the sign-in shown by `xoauth2-relay status`, or start it again with `xoauth2-relay login <account>`' },
  DOCTOR_TOKEN_INVALID: { kind: 'identity', message: 'the identity platform refused the account\'s grant', cause: 'the refresh token is dead (password reset, revocation, Conditional Access sign-in frequency) or the client credentials are wrong', fix: 'xoauth2-relay login <account>   (client-credentials: renew the secret or certificate in Entra › App registrations › <app> › Certificates & secrets)' },
  DOCTOR_DEVICE_CODE_BLOCKED: { kind: 'identity', message: 'Conditional Access blocks the device code flow (AADSTS53003)', cause: 'the tenant blocks device code sign-in, as Microsoft recommends', fix: 'use flow: client-credentials (app-only, recommended for unattended devices; docs/setup-entra.md §1 and §4a) or flow: browser (`xoauth2-relay login <account> --browser`)' },
  DOCTOR_IDENTITY_UNREACHABLE: { kind: 'identity', message: 'the identity platform could not be reached', cause: 'network, DNS, proxy or firewall between the relay and identity.authorityHost', fix: 'allow HTTPS from the relay host to login.microsoftonline.com (identity.authorityHost), then run the doctor again' },
  DOCTOR_WRONG_AUDIENCE: { kind: 'config', message: 'the access token is not for Exchange Online', cause: 'the token\'s audience (aud) is not https://outlook.office.com (delegated) or https://outlook.office365.com (app-only): the wrong scope was requested or a wrong app registration is used', fix: 'delegated: request https://outlook.office.com/SMTP.Send (and IMAP/POP) scopes; app-only: https://outlook.office365.com/.default; check accounts.<account>.clientId' },
  DOCTOR_WRONG_TENANT: { kind: 'config', message: 'the access token comes from another tenant', cause: 'accounts.<account>.tenantId names a different directory than the one that issued the token', fix: 'set accounts.<account>.tenantId to the Directory (tenant) ID of the mailbox\'s tenant (Entra › Overview)' },
  DOCTOR_SCOPE_MISSING: { kind: 'config', message: 'the delegated token lacks a permission an enabled protocol needs', cause: 'the app registration has no consented delegated permission for this protocol', fix: 'Entra admin center › App registrations › <app> › API permissions › Add a permission › APIs my organization uses › Office 365 Exchange Online › Delegated: <permission>; Grant admin consent; then xoauth2-relay login <account>' },
  DOCTOR_OTHER_USER: { kind: 'config', message: 'the token belongs to another user than the account\'s mailbox', cause: 'someone else approved the sign-in; that user needs rights on the mailbox', fix: 'sign in as <mailbox> (xoauth2-relay login <account>), or grant the signed-in user: Add-MailboxPermission -Identity <mailbox> -User <user> -AccessRights FullAccess (IMAP/POP) and Add-RecipientPermission -Identity <mailbox> -Trustee <user> -AccessRights SendAs (SMTP)' },
  DOCTOR_SMTP_AUTH_DISABLED_TENANT: { kind: 'upstream', message: 'Exchange has SMTP AUTH switched off for the tenant (535 5.7.139)', cause: 'SmtpClientAuthenticationDisabled is $true for the organisation (or Security Defaults are on)', fix: 'Set-CASMailbox -Identity <mailbox> -SmtpClientAuthenticationDisabled $false   (this mailbox only; or the whole tenant: Set-TransportConfig -SmtpClientAuthenticationDisabled $false; Security Defaults must be off)' },
  DOCTOR_SMTP_AUTH_DISABLED_MAILBOX: { kind: 'upstream', message: 'Exchange has SMTP AUTH switched off for this mailbox (535 5.7.139)', cause: 'SmtpClientAuthenticationDisabled is $true on the mailbox (it overrides the tenant setting)', fix: 'Set-CASMailbox -Identity <mailbox> -SmtpClientAuthenticationDisabled $false' },
  DOCTOR_SMTP_TOKEN_REJECTED: { kind: 'upstream', message: 'Exchange refused the delegated token for SMTP (535 5.7.3) even after a refresh', cause: 'SMTP.Send is not consented, or the signed-in user may not use this mailbox', fix: 'Entra admin center › App registrations › <app> › API permissions: Office 365 Exchange Online › Delegated: SMTP.Send, Grant admin consent; then xoauth2-relay login <account>' },
  DOCTOR_APP_ROLE_MISSING: { kind: 'upstream', message: 'Exchange refused the app-only token for this mailbox', cause: 'the app\'s service principal has no <role> role assignment whose scope includes <mailbox> (RBAC for Applications), or no service principal in Exchange at all', fix: 'New-ManagementRoleAssignment -App <app> -Role "Application <role>" -CustomResourceScope "<scope>"   (once: New-ServicePrincipal -AppId <app> -ObjectId <Enterprise Application object id>; check with Test-ServicePrincipalAuthorization -Identity <app> -Resource <mailbox>; changes take up to 2 hours)' },
  DOCTOR_SEND_AS_DENIED: { kind: 'upstream', message: 'Exchange refuses this sender for the mailbox (550 5.7.60 / 554 5.2.0 SendAsDenied)', cause: '<mailbox> has no Send As right on <sender>, and a device sends as it under senderPolicy keep (or it is listed in sendAsGranted)', fix: 'Add-RecipientPermission -Identity <sender> -Trustee <mailbox> -AccessRights SendAs   (or use the default senderPolicy: auto, and take <sender> out of sendAsGranted)' },
  DOCTOR_SEND_AS_UNVERIFIED: { kind: 'config', message: 'a domain in sendAsGranted cannot be checked without a real address', cause: 'Send As is granted per address; the doctor cannot try a whole domain', fix: 'run `xoauth2-relay doctor <account> --send-to <your address>` with a device sending, or list the exact addresses in sendAsGranted' },
  DOCTOR_MESSAGE_SIZE: { kind: 'config', message: 'devices may send larger messages than the mailbox may submit', cause: 'smtp.maxMessageBytes is above the SIZE Exchange announces for this mailbox: larger scans would be accepted from the device and then dead-lettered', fix: 'Set-Mailbox -Identity <mailbox> -MaxSendSize 150MB   (or lower smtp.maxMessageBytes to the announced SIZE)' },
  DOCTOR_SMTP_REFUSED: { kind: 'upstream', message: 'Exchange refused the SMTP check', cause: 'see the reply', fix: 'see docs/troubleshooting.md for the reply shown' },
  DOCTOR_SMTP_UNREACHABLE: { kind: 'upstream', message: 'the SMTP upstream could not be reached or TLS failed', cause: 'network, DNS, firewall (outbound 587) or an untrusted certificate', fix: 'allow TCP 587 from the relay host to smtp.upstream (smtp.office365.com); a private server needs upstreamTls.extraCaFile' },
  DOCTOR_MAILBOX_LOGIN_REFUSED: { kind: 'upstream', message: 'Exchange refused the IMAP/POP3 login with the delegated token', cause: 'the protocol is disabled for the mailbox, or the delegated permission is not consented', fix: 'Set-CASMailbox -Identity <mailbox> -<protocol>Enabled $true   (and Entra › App registrations › <app> › API permissions: <permission>, Grant admin consent)' },
  DOCTOR_MAILBOX_UNREACHABLE: { kind: 'upstream', message: 'the IMAP/POP3 upstream could not be reached or TLS failed', cause: 'network, DNS, firewall (outbound 993/995) or an untrusted certificate', fix: 'allow TCP 993 / 995 from the relay host to imap.upstream / pop3.upstream (outlook.office365.com)' },
  DOCTOR_HVE_EXTERNAL: { kind: 'config', message: 'High Volume Email takes internal recipients only, but a device of this account may send anywhere', cause: 'HVE refuses recipients outside the tenant\'s accepted domains', fix: 'set allowedRecipientDomains on the device (e.g. [contoso.com]) to the tenant\'s accepted domains, or use smtp.office365.com with a normal mailbox for external mail' },
  DOCTOR_HVE_NOT_ALLOWED: { kind: 'upstream', message: 'High Volume Email refused the app for this HVE account', cause: 'the app is not added to the HVE account', fix: 'Add-HVEAppAccess -Identity <mailbox> -AppIds "<app>"   (up to ten apps per HVE account; changes take up to 5 minutes)' },

  // ── internal ─────────────────────────────────────────────────────────────────
  CONFIG_CHANGED: {
    kind: 'device',
    message: 'the configuration was reloaded while this session was open: the device is asked to send again',
    replies: { smtp: '451 4.3.0 Relay configuration changed, send again', imap: 'NO [UNAVAILABLE] Relay configuration changed, try again', pop3: '-ERR [SYS/TEMP] Relay configuration changed, try again' },
  },
  UNHANDLED_FAULT: { kind: 'internal', message: 'a fault no handler caught (a bug): the relay logged it, counted it in xoauth2_relay_internal_faults_total and kept serving; please report the log line' },
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
