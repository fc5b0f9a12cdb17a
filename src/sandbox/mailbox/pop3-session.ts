/**
 * One POP3 session of the sandbox mailbox, shaped like outlook.office365.com:995: RFC 1939 with CAPA
 * (RFC 2449) and SASL (RFC 5034), XOAUTH2 as the only way in. The states and the commands each allows are
 * a table; the commands themselves are a handler map.
 */
import type { Socket } from 'node:net';
import { pipeline } from 'node:stream/promises';
import type { Logger } from '../../log.js';
import { errorFields } from '../../log.js';
import { commandLines } from './command-lines.js';
import { mailboxDirectoryName, type Maildir } from './maildir.js';
import { Maildrop, type MaildropEntry, type MaildropLocks } from './pop3-maildrop.js';
import { Pop3MultilineEncoder } from './pop3-multiline.js';
import type { AccessTokenChecker } from './token-check.js';

/** What every POP3 session shares. */
export interface Pop3SessionContext {
  tokens: AccessTokenChecker;
  maildir: Maildir;
  locks: MaildropLocks;
  logger: Logger;
}

/**
 * RFC 1939 §3 states. `sasl` is the AUTHORIZATION sub-state between `+ ` and the client's response
 * (RFC 5034 §4), where a line is a SASL response, not a command. UPDATE is entered and left inside QUIT.
 */
export type Pop3State = 'authorization' | 'sasl' | 'transaction' | 'closed';

type Pop3Command = 'CAPA' | 'AUTH' | 'USER' | 'PASS' | 'QUIT' | 'STAT' | 'LIST' | 'UIDL' | 'RETR' | 'TOP' | 'DELE' | 'RSET' | 'NOOP';

/** Which commands each state accepts. USER and PASS are "known" so they get a clear refusal, not "unknown command". */
const commandsByState: Record<Pop3State, ReadonlySet<Pop3Command>> = {
  authorization: new Set(['CAPA', 'AUTH', 'USER', 'PASS', 'QUIT']),
  sasl: new Set(),
  transaction: new Set(['CAPA', 'STAT', 'LIST', 'UIDL', 'RETR', 'TOP', 'DELE', 'RSET', 'NOOP', 'QUIT']),
  closed: new Set(),
};

/**
 * Longest line read. RFC 2449 §4 caps commands at 255 octets, but an XOAUTH2 response carries a JWT of a
 * few KB (AUTH's initial response or the line after `+ `), so the reader allows that and
 * `MAX_COMMAND_OCTETS` is enforced for every other command.
 */
export const MAX_POP3_LINE_BYTES = 32 * 1024;
const MAX_COMMAND_OCTETS = 255 - 2; // without CRLF
/** Errors (bad commands, failed logins) before the server gives up on a client. */
const MAX_ERRORS = 10;

/** Replies a client (the relay) may branch on, copied from Exchange Online where it has one. */
const replies = {
  greeting: '+OK The xoauth2-relay sandbox POP3 service is ready.',
  authFailed: '-ERR Authentication failure: unknown user name or bad password.',
  authCanceled: '-ERR Authentication canceled.',
  authOk: '+OK User successfully authenticated.',
  basicAuthRefused: '-ERR Basic authentication is not supported: use AUTH XOAUTH2.',
  inUse: '-ERR [IN-USE] Unable to lock maildrop: another session holds it.',
  badState: '-ERR Command is not valid in this state.',
  unknown: '-ERR Unknown command.',
  syntax: '-ERR Protocol error: bad arguments.',
  tooLong: '-ERR Line too long.',
  tooManyErrors: '-ERR Too many errors, closing connection.',
  noSuchMessage: '-ERR No such message.',
  deleted: '-ERR Message already deleted.',
  storeFailed: '-ERR [SYS/TEMP] Mailbox temporarily unavailable.',
} as const;

type Handler = (session: Pop3Session, args: string[]) => Promise<void> | void;

/** Runs a session on an established (TLS) socket until the client quits or the connection ends. */
export async function runPop3Session(socket: Socket, ctx: Pop3SessionContext, connectionId: string): Promise<void> {
  const session = new Pop3Session(socket, ctx, ctx.logger.child({ protocol: 'pop3', connection: connectionId }));
  try {
    session.send(replies.greeting);
    for await (const line of commandLines(socket, MAX_POP3_LINE_BYTES)) {
      if (line.kind === 'overlong') session.refuse(replies.tooLong);
      else await session.handleLine(line.text);
      if (session.state === 'closed') break;
    }
  } catch (err) {
    session.log.debug(errorFields(err), 'connection ended abnormally');
  } finally {
    session.release();
    if (!socket.destroyed) socket.end();
  }
}

