/** What the test peers accept as an access token: Entra-shaped RS256 JWTs, validated locally (no network). */
export interface TokenValidation {
  /** Accepted `iss` values, e.g. `https://sts.windows.net/<tenant-id>/`. */
  issuers: string[];
  /**
   * Accepted `aud` values. One Dovecot passdb per audience, tried in order: Debian's security update of
   * Dovecot 2.3.19 requires `client_id == aud`, and `client_id` takes one value.
   */
  audiences: string[];
  /** The JWT header's `kid`; letters, digits, `-` and `_` only (Dovecot escapes other characters in the key path). */
  kid: string;
  /** The RS256 public key (SPKI PEM) that signs the tokens. */
  publicKeyPem: string;
  /** Claim that names the mailbox; default `upn`. The SASL user must equal it (case-insensitively). */
  usernameAttribute?: string;
}

/** Real Dovecot (IMAPS, POP3S) and Postfix (submission) on 127.0.0.1, accepting only XOAUTH2/OAUTHBEARER. */
export interface MailPeers {
  /** Temp directory holding configuration, logs, queues and maildirs. */
  readonly dir: string;
  /** Implicit-TLS IMAP (993-style) on 127.0.0.1. */
  readonly imapsPort: number;
  /** Implicit-TLS POP3 (995-style) on 127.0.0.1. */
  readonly pop3sPort: number;
  /** SMTP submission (587-style, STARTTLS required before AUTH) on 127.0.0.1. */
  readonly submissionPort: number;
  /** CA certificate (PEM) that signed the peers' certificate for 127.0.0.1 and localhost. */
  readonly caCertPem: string;
  /** Path of a mailbox's Maildir, e.g. `<dir>/mail/contoso.com/scanner/Maildir`. */
  maildir(mailbox: string): string;
  /** Waits until the mailbox holds at least `count` messages; resolves the paths of the files in new/ and cur/. */
  waitForMessages(mailbox: string, count: number, timeoutMs?: number): Promise<string[]>;
  /** Dovecot's log (authentication failures say why here: `Token has expired`, `client_id not found in aud field`…). */
  dovecotLog(): Promise<string>;
  /** Postfix's log (`maillog_file`). */
  postfixLog(): Promise<string>;
  /** Stops Postfix only (the submission port then refuses connections); for outage tests. */
  stopPostfix(): Promise<void>;
  /** Starts Postfix again on the same port after `stopPostfix()`. */
  startPostfix(): Promise<void>;
  /** Pids of every live process of both daemons (masters and children). */
  processIds(): number[];
  /** Stops both daemons, waits until none of their processes is left, removes `dir`. Idempotent. */
  stop(): Promise<void>;
}

export interface MailPeersOptions {
  validation: TokenValidation;
  /** Mailbox addresses (`local@domain`) that exist on the peers; their domains become Postfix virtual domains. */
  mailboxes: string[];
}
