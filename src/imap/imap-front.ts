/**
 * The IMAP front (RFC 9051 / RFC 3501 before login): greets with the capabilities the relay accepts, answers
 * CAPABILITY, NOOP, ID, LOGOUT and STARTTLS itself, takes LOGIN (atom, quoted, literal) and AUTHENTICATE PLAIN /
 * LOGIN (SASL-IR or continuations, `*` cancels), verifies the device locally, logs in upstream with XOAUTH2 and
 * answers the device's tag with the upstream's post-login capabilities; then the session is spliced and nothing
 * is parsed any more. What each state allows is the table in imap-states.ts; handlers are the map below.
 */
import { RelayError, isRelayError } from '../errors.js';
import type { DeviceSession } from '../transport/device-session.js';
import { plainLoginRule } from '../transport/login-tls-rule.js';
import { isDeviceSaslMechanism, runSaslExchange } from '../transport/sasl-exchange.js';
import { readImapCommand } from './imap-command-reader.js';
import { imapStates, initialImapState, postLoginCommands, type ImapCommandName, type ImapState, type ReadingState } from './imap-states.js';
import { astring, type ImapArgument, type ImapCommand } from './imap-syntax.js';
import { imapUpstreamDialect } from './imap-upstream.js';

interface ImapFront {
  session: DeviceSession;
  state: ReadingState;
}

type Handler = (front: ImapFront, command: ImapCommand) => Promise<ImapState>;

const handlers: Record<ImapCommandName, Handler> = {
  CAPABILITY: onCapability,
  NOOP: onNoop,
  LOGOUT: onLogout,
  ID: onId,
  STARTTLS: onStartTls,
  LOGIN: onLogin,
  AUTHENTICATE: onAuthenticate,
};

/** Runs one device connection: the pre-login dialogue, then (after a login) the splice. */
export async function serveImap(session: DeviceSession): Promise<void> {
  const front: ImapFront = { session, state: initialImapState(plainLoginRule(session.ctx.tlsMode, session.ctx.loginBeforeTls), session.secure) };
  session.send(`* OK [CAPABILITY ${capabilities(front)}] xoauth2-relay IMAP ready`);
  for (;;) {
    let read;
    try {
      read = await readImapCommand(session, (name) => literalDecision(front, name));
    } catch (err) {
      if (isRelayError(err)) return session.refuse(err); // LINE_TOO_LONG
      throw err;
    }
    if (read.kind === 'closed') return;
    if (session.tooManyCommands()) return;
    if (read.kind === 'bad') {
      session.log.debug({ reason: read.reason }, 'invalid command');
      session.send(`${read.tag ?? '*'} BAD ${read.reason}`);
      if (session.tooManyErrors()) return;
      continue;
    }
    if (read.kind === 'refused') {
      session.logFailure(read.error, 'command refused');
      session.send(`${read.tag} ${read.error.replyFor('imap')}`);
      if (read.fatal) return session.close();
      if (session.tooManyErrors()) return;
      continue;
    }
    const next = await dispatch(front, read.command);
    if (next === 'done') return;
    front.state = next;
  }
}

async function dispatch(front: ImapFront, command: ImapCommand): Promise<ImapState> {
  const { session } = front;
  const rules = imapStates[front.state];
  const name = command.name as ImapCommandName;
  session.log.debug({ tag: command.tag, command: command.name }, 'C:');
  if (rules.allowed.includes(name)) return handlers[name](front, command);
  if (rules.needTls.includes(name)) {
    const err = new RelayError('TLS_REQUIRED', `${name} before STARTTLS`);
    session.logFailure(err, 'login refused');
    session.send(`${command.tag} ${err.replyFor('imap')}`);
    return front.state;
  }
  if (name === 'STARTTLS') {
    session.send(`${command.tag} BAD STARTTLS not available: ${session.secure ? 'TLS is already active' : 'this listener has no TLS'}`);
    return front.state;
  }
  if (postLoginCommands.has(command.name)) {
    session.send(`${command.tag} BAD ${command.name} not allowed before login`);
    return front.state;
  }
  session.send(`${command.tag} BAD Unknown command`);
  return session.tooManyErrors() ? 'done' : front.state;
}

/** The state table's answer, given before a synchronising literal is invited (see `LiteralDecision`). */
function literalDecision(front: ImapFront, name: string): RelayError | string | null {
  const rules = imapStates[front.state];
  const command = name as ImapCommandName;
  if (rules.needTls.includes(command)) return new RelayError('TLS_REQUIRED', `${name} with a literal before STARTTLS`);
  if (!rules.allowed.includes(command)) return postLoginCommands.has(name) ? `${name} not allowed before login` : 'Unknown command';
  if (isLogin(command)) return loginRefusal(front.session);
  return null;
}

function isLogin(name: ImapCommandName): boolean {
  return name === 'LOGIN' || name === 'AUTHENTICATE';
}

/** AUTH_THROTTLED when this address may not try now: said before any password is asked for. */
function loginRefusal(session: DeviceSession): RelayError | null {
  const waitMs = session.loginBlockedFor();
  return waitMs > 0 ? new RelayError('AUTH_THROTTLED', `${Math.ceil(waitMs / 1000)} s left for ${session.remote}`) : null;
}

function capabilities(front: ImapFront): string {
  return imapStates[front.state].capabilities.join(' ');
}

/** BAD for a command that takes no arguments but got some; true when answered. */
function rejectArguments(front: ImapFront, command: ImapCommand): boolean {
  if (command.args.length === 0) return false;
  front.session.send(`${command.tag} BAD ${command.name} takes no arguments`);
  return true;
}

