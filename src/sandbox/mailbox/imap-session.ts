/**
 * One IMAP session of the sandbox mailbox: a minimal IMAP4rev1 (RFC 3501) over implicit TLS, like
 * outlook.office365.com:993, just enough for a client such as imapflow to AUTHENTICATE XOAUTH2 (SASL-IR,
 * RFC 4959), SELECT INBOX, FETCH messages and LOGOUT. INBOX is read-only: no flags, no STORE/EXPUNGE.
 * States and the commands each allows are a table; the commands are a handler map.
 */
import type { Socket } from 'node:net';
import type { Logger } from '../../log.js';
import { errorFields } from '../../log.js';
import { commandLines } from './command-lines.js';
import { mailboxDirectoryName, type Maildir } from './maildir.js';
import { writeFetchResponses } from './imap-fetch.js';
import {
  astring, inSequenceSet, listPatternMatches, parseCommandLine, parseFetchItems, parseSequenceSet, type ImapToken,
} from './imap-syntax.js';
import type { ImapMailboxView, ImapUidRegistry } from './imap-uids.js';
import type { AccessTokenChecker } from './token-check.js';

/** What every IMAP session shares. */
export interface ImapSessionContext {
  tokens: AccessTokenChecker;
  maildir: Maildir;
  uids: ImapUidRegistry;
  logger: Logger;
}

/** RFC 3501 §3 states, plus `sasl`: waiting for the answer to a `+` continuation (§6.2.2). */
export type ImapState = 'not-authenticated' | 'sasl' | 'authenticated' | 'selected' | 'logout';

type ImapCommand = 'CAPABILITY' | 'NOOP' | 'LOGOUT' | 'AUTHENTICATE' | 'LOGIN' | 'NAMESPACE' | 'LIST' | 'LSUB'
  | 'SELECT' | 'EXAMINE' | 'FETCH' | 'UID' | 'CLOSE' | 'UNSELECT' | 'CHECK';

const anyState: ImapCommand[] = ['CAPABILITY', 'NOOP', 'LOGOUT'];
const authenticatedState: ImapCommand[] = [...anyState, 'NAMESPACE', 'LIST', 'LSUB', 'SELECT', 'EXAMINE'];
const commandsByState: Record<ImapState, ReadonlySet<ImapCommand>> = {
  'not-authenticated': new Set([...anyState, 'AUTHENTICATE', 'LOGIN']),
  sasl: new Set(),
  authenticated: new Set(authenticatedState),
  selected: new Set([...authenticatedState, 'FETCH', 'UID', 'CLOSE', 'UNSELECT', 'CHECK']),
  logout: new Set(),
};

/** Long enough for an XOAUTH2 initial response carrying a JWT; RFC 7162 §4 asks servers for at least 8192 octets. */
const MAX_IMAP_LINE_BYTES = 32 * 1024;
const MAX_ERRORS = 10;
const INBOX = 'INBOX';

/** Exchange Online's (RFC 4959 SASL-IR; LOGINDISABLED because basic authentication is off). */
const CAPABILITIES_BEFORE_AUTH = 'IMAP4rev1 SASL-IR AUTH=XOAUTH2 LOGINDISABLED';
const CAPABILITIES_AFTER_AUTH = 'IMAP4rev1 NAMESPACE UNSELECT';

type Handler = (session: ImapSession, tag: string, args: ImapToken[]) => Promise<void> | void;

/** Runs a session on an established (TLS) socket until LOGOUT or the connection ends. */
export async function runImapSession(socket: Socket, ctx: ImapSessionContext, connectionId: string): Promise<void> {
  const session = new ImapSession(socket, ctx, ctx.logger.child({ protocol: 'imap', connection: connectionId }));
  try {
    session.send(`* OK [CAPABILITY ${CAPABILITIES_BEFORE_AUTH}] The xoauth2-relay sandbox IMAP4 service is ready.`);
    for await (const line of commandLines(socket, MAX_IMAP_LINE_BYTES)) {
      if (line.kind === 'overlong') session.refuse('*', 'BAD Line too long.');
      else await session.handleLine(line.text);
      if (session.state === 'logout') break;
    }
  } catch (err) {
    session.log.debug(errorFields(err), 'connection ended abnormally');
  } finally {
    if (!socket.destroyed) socket.end();
  }
}

class ImapSession {
  state: ImapState = 'not-authenticated';
  mailbox: string | undefined;
  view: ImapMailboxView | undefined;
  private saslTag: string | undefined;
  private errors = 0;

  constructor(
    readonly socket: Socket,
    readonly ctx: ImapSessionContext,
    readonly log: Logger,
  ) {}

