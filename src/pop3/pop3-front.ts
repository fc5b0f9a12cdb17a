/**
 * The POP3 front (RFC 1939 AUTHORIZATION state, RFC 2449 CAPA, RFC 5034 AUTH, RFC 2595 STLS): greets, answers CAPA,
 * NOOP, QUIT and STLS itself, takes USER/PASS and AUTH PLAIN / LOGIN (initial response or continuations, `*`
 * cancels), refuses APOP with a clear reason, verifies the device locally, logs in upstream with XOAUTH2 and
 * answers `+OK`; then the session is spliced and nothing is parsed any more. What each state allows is the table
 * in pop3-states.ts; handlers are the map below.
 */
import { RelayError, isRelayError } from '../errors.js';
import type { DeviceSession } from '../transport/device-session.js';
import { plainLoginRule } from '../transport/login-tls-rule.js';
import { deviceSaslMechanisms, isDeviceSaslMechanism, runSaslExchange } from '../transport/sasl-exchange.js';
import { initialPop3State, pop3States, transactionCommands, type Pop3CommandName, type Pop3State, type ReadingState } from './pop3-states.js';
import { pop3UpstreamDialect } from './pop3-upstream.js';

interface Pop3Front {
  session: DeviceSession;
  state: ReadingState;
  /** The USER argument, in `user-given`. */
  user: string | null;
}

interface Pop3Command {
  name: string;
  /** Everything after the keyword and one space, unchanged (a password may hold spaces). */
  argument: string;
}

type Handler = (front: Pop3Front, command: Pop3Command) => Promise<Pop3State>;

const handlers: Record<Pop3CommandName, Handler> = {
  CAPA: onCapa,
  STLS: onStls,
  USER: onUser,
  PASS: onPass,
  AUTH: onAuth,
  APOP: onApop,
  QUIT: onQuit,
  NOOP: onNoop,
};

/** RFC 1939 §3: keywords are 3 or 4 printable characters; anything else is not a POP3 command. */
export function parsePop3Command(line: string): Pop3Command | null {
  const m = /^([A-Za-z]{3,4})(?: (.*))?$/s.exec(line);
  if (!m) return null;
  return { name: m[1]!.toUpperCase(), argument: m[2] ?? '' };
}

/** Runs one device connection: the pre-login dialogue, then (after a login) the splice. */
export async function servePop3(session: DeviceSession): Promise<void> {
  const front: Pop3Front = { session, state: initialPop3State(plainLoginRule(session.ctx.tlsMode, session.ctx.loginBeforeTls), session.secure), user: null };
  session.send('+OK xoauth2-relay POP3 ready');
  for (;;) {
    let line: string | null;
    try {
      line = await session.reader.readLine();
    } catch (err) {
      if (isRelayError(err)) return session.refuse(err); // LINE_TOO_LONG
      throw err;
    }
    if (line === null) return;
    if (session.tooManyCommands()) return;
    const command = parsePop3Command(line);
    const next = command ? await dispatch(front, command) : unknown(front);
    if (next === 'done') return;
    front.state = next;
  }
}

function unknown(front: Pop3Front): Pop3State {
  front.session.send('-ERR Unknown command');
  return front.session.tooManyErrors() ? 'done' : front.state;
}

async function dispatch(front: Pop3Front, command: Pop3Command): Promise<Pop3State> {
  const { session } = front;
  const rules = pop3States[front.state];
  const name = command.name as Pop3CommandName;
  session.log.debug({ command: command.name }, 'C:');
  if (rules.allowed.includes(name)) return handlers[name](front, command);
  if (rules.needTls.includes(name)) {
    const err = new RelayError('TLS_REQUIRED', `${name} before STLS`);
    session.logFailure(err, 'login refused');
    session.send(err.replyFor('pop3'));
    return front.state;
  }
  if (name === 'PASS') session.send('-ERR Send USER first');
  else if (name === 'STLS') session.send(`-ERR STLS not available: ${session.secure ? 'TLS is already active' : 'this listener has no TLS'}`);
  else if (transactionCommands.has(command.name)) session.send('-ERR Not logged in');
  else return unknown(front);
  return front.state;
}