class Pop3Session {
  state: Pop3State = 'authorization';
  private maildrop: Maildrop | undefined;
  private errors = 0;

  constructor(
    private readonly socket: Socket,
    readonly ctx: Pop3SessionContext,
    readonly log: Logger,
  ) {}

  send(line: string): void {
    if (!this.socket.destroyed) this.socket.write(`${line}\r\n`);
  }

  /** Sends a multi-line response (RFC 1939 §3): status line, lines, terminating ".". */
  sendLines(status: string, lines: readonly string[]): void {
    this.send([status, ...lines, '.'].join('\r\n'));
  }

  /** An `-ERR` for something the client did wrong; too many end the session. */
  refuse(reply: string): void {
    this.errors += 1;
    if (this.errors >= MAX_ERRORS) {
      this.send(replies.tooManyErrors);
      this.state = 'closed';
      return;
    }
    this.send(reply);
  }

  async handleLine(text: string): Promise<void> {
    if (this.state === 'sasl') return this.onSaslResponse(text);
    const [word = '', ...args] = text.split(' ');
    const keyword = word.toUpperCase() as Pop3Command;
    // Keywords are 3–4 printable characters (RFC 1939 §3); anything else is noise, not a command.
    const handler = /^[A-Z]{3,4}$/.test(keyword) ? Object.hasOwn(handlers, keyword) && handlers[keyword] : undefined;
    this.log.debug({ command: handler ? keyword : '(unknown)' }, 'command');
    if (!handler) return this.refuse(replies.unknown);
    if (!commandsByState[this.state].has(keyword)) return this.refuse(replies.badState);
    if (keyword !== 'AUTH' && text.length > MAX_COMMAND_OCTETS) return this.refuse(replies.tooLong);
    if (/[\u0000-\u001f\u007f-\u00ff]/.test(text)) return this.refuse(replies.syntax);
    await handler(this, args);
  }

  /** RFC 5034 §4: the client's answer to `+ `; `*` cancels. */
  private async onSaslResponse(text: string): Promise<void> {
    this.state = 'authorization';
    if (text === '*') return this.refuse(replies.authCanceled);
    await this.authenticate(text);
  }

  async authenticate(xoauth2: string): Promise<void> {
    const verdict = await this.ctx.tokens.checkXOAuth2(xoauth2, 'pop3');
    const mailbox = verdict.accepted ? mailboxDirectoryName(verdict.principal.mailbox) : null;
    if (!verdict.accepted || mailbox === null) {
      this.log.info({ reason: verdict.accepted ? 'mailbox name unusable' : verdict.reason }, 'authentication refused');
      return this.refuse(replies.authFailed);
    }
    if (!this.ctx.locks.acquire(mailbox)) return this.refuse(replies.inUse);
    try {
      this.maildrop = await Maildrop.open(this.ctx.maildir, mailbox);
    } catch (err) {
      this.ctx.locks.release(mailbox);
      this.log.error(errorFields(err), 'cannot read the mailbox');
      return this.send(replies.storeFailed);
    }
    this.log.info({ mailbox, subject: verdict.principal.subject, kind: verdict.principal.kind }, 'authenticated');
    this.state = 'transaction';
    this.send(replies.authOk);
  }

  /** The open maildrop; only called from TRANSACTION-state handlers, where there always is one. */
  get drop(): Maildrop {
    if (!this.maildrop) throw new Error('no maildrop outside the TRANSACTION state');
    return this.maildrop;
  }

  /** The message a numeric argument names, having answered `-ERR` if there is none. */
  message(arg: string | undefined): MaildropEntry | undefined {
    if (arg === undefined || !/^[1-9][0-9]{0,8}$/.test(arg)) {
      this.refuse(replies.syntax);
      return undefined;
    }
    const found = this.drop.lookup(Number(arg));
    if (found === 'no-such-message') this.refuse(replies.noSuchMessage);
    else if (found === 'deleted') this.refuse(replies.deleted);
    else return found;
    return undefined;
  }

  /** Streams one message as a multi-line response, dot-stuffed, with back-pressure from the socket. */
  async streamMessage(entry: MaildropEntry, bodyLines?: number): Promise<void> {
    const content = await this.drop.read(entry);
    if (!content) return this.refuse(replies.noSuchMessage);
    this.send(`+OK ${entry.size} octets`);
    await pipeline(content, new Pop3MultilineEncoder(bodyLines === undefined ? {} : { bodyLines }), this.socket, { end: false });
  }

