/**
 * Reads one whole IMAP command from a device before login: the first line, then for each literal at the end of
 * a line its bytes (after a `+` continuation for a synchronising `{n}`; straight away for `{n+}`, RFC 7888) and
 * the line that continues the command. Literals are capped per command (`maxLiteralBytes`), so `{999999999}`
 * costs nothing: a synchronising one is refused before the client sends it, a non-synchronising one ends the
 * connection (its bytes cannot be skipped safely).
 */
import { RelayError } from '../errors.js';
import type { DeviceSession } from '../transport/device-session.js';
import { ArgumentParser, isProblem, splitCommandLine, type ImapCommand } from './imap-syntax.js';

export type CommandRead =
  | { kind: 'command'; command: ImapCommand }
  /** Answer `tag BAD reason` (or `* BAD` without a usable tag) and read on. */
  | { kind: 'bad'; tag: string | null; reason: string }
  /** Answer with the error's reply; `fatal`: then close (the client is sending bytes we will not read). */
  | { kind: 'refused'; tag: string; error: RelayError; fatal: boolean }
  | { kind: 'closed' };

/** More literals than any pre-login command needs (LOGIN has two; ID a handful). */
const MAX_LITERALS = 16;

/**
 * Whether the command `name` may have its synchronising literal: null yes; a RelayError refuses it with that
 * error's reply (`LOGIN {n}` before STARTTLS: PRIVACYREQUIRED), a string with `BAD <string>`. Asked before the
 * `+` continuation is sent, so a device is never invited to send a password the relay will refuse to read.
 */
export type LiteralDecision = (name: string) => RelayError | string | null;

/** The next command; throws RelayError LINE_TOO_LONG for an overlong line. */
export async function readImapCommand(session: DeviceSession, mayContinue: LiteralDecision = () => null): Promise<CommandRead> {
  const first = await session.reader.readLine();
  if (first === null) return { kind: 'closed' };
  if (first.trim() === '') return { kind: 'bad', tag: null, reason: 'Empty command line' };
  const head = splitCommandLine(first);
  if ('problem' in head) return { kind: 'bad', tag: head.tag, reason: head.problem };
  const parser = new ArgumentParser();
  let budget = session.ctx.limits.maxLiteralBytes;
  let fragment = head.rest;
  for (let literals = 0; ; literals += 1) {
    const announced = parser.feed(fragment);
    if (isProblem(announced)) return { kind: 'bad', tag: head.tag, reason: announced.problem };
    if (announced === null) break;
    if (announced.size > budget || literals >= MAX_LITERALS) {
      const error = new RelayError('LITERAL_TOO_LARGE', `${head.name}: literal of ${announced.size} bytes (${budget} left of ${session.ctx.limits.maxLiteralBytes})`);
      return { kind: 'refused', tag: head.tag, error, fatal: !announced.synchronizing };
    }
    if (announced.synchronizing) {
      // RFC 9051 §7.5: a server that will not accept the literal answers the tag instead of "+"; the client
      // then sends neither the literal nor the rest of the command.
      const refusal = mayContinue(head.name);
      if (typeof refusal === 'string') return { kind: 'bad', tag: head.tag, reason: refusal };
      if (refusal) return { kind: 'refused', tag: head.tag, error: refusal, fatal: false };
    }
    budget -= announced.size;
    if (announced.synchronizing) session.send('+ Ready for literal data');
    const bytes = await session.reader.readBytes(announced.size);
    if (bytes === null) return { kind: 'closed' };
    parser.addLiteral(bytes.toString('utf8'));
    const next = await session.reader.readLine();
    if (next === null) return { kind: 'closed' };
    fragment = next;
  }
  const args = parser.finish();
  if (isProblem(args)) return { kind: 'bad', tag: head.tag, reason: args.problem };
  return { kind: 'command', command: { tag: head.tag, name: head.name, args } };
}
