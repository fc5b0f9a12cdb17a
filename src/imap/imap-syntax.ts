/**
 * IMAP command syntax before login (RFC 9051 §9, RFC 3501 §9): tag, command name, and arguments made of atoms,
 * quoted strings (`\"` and `\\` escapes), literals (`{n}` synchronising, `{n+}` non-synchronising, RFC 7888),
 * and parenthesised lists. Pure: the reader feeds it one line fragment at a time and inserts each literal's
 * bytes where the fragment announced it. Arguments may carry a password: never log them.
 */

export type ImapArgument =
  | { kind: 'atom'; value: string }
  | { kind: 'string'; value: string }
  | { kind: 'list'; items: ImapArgument[] };

export interface ImapCommand {
  tag: string;
  /** Upper-cased. */
  name: string;
  args: ImapArgument[];
}

/** A literal announced at the end of a fragment. */
export interface LiteralAnnouncement {
  size: number;
  /** `{n}`: the client waits for a continuation before sending the bytes; `{n+}`: it does not. */
  synchronizing: boolean;
}

/** A syntax problem: the command gets a BAD reply with `reason`. */
export interface SyntaxProblem {
  problem: string;
}

// RFC 9051: tag = 1*<any ASTRING-CHAR except "+">; ASTRING-CHAR = ATOM-CHAR / "]";
// ATOM-CHAR excludes "(" ")" "{" SP CTL "%" "*" DQUOTE "\".
const TAG = /^[\x21\x23\x24\x26\x27\x2c-\x5b\x5d-\x7a\x7c-\x7e]+$/;
const COMMAND_NAME = /^[A-Za-z][A-Za-z0-9]{0,31}$/;
const LITERAL = /^\{(\d{1,10})(\+?)\}$/;
const ATOM_END = new Set([' ', '(', ')', '"']);
const CONTROL = /[\x00-\x1f\x7f]/;

/** Splits `tag SP name [SP rest]`; the rest is parsed by an `ArgumentParser`. */
export function splitCommandLine(line: string): { tag: string; name: string; rest: string } | { tag: string | null; problem: string } {
  const firstSpace = line.indexOf(' ');
  const tag = firstSpace < 0 ? line : line.slice(0, firstSpace);
  if (!TAG.test(tag)) return { tag: null, problem: 'Invalid tag' };
  if (firstSpace < 0) return { tag, problem: 'Missing command' };
  const afterTag = line.slice(firstSpace + 1);
  const nameEnd = afterTag.indexOf(' ');
  const name = nameEnd < 0 ? afterTag : afterTag.slice(0, nameEnd);
  if (!COMMAND_NAME.test(name)) return { tag, problem: 'Invalid command name' };
  return { tag, name: name.toUpperCase(), rest: nameEnd < 0 ? '' : afterTag.slice(nameEnd + 1) };
}

/** Parses the argument fragments of one command, literal by literal. */
export class ArgumentParser {
  private readonly stack: ImapArgument[][] = [[]];

  /**
   * Parses one fragment (the text between the command name or a literal and the next line ending). Returns the
   * literal the fragment ends with, null when it ends the command, or a problem.
   */
  feed(fragment: string): LiteralAnnouncement | null | SyntaxProblem {
    let i = 0;
    while (i < fragment.length) {
      const c = fragment[i]!;
      if (c === ' ') {
        i += 1;
      } else if (c === '"') {
        const quoted = readQuoted(fragment, i);
        if ('problem' in quoted) return quoted;
        this.push({ kind: 'string', value: quoted.value });
        i = quoted.next;
      } else if (c === '{') {
        const m = LITERAL.exec(fragment.slice(i));
        if (!m) return { problem: 'Invalid literal (expected {n} or {n+} at the end of the line)' };
        return { size: Number(m[1]), synchronizing: m[2] !== '+' };
      } else if (c === '(') {
        this.stack.push([]);
        i += 1;
      } else if (c === ')') {
        if (this.stack.length < 2) return { problem: 'Unbalanced parenthesis' };
        const items = this.stack.pop()!;
        this.push({ kind: 'list', items });
        i += 1;
      } else {
        let end = i;
        while (end < fragment.length && !ATOM_END.has(fragment[end]!)) end += 1;
        const atom = fragment.slice(i, end);
        if (CONTROL.test(atom)) return { problem: 'Control character in an atom' };
        this.push({ kind: 'atom', value: atom });
        i = end;
      }
    }
    return null;
  }

  /** Inserts a literal's content where the last fragment announced it. */
  addLiteral(value: string): void {
    this.push({ kind: 'string', value });
  }

  /** The arguments, once the last fragment was fed. */
  finish(): ImapArgument[] | SyntaxProblem {
    if (this.stack.length !== 1) return { problem: 'Unbalanced parenthesis' };
    return this.stack[0]!;
  }

  private push(arg: ImapArgument): void {
    this.stack[this.stack.length - 1]!.push(arg);
  }
}

function readQuoted(text: string, start: number): { value: string; next: number } | SyntaxProblem {
  let value = '';
  for (let i = start + 1; i < text.length; i += 1) {
    const c = text[i]!;
    if (c === '"') return { value, next: i + 1 };
    if (c === '\\') {
      const escaped = text[i + 1];
      if (escaped !== '"' && escaped !== '\\') return { problem: 'Invalid escape in a quoted string (only \\" and \\\\)' };
      value += escaped;
      i += 1;
    } else {
      value += c;
    }
  }
  return { problem: 'Unterminated quoted string' };
}

/** An astring argument (atom, quoted or literal) as text, or null (a list is not one). */
export function astring(arg: ImapArgument | undefined): string | null {
  if (!arg || arg.kind === 'list') return null;
  return arg.value;
}

export function isProblem(value: unknown): value is SyntaxProblem {
  return typeof value === 'object' && value !== null && 'problem' in value;
}