  /** QUIT: UPDATE state in TRANSACTION (RFC 1939 §6), plain goodbye in AUTHORIZATION (§4). */
  async quit(): Promise<void> {
    const drop = this.maildrop;
    this.state = 'closed';
    if (!drop) return this.send('+OK Goodbye.');
    const failures = await drop.commit();
    const left = (await this.ctx.maildir.list(drop.mailbox)).length;
    this.send(failures ? `-ERR Some deleted messages not removed (${failures}).` : `+OK Goodbye (${left} messages left).`);
  }

  /** Lets another session open the maildrop; a session that ends without QUIT deletes nothing (RFC 1939 §6). */
  release(): void {
    if (this.maildrop) this.ctx.locks.release(this.maildrop.mailbox);
    this.maildrop = undefined;
    this.state = 'closed';
  }
}

function octetsLine(count: number, octets: number): string {
  return `+OK ${count} messages (${octets} octets)`;
}

const handlers: Record<Pop3Command, Handler> = {
  CAPA(session) {
    // RFC 2449 §5. USER is not listed: there is no basic authentication (RFC 2449 §6.2).
    const sasl = session.state === 'authorization' ? ['SASL XOAUTH2'] : [];
    session.sendLines('+OK Capability list follows', ['TOP', 'UIDL', 'RESP-CODES', 'PIPELINING', ...sasl, 'IMPLEMENTATION xoauth2-relay-sandbox']);
  },
  async AUTH(session, args) {
    const [mechanism, initialResponse, ...extra] = args;
    if (mechanism === undefined || mechanism === '') return session.sendLines('+OK', ['XOAUTH2']);
    if (mechanism.toUpperCase() !== 'XOAUTH2') return session.refuse('-ERR Unrecognized authentication type.');
    if (extra.length) return session.refuse(replies.syntax);
    if (initialResponse === undefined) {
      session.state = 'sasl';
      return session.send('+ ');
    }
    await session.authenticate(initialResponse === '=' ? '' : initialResponse); // RFC 5034 §4: "=" is empty
  },
  USER(session) {
    session.refuse(replies.basicAuthRefused);
  },
  PASS(session) {
    session.refuse(replies.basicAuthRefused);
  },
  QUIT(session) {
    return session.quit();
  },
  STAT(session, args) {
    if (args.length) return session.refuse(replies.syntax);
    const { count, octets } = session.drop.totals();
    session.send(`+OK ${count} ${octets}`);
  },
  LIST(session, args) {
    if (args.length > 1) return session.refuse(replies.syntax);
    if (args.length === 1) {
      const entry = session.message(args[0]);
      if (entry) session.send(`+OK ${entry.number} ${entry.size}`);
      return;
    }
    const { count, octets } = session.drop.totals();
    session.sendLines(octetsLine(count, octets), session.drop.visible().map((e) => `${e.number} ${e.size}`));
  },
  UIDL(session, args) {
    if (args.length > 1) return session.refuse(replies.syntax);
    if (args.length === 1) {
      const entry = session.message(args[0]);
      if (entry) session.send(`+OK ${entry.number} ${entry.uid}`);
      return;
    }
    session.sendLines('+OK', session.drop.visible().map((e) => `${e.number} ${e.uid}`));
  },
  async RETR(session, args) {
    if (args.length !== 1) return session.refuse(replies.syntax);
    const entry = session.message(args[0]);
    if (entry) await session.streamMessage(entry);
  },
  async TOP(session, args) {
    const [number, lines] = args;
    if (args.length !== 2 || lines === undefined || !/^[0-9]{1,9}$/.test(lines)) return session.refuse(replies.syntax);
    const entry = session.message(number);
    if (entry) await session.streamMessage(entry, Number(lines));
  },
  DELE(session, args) {
    if (args.length !== 1) return session.refuse(replies.syntax);
    const entry = session.message(args[0]);
    if (!entry) return;
    session.drop.markDeleted(entry);
    session.send(`+OK Message ${entry.number} deleted.`);
  },
  RSET(session, args) {
    if (args.length) return session.refuse(replies.syntax);
    session.drop.unmarkAll();
    const { count, octets } = session.drop.totals();
    session.send(octetsLine(count, octets));
  },
  NOOP(session, args) {
    if (args.length) return session.refuse(replies.syntax);
    session.send('+OK');
  },
};