async function onCapability(front: ImapFront, command: ImapCommand): Promise<ImapState> {
  if (rejectArguments(front, command)) return front.state;
  front.session.send(`* CAPABILITY ${capabilities(front)}`);
  front.session.send(`${command.tag} OK CAPABILITY completed`);
  return front.state;
}

async function onNoop(front: ImapFront, command: ImapCommand): Promise<ImapState> {
  if (rejectArguments(front, command)) return front.state;
  front.session.send(`${command.tag} OK NOOP completed`);
  return front.state;
}

async function onLogout(front: ImapFront, command: ImapCommand): Promise<ImapState> {
  if (rejectArguments(front, command)) return front.state;
  front.session.send('* BYE xoauth2-relay logging out');
  front.session.send(`${command.tag} OK LOGOUT completed`);
  front.session.close();
  return 'done';
}

/** RFC 2971: the device may tell who it is (worth a debug line: it names the model); the relay answers NIL. */
async function onId(front: ImapFront, command: ImapCommand): Promise<ImapState> {
  const [params, extra] = command.args;
  const isNil = params?.kind === 'atom' && params.value.toUpperCase() === 'NIL';
  if (!params || extra || (!isNil && params.kind !== 'list')) {
    front.session.send(`${command.tag} BAD ID takes one parameter list or NIL`);
    return front.state;
  }
  if (params.kind === 'list') front.session.log.debug({ id: idFields(params.items) }, 'device identified itself');
  front.session.send('* ID NIL');
  front.session.send(`${command.tag} OK ID completed`);
  return front.state;
}

function idFields(items: ImapArgument[]): Record<string, string> {
  const fields: Record<string, string> = {};
  for (let i = 0; i + 1 < items.length && i < 60; i += 2) {
    const key = astring(items[i]);
    const value = astring(items[i + 1]);
    if (key !== null && value !== null) fields[key.slice(0, 64)] = value.slice(0, 256);
  }
  return fields;
}

/** RFC 9051 §6.2.1; the upgrade happens in the same tick as the OK, so no byte is read in between. */
async function onStartTls(front: ImapFront, command: ImapCommand): Promise<ImapState> {
  if (rejectArguments(front, command)) return front.state;
  front.session.send(`${command.tag} OK Begin TLS negotiation now`);
  return (await front.session.upgradeTls()) ? 'not-authenticated' : 'done';
}

async function onLogin(front: ImapFront, command: ImapCommand): Promise<ImapState> {
  const [userArg, passArg] = command.args;
  const username = astring(userArg);
  const password = astring(passArg);
  if (command.args.length !== 2 || username === null || password === null) {
    front.session.send(`${command.tag} BAD LOGIN takes a user name and a password`);
    return front.state;
  }
  return logInAndSplice(front, command.tag, username, password);
}

async function onAuthenticate(front: ImapFront, command: ImapCommand): Promise<ImapState> {
  const { session } = front;
  const [mechArg, irArg, extra] = command.args;
  const mechanism = mechArg?.kind === 'atom' ? mechArg.value.toUpperCase() : null;
  if (mechanism === null || extra || (irArg && irArg.kind !== 'atom')) {
    session.send(`${command.tag} BAD AUTHENTICATE takes a mechanism name and an optional initial response`);
    return front.state;
  }
  if (!isDeviceSaslMechanism(mechanism)) {
    session.send(`${command.tag} NO Unsupported authentication mechanism: use PLAIN or LOGIN`);
    return front.state;
  }
  const initial = irArg?.kind === 'atom' ? irArg.value : undefined;
  const refusal = initial === undefined ? loginRefusal(session) : null;
  if (refusal) {
    session.logFailure(refusal, 'login refused');
    session.send(`${command.tag} ${refusal.replyFor('imap')}`);
    return front.state;
  }
  const result = await runSaslExchange(mechanism, initial, async (challenge) => {
    session.send(`+ ${challenge}`);
    return session.reader.readLine();
  });
  switch (result.outcome) {
    case 'closed':
      return 'done';
    case 'cancelled':
      session.send(`${command.tag} BAD Authentication cancelled`);
      return front.state;
    case 'malformed':
      session.log.debug({ reason: result.reason }, 'invalid SASL response');
      session.send(`${command.tag} BAD Invalid SASL response: ${result.reason}`);
      return session.tooManyErrors() ? 'done' : front.state;
    case 'credentials':
      return logInAndSplice(front, command.tag, result.username, result.password);
  }
}

/** Local verification, upstream XOAUTH2 login, the device's tagged OK, the splice. */
async function logInAndSplice(front: ImapFront, tag: string, username: string, password: string): Promise<ImapState> {
  const { session } = front;
  try {
    await session.authenticateDevice(username, password);
    const upstream = await session.openUpstream(imapUpstreamDialect);
    // RFC 9051 §7.1: the post-login capabilities in the OK spare the device a CAPABILITY round trip.
    session.send(upstream.login.length > 0 ? `${tag} OK [CAPABILITY ${upstream.login.join(' ')}] Logged in` : `${tag} OK Logged in`);
    await session.spliceTo(upstream);
    return 'done';
  } catch (err) {
    session.logFailure(err, session.device ? 'login failed upstream' : 'device login refused');
    const reply = isRelayError(err) ? err.replyFor('imap') : new RelayError('INTERNAL').replyFor('imap');
    session.send(reply.startsWith('BYE') ? `* ${reply}` : `${tag} ${reply}`);
    return front.state;
  }
}