  send(line: string): void {
    if (!this.socket.destroyed) this.socket.write(`${line}\r\n`);
  }

  /** A BAD or NO for something the client did wrong; too many end the session (RFC 3501 §7.1.5 BYE). */
  refuse(tag: string, reply: string): void {
    this.errors += 1;
    if (this.errors >= MAX_ERRORS) {
      this.send('* BYE Too many errors.');
      this.state = 'logout';
      return;
    }
    this.send(`${tag} ${reply}`);
  }

  async handleLine(text: string): Promise<void> {
    if (this.state === 'sasl') return this.onSaslResponse(text);
    if (/[\u0000-\u001f\u007f-\u00ff]/.test(text)) return this.refuse('*', 'BAD Invalid characters.');
    const parsed = parseCommandLine(text);
    if ('error' in parsed) return this.refuse(parsed.tag ?? '*', `BAD ${parsed.error}.`);
    const { tag, name, args } = parsed;
    const handler = Object.hasOwn(handlers, name) ? handlers[name as ImapCommand] : undefined;
    this.log.debug({ command: handler ? name : '(unknown)' }, 'command');
    if (!handler) return this.refuse(tag, 'BAD Command unknown or not supported.');
    if (!commandsByState[this.state].has(name as ImapCommand)) return this.refuse(tag, 'BAD Command received in invalid state.');
    await handler(this, tag, args);
  }

  beginSasl(tag: string): void {
    this.saslTag = tag;
    this.state = 'sasl';
    this.send('+ ');
  }

  /** RFC 3501 §6.2.2: the client's answer to `+`; `*` cancels with BAD. */
  private async onSaslResponse(text: string): Promise<void> {
    const tag = this.saslTag ?? '*';
    this.state = 'not-authenticated';
    this.saslTag = undefined;
    if (text === '*') return this.refuse(tag, 'BAD AUTHENTICATE aborted.');
    await this.authenticate(tag, text);
  }

  async authenticate(tag: string, xoauth2: string): Promise<void> {
    const verdict = await this.ctx.tokens.checkXOAuth2(xoauth2, 'imap');
    const mailbox = verdict.accepted ? mailboxDirectoryName(verdict.principal.mailbox) : null;
    if (!verdict.accepted || mailbox === null) {
      this.log.info({ reason: verdict.accepted ? 'mailbox name unusable' : verdict.reason }, 'authentication refused');
      return this.refuse(tag, 'NO AUTHENTICATE failed.'); // Exchange Online's words
    }
    this.log.info({ mailbox, subject: verdict.principal.subject, kind: verdict.principal.kind }, 'authenticated');
    this.mailbox = mailbox;
    this.state = 'authenticated';
    this.send(`${tag} OK [CAPABILITY ${CAPABILITIES_AFTER_AUTH}] AUTHENTICATE completed.`);
  }

  /** SELECT/EXAMINE INBOX: a fixed view of the mailbox (RFC 3501 §6.3.1). */
  async select(tag: string, args: ImapToken[], command: string): Promise<void> {
    const name = astring(args[0]);
    if (name === null || args.length !== 1) return this.refuse(tag, 'BAD Syntax: SELECT mailbox.');
    this.state = 'authenticated'; // §6.3.1: a failed SELECT leaves no mailbox selected
    this.view = undefined;
    if (name.toUpperCase() !== INBOX) return this.refuse(tag, 'NO [NONEXISTENT] Mailbox does not exist.');
    const view = this.ctx.uids.view(this.mailbox!, await this.ctx.maildir.list(this.mailbox!));
    this.send('* FLAGS ()');
    this.send(`* ${view.messages.length} EXISTS`);
    this.send('* 0 RECENT');
    this.send(`* OK [UIDVALIDITY ${view.uidValidity}] UIDs valid.`);
    this.send(`* OK [UIDNEXT ${view.uidNext}] Predicted next UID.`);
    this.send('* OK [PERMANENTFLAGS ()] No permanent flags permitted.');
    this.view = view;
    this.state = 'selected';
    this.send(`${tag} OK [READ-ONLY] ${command} completed.`);
  }

