/**
 * The sandbox mailbox: a small mail server that behaves like Exchange Online's client endpoints
 * (SMTP submission with STARTTLS, POP3S, IMAPS) and accepts only SASL XOAUTH2 with access tokens from the
 * sandbox identity simulator, so `demo` and the tests run the relay's real code paths without a tenant.
 * Messages are files: `<maildir>/<mailbox>/new/<unique>.eml`.
 */
import { mkdir } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../../log.js';
import { createLogger } from '../../log.js';
import { runImapSession } from './imap-session.js';
import { ImapUidRegistry } from './imap-uids.js';
import { Maildir, mailboxDirectoryName, type StoredMessage } from './maildir.js';
import { MaildropLocks } from './pop3-maildrop.js';
import { runPop3Session } from './pop3-session.js';
import { createSmtpSubmission } from './smtp-submission.js';
import { startTlsListener, type TlsListener } from './tls-listener.js';
import { createAccessTokenChecker, type AccessTokenTrust } from './token-check.js';
import { startControlApi, type ControlApi } from './control-api.js';
import { MailboxRulebook } from './mailbox-rules.js';

export interface SandboxMailboxOptions {
  /** Address to listen on; loopback by default (the sandbox is for this host only). */
  host?: string;
  /** SMTP submission port (STARTTLS); 0 = any free port (the default). */
  smtpPort?: number;
  /** POP3 port (implicit TLS); 0 = any free port (the default). */
  pop3Port?: number;
  /** IMAP port (implicit TLS); 0 = any free port (the default). */
  imapPort?: number;
  /** Port of the control API (plain HTTP on `host`) that switches the emulated Exchange settings; 0 = any free port. */
  controlPort?: number;
  /** Server certificate and key (PEM), e.g. from `createPki().issueServerCertificate(['127.0.0.1', 'localhost'])`. */
  tls: { certPem: string; keyPem: string };
  /** How to validate access tokens: the identity simulator's signing key and the issuers and audiences it uses. */
  tokens: AccessTokenTrust;
  /** Root directory of the message store. Created if missing. */
  maildir: string;
  logger?: Logger;
  /**
   * POP3 and IMAP idle timeout. Default 10 minutes, RFC 1939 §3's minimum autologout timer
   * (RFC 9051 §5.4 asks at least 30 minutes of IMAP; a sandbox needs neither that long).
   */
  idleTimeoutMs?: number;
  /** Simultaneous POP3 and IMAP connections each listener takes (default 100; the cluster test lifts it). */
  maxConnections?: number;
}

/** A running sandbox mailbox. */
export interface SandboxMailbox {
  smtpPort: number;
  pop3Port: number;
  /** IMAP port; null when IMAP is not served. */
  imapPort: number | null;
  /** Base URL of the control API (control-api.ts): `http://127.0.0.1:PORT/sandbox/api/mailbox-rules`. */
  controlUrl: string;
  /** Messages stored for `mailbox` (an address, case-insensitive), oldest first; empty for an unknown mailbox. */
  messages(mailbox: string): Promise<Array<{ file: string; size: number; receivedAt: Date }>>;
  /** Stops all listeners and ends open connections. */
  close(): Promise<void>;
}

const DEFAULT_IDLE_TIMEOUT_MS = 10 * 60_000;

/** Starts SMTP, POP3 and IMAP on `opts.host`; resolves when all three listen. */
export async function startSandboxMailbox(opts: SandboxMailboxOptions): Promise<SandboxMailbox> {
  const host = opts.host ?? '127.0.0.1';
  const logger = (opts.logger ?? createLogger({ level: 'silent' })).child({ component: 'sandbox-mailbox' });
  const idleTimeoutMs = opts.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  await mkdir(opts.maildir, { recursive: true });
  const maildir = new Maildir(opts.maildir);
  const rules = new MailboxRulebook();
  // App-only tokens are judged by the mailbox's role assignments (RBAC for Applications), as Exchange does.
  const tokens = await createAccessTokenChecker(opts.tokens, (mailbox, protocol) => rules.for(mailbox).appRoles.includes(protocol));

  const smtp = createSmtpSubmission({ tls: opts.tls, tokens, maildir, rules, logger });
  await new Promise<void>((resolve, reject) => {
    smtp.once('error', reject);
    smtp.listen(opts.smtpPort ?? 0, host, () => {
      smtp.off('error', reject);
      resolve();
    });
  });
  // After start-up, a listener error (e.g. EMFILE) is logged rather than thrown at nobody.
  smtp.on('error', (err: Error) => logger.error({ protocol: 'smtp', err: { message: err.message } }, 'SMTP listener error'));

  const listeners: TlsListener[] = [];
  let control: ControlApi | null = null;
  const closeAll = async (): Promise<void> => {
    await Promise.all([new Promise<void>((resolve) => smtp.close(() => resolve())), ...listeners.map((l) => l.close()), control?.close()]);
  };
  try {
    control = await startControlApi(rules, { host, port: opts.controlPort ?? 0, logger });
    const pop3Context = { tokens, maildir, locks: new MaildropLocks(), logger };
    listeners.push(await startTlsListener({
      host, port: opts.pop3Port ?? 0, tls: opts.tls, protocol: 'pop3', logger, idleTimeoutMs, maxConnections: opts.maxConnections,
      idleReply: '-ERR Autologout; idle for too long.',
      session: (socket, id) => runPop3Session(socket, pop3Context, id),
    }));
    const imapContext = { tokens, maildir, uids: new ImapUidRegistry(), logger };
    listeners.push(await startTlsListener({
      host, port: opts.imapPort ?? 0, tls: opts.tls, protocol: 'imap', logger, idleTimeoutMs, maxConnections: opts.maxConnections,
      idleReply: '* BYE Autologout; idle for too long.',
      session: (socket, id) => runImapSession(socket, imapContext, id),
    }));
  } catch (err) {
    await closeAll();
    throw err;
  }
  const [pop3, imap] = listeners as [TlsListener, TlsListener];
  logger.info({ smtpPort: smtpPortOf(smtp), pop3Port: pop3.port, imapPort: imap.port, maildir: opts.maildir }, 'sandbox mailbox listening');

  return {
    smtpPort: smtpPortOf(smtp),
    pop3Port: pop3.port,
    imapPort: imap.port,
    controlUrl: control.url,
    async messages(mailbox: string): Promise<StoredMessage[]> {
      const name = mailboxDirectoryName(mailbox);
      return name === null ? [] : maildir.list(name);
    },
    close: closeAll,
  };
}

function smtpPortOf(smtp: ReturnType<typeof createSmtpSubmission>): number {
  return (smtp.server.address() as AddressInfo).port;
}