async function onCapa(front: Pop3Front): Promise<Pop3State> {
  const { session } = front;
  session.send('+OK Capability list follows');
  for (const line of pop3States[front.state].capabilities) session.send(line);
  session.send('.');
  return front.state;
}

async function onNoop(front: Pop3Front): Promise<Pop3State> {
  front.session.send('+OK');
  return front.state;
}

async function onQuit(front: Pop3Front): Promise<Pop3State> {
  front.session.send('+OK xoauth2-relay signing off');
  front.session.close();
  return 'done';
}

/** RFC 1939 §7: APOP needs the plaintext password on the server side; the relay stores only scrypt hashes. */
async function onApop(front: Pop3Front): Promise<Pop3State> {
  front.session.send('-ERR APOP is not supported: use USER/PASS or AUTH PLAIN');
  return front.state;
}

/** RFC 2595 §4; the upgrade happens in the same tick as the +OK, so no byte is read in between. */
async function onStls(front: Pop3Front): Promise<Pop3State> {
  front.session.send('+OK Begin TLS negotiation now');
  return (await front.session.upgradeTls()) ? 'authorization' : 'done';
}

async function onUser(front: Pop3Front, command: Pop3Command): Promise<Pop3State> {
  if (command.argument === '') {
    front.session.send('-ERR USER needs a user name');
    return 'authorization';
  }
  front.user = command.argument;
  front.session.send('+OK Send PASS');
  return 'user-given';
}

async function onPass(front: Pop3Front, command: Pop3Command): Promise<Pop3State> {
  const user = front.user ?? '';
  front.user = null;
  if (command.argument === '') {
    front.session.send('-ERR PASS needs a password');
    return 'authorization';
  }
  return logInAndSplice(front, user, command.argument);
}

/** RFC 5034; `AUTH` alone lists the mechanisms (the RFC 1734 habit many clients still have). */
async function onAuth(front: Pop3Front, command: Pop3Command): Promise<Pop3State> {
  const { session } = front;
  const [mechanismText, initial, extra] = command.argument.split(' ');
  if (!mechanismText) {
    session.send('+OK');
    for (const mechanism of deviceSaslMechanisms) session.send(mechanism);
    session.send('.');
    return front.state;
  }
  const mechanism = mechanismText.toUpperCase();
  if (extra !== undefined) {
    session.send('-ERR AUTH takes a mechanism and an optional initial response');
    return front.state;
  }
  if (!isDeviceSaslMechanism(mechanism)) {
    session.send('-ERR Unsupported authentication mechanism: use PLAIN or LOGIN');
    return front.state;
  }
  const waitMs = initial === undefined ? session.loginBlockedFor() : 0;
  if (waitMs > 0) {
    // Said before the continuation: the device is not asked for a password the relay will not check now.
    const err = new RelayError('AUTH_THROTTLED', `${Math.ceil(waitMs / 1000)} s left for ${session.remote}`);
    session.logFailure(err, 'login refused');
    session.send(err.replyFor('pop3'));
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
      session.send('-ERR Authentication cancelled');
      return 'authorization';
    case 'malformed':
      session.log.debug({ reason: result.reason }, 'invalid SASL response');
      session.send(`-ERR Invalid SASL response: ${result.reason}`);
      return session.tooManyErrors() ? 'done' : 'authorization';
    case 'credentials':
      return logInAndSplice(front, result.username, result.password);
  }
}

/** Local verification, upstream XOAUTH2 login, `+OK` to the device, the splice. */
async function logInAndSplice(front: Pop3Front, username: string, password: string): Promise<Pop3State> {
  const { session } = front;
  try {
    await session.authenticateDevice(username, password);
    const upstream = await session.openUpstream(pop3UpstreamDialect);
    session.send('+OK Logged in');
    await session.spliceTo(upstream);
    return 'done';
  } catch (err) {
    session.logFailure(err, session.device ? 'login failed upstream' : 'device login refused');
    session.send(isRelayError(err) ? err.replyFor('pop3') : new RelayError('INTERNAL').replyFor('pop3'));
    return 'authorization';
  }
}