  /** FETCH and UID FETCH (RFC 3501 §6.4.5, §6.4.8). */
  async fetch(tag: string, args: ImapToken[], byUid: boolean): Promise<void> {
    const command = byUid ? 'UID FETCH' : 'FETCH';
    const setText = args[0]?.kind === 'atom' ? args[0].value : '';
    const set = parseSequenceSet(setText);
    const items = parseFetchItems(args[1]);
    if (!set || !items || args.length !== 2) return this.refuse(tag, `BAD Syntax or unsupported item: ${command} set items.`);
    const messages = this.view!.messages;
    const largest = byUid ? (messages.at(-1)?.uid ?? 0) : messages.length;
    const chosen = messages.filter((m) => inSequenceSet(set, byUid ? m.uid : m.sequence, largest));
    if (!byUid && set.some(([a, b]) => (a !== '*' && a > largest) || (b !== '*' && b > largest))) {
      return this.refuse(tag, 'BAD Invalid message sequence number.'); // §6.4.5: out of range is an error for FETCH, not UID FETCH
    }
    const outcome = await writeFetchResponses(this.socket, this.ctx.maildir, this.mailbox!, chosen, items, byUid);
    this.send(outcome.vanished ? `${tag} NO Some messages were deleted meanwhile.` : `${tag} OK ${command} completed.`);
  }
}

function quoted(text: string): string {
  return `"${text.replace(/["\\]/g, '\\$&')}"`;
}

const handlers: Record<ImapCommand, Handler> = {
  CAPABILITY(session, tag) {
    session.send(`* CAPABILITY ${session.state === 'not-authenticated' ? CAPABILITIES_BEFORE_AUTH : CAPABILITIES_AFTER_AUTH}`);
    session.send(`${tag} OK CAPABILITY completed.`);
  },
  NOOP(session, tag) {
    session.send(`${tag} OK NOOP completed.`);
  },
  LOGOUT(session, tag) {
    session.send('* BYE Logging out.');
    session.send(`${tag} OK LOGOUT completed.`);
    session.state = 'logout';
  },
  async AUTHENTICATE(session, tag, args) {
    const mechanism = astring(args[0])?.toUpperCase();
    if (mechanism !== 'XOAUTH2') return session.refuse(tag, 'NO Unsupported authentication mechanism.');
    if (args.length > 2) return session.refuse(tag, 'BAD Syntax: AUTHENTICATE mechanism [initial-response].');
    const initial = astring(args[1]);
    if (initial === null) return session.beginSasl(tag);
    await session.authenticate(tag, initial === '=' ? '' : initial); // RFC 4959 §3: "=" is an empty response
  },
  LOGIN(session, tag) {
    // LOGINDISABLED is advertised (RFC 3501 §6.2.3); a client that tries anyway gets Exchange's refusal.
    session.refuse(tag, 'NO LOGIN failed.');
  },
  NAMESPACE(session, tag) {
    session.send('* NAMESPACE (("" "/")) NIL NIL'); // RFC 2342
    session.send(`${tag} OK NAMESPACE completed.`);
  },
  LIST(session, tag, args) {
    const reference = astring(args[0]);
    const pattern = astring(args[1]);
    if (reference === null || pattern === null || args.length !== 2) return session.refuse(tag, 'BAD Syntax: LIST reference mailbox.');
    // An empty pattern asks for the hierarchy delimiter (RFC 3501 §6.3.8).
    if (pattern === '') session.send('* LIST (\\Noselect) "/" ""');
    else if (listPatternMatches(reference + pattern, INBOX)) session.send(`* LIST (\\HasNoChildren) "/" ${quoted(INBOX)}`);
    session.send(`${tag} OK LIST completed.`);
  },
  LSUB(session, tag, args) {
    const pattern = astring(args[1]);
    if (pattern && listPatternMatches(pattern, INBOX)) session.send(`* LSUB () "/" ${quoted(INBOX)}`);
    session.send(`${tag} OK LSUB completed.`);
  },
  SELECT(session, tag, args) {
    return session.select(tag, args, 'SELECT');
  },
  EXAMINE(session, tag, args) {
    return session.select(tag, args, 'EXAMINE');
  },
  FETCH(session, tag, args) {
    return session.fetch(tag, args, false);
  },
  UID(session, tag, args) {
    const sub = astring(args[0])?.toUpperCase();
    if (sub !== 'FETCH') return session.refuse(tag, 'BAD Only UID FETCH is supported.');
    return session.fetch(tag, args.slice(1), true);
  },
  CLOSE(session, tag) {
    // Read-only: nothing to expunge (RFC 3501 §6.4.2).
    session.view = undefined;
    session.state = 'authenticated';
    session.send(`${tag} OK CLOSE completed.`);
  },
  UNSELECT(session, tag) {
    session.view = undefined;
    session.state = 'authenticated';
    session.send(`${tag} OK UNSELECT completed.`); // RFC 3691
  },
  CHECK(session, tag) {
    session.send(`${tag} OK CHECK completed.`);
  },
};
