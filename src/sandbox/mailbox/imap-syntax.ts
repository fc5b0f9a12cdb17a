/**
 * The slice of IMAP4rev1 syntax (RFC 3501 §9) the sandbox mailbox understands: a command line's tag,
 * name and arguments, sequence sets, and the FETCH items it can answer. Pure functions; anything outside
 * the slice parses to null and the session answers BAD.
 */

/** One argument: an atom (brackets kept whole, e.g. `BODY.PEEK[]<0.10>`), a quoted string, or a parenthesised list. */
export type ImapToken = { kind: 'atom'; value: string } | { kind: 'string'; value: string } | { kind: 'list'; items: ImapToken[] };

/** A parsed command line. */
export interface ImapCommandLine {
  tag: string;
  /** Upper-cased command name. */
  name: string;
  args: ImapToken[];
}

// tag = 1*<any ASTRING-CHAR except "+"> (RFC 3501 §9): printable ASCII without ( ) { SP % * " \ +
const TAG = /^[\x21-\x7e]+$/;
const TAG_FORBIDDEN = /[(){%*"\\+]/;

/**
 * Splits a command line, or says why it cannot (with the tag when there is a valid one, for a tagged BAD).
 * A literal (`{n}`, RFC 3501 §4.3) is refused: the sandbox never needs one.
 */
export function parseCommandLine(line: string): ImapCommandLine | { tag: string | null; error: string } {
  const space = line.indexOf(' ');
  const tag = space === -1 ? line : line.slice(0, space);
  if (!TAG.test(tag) || TAG_FORBIDDEN.test(tag)) return { tag: null, error: 'Invalid tag' };
  const rest = space === -1 ? '' : line.slice(space + 1);
  const nameEnd = rest.indexOf(' ');
  const name = (nameEnd === -1 ? rest : rest.slice(0, nameEnd)).toUpperCase();
  if (!/^[A-Z]{2,16}$/.test(name)) return { tag, error: 'Missing or invalid command' };
  if (/\{\d+\+?\}$/.test(line)) return { tag, error: 'Literals are not supported' };
  const args = tokenize(nameEnd === -1 ? '' : rest.slice(nameEnd + 1));
  if (args === null) return { tag, error: 'Invalid arguments' };
  return { tag, name, args };
}

/** Tokenises arguments: atoms, "quoted strings" (RFC 3501 §4.3, `\"` and `\\` escapes) and (lists). */
export function tokenize(text: string): ImapToken[] | null {
  const stack: ImapToken[][] = [[]];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    const current = stack[stack.length - 1]!;
    if (c === ' ') {
      i += 1;
    } else if (c === '(') {
      const list: ImapToken = { kind: 'list', items: [] };
      current.push(list);
      stack.push(list.items);
      i += 1;
    } else if (c === ')') {
      if (stack.length === 1) return null;
      stack.pop();
      i += 1;
    } else if (c === '"') {
      let value = '';
      i += 1;
      while (i < text.length && text[i] !== '"') {
        if (text[i] === '\\') i += 1;
        value += text[i] ?? '';
        i += 1;
      }
      if (i >= text.length) return null;
      current.push({ kind: 'string', value });
      i += 1;
    } else {
      const start = i;
      let depth = 0;
      // Inside [...] anything but a line end belongs to the atom (`BODY[HEADER.FIELDS (FROM)]`).
      while (i < text.length && (depth > 0 || !' ()"'.includes(text[i]!))) {
        if (text[i] === '[') depth += 1;
        else if (text[i] === ']') depth -= 1;
        i += 1;
      }
      if (depth !== 0) return null;
      current.push({ kind: 'atom', value: text.slice(start, i) });
    }
  }
  return stack.length === 1 ? stack[0]! : null;
}

/** An astring argument's text (atom or quoted string), or null. */
export function astring(token: ImapToken | undefined): string | null {
  return token && token.kind !== 'list' ? token.value : null;
}

/** A sequence set (RFC 3501 §9 `sequence-set`): ranges whose ends may be `*` (the largest number in use). */
export type SequenceSet = Array<[number | '*', number | '*']>;

export function parseSequenceSet(text: string): SequenceSet | null {
  const ranges: SequenceSet = [];
  for (const part of text.split(',')) {
    const match = /^([1-9][0-9]{0,9}|\*)(?::([1-9][0-9]{0,9}|\*))?$/.exec(part);
    if (!match) return null;
    const from = match[1] === '*' ? '*' : Number(match[1]);
    const to = match[2] === undefined ? from : match[2] === '*' ? '*' : Number(match[2]);
    ranges.push([from, to]);
  }
  return ranges;
}

/** Whether `value` is in `set`, where `*` stands for `largest`. `4:2` is the same range as `2:4` (RFC 3501 §9). */
export function inSequenceSet(set: SequenceSet, value: number, largest: number): boolean {
  return set.some(([a, b]) => {
    const low = Math.min(a === '*' ? largest : a, b === '*' ? largest : b);
    const high = Math.max(a === '*' ? largest : a, b === '*' ? largest : b);
    return value >= low && value <= high;
  });
}

/** A FETCH data item the sandbox answers. */
export type FetchItem =
  | { kind: 'UID' | 'FLAGS' | 'INTERNALDATE' | 'RFC822.SIZE' }
  | { kind: 'body'; label: 'BODY[]' | 'RFC822'; partial?: { start: number; length?: number } };

/**
 * The FETCH items of `FETCH set items` (RFC 3501 §6.4.5): one item or a list, the FAST macro, and whole-message
 * bodies (`BODY[]`, `BODY.PEEK[]`, `RFC822`, with `<start.length>`). Null for anything else (ENVELOPE,
 * BODYSTRUCTURE, header sections): the session answers BAD rather than guess.
 */
export function parseFetchItems(token: ImapToken | undefined): FetchItem[] | null {
  if (!token) return null;
  const atoms = token.kind === 'list' ? token.items : [token];
  const items: FetchItem[] = [];
  for (const atom of atoms) {
    if (atom.kind !== 'atom') return null;
    const word = atom.value.toUpperCase();
    if (word === 'FAST') items.push({ kind: 'FLAGS' }, { kind: 'INTERNALDATE' }, { kind: 'RFC822.SIZE' });
    else if (word === 'UID' || word === 'FLAGS' || word === 'INTERNALDATE' || word === 'RFC822.SIZE') items.push({ kind: word });
    else if (word === 'RFC822') items.push({ kind: 'body', label: 'RFC822' });
    else {
      const body = /^BODY(?:\.PEEK)?\[\](?:<([0-9]{1,10})(?:\.([1-9][0-9]{0,9}))?>)?$/.exec(word);
      if (!body) return null;
      items.push(body[1] === undefined
        ? { kind: 'body', label: 'BODY[]' }
        : { kind: 'body', label: 'BODY[]', partial: { start: Number(body[1]), ...(body[2] === undefined ? {} : { length: Number(body[2]) }) } });
    }
  }
  return items.length ? items : null;
}

/** Whether a LIST pattern (RFC 3501 §6.3.8: `*` any, `%` any but the delimiter) matches `name`. */
export function listPatternMatches(pattern: string, name: string): boolean {
  const source = pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/%/g, '[^/]*');
  return new RegExp(`^${source}$`, 'i').test(name);
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** INTERNALDATE in RFC 3501 `date-time` form, in UTC: `"05-Jan-2026 10:00:00 +0000"`. */
export function imapDateTime(date: Date): string {
  const pad = (n: number) => n.toString().padStart(2, '0');
  return `"${pad(date.getUTCDate())}-${MONTHS[date.getUTCMonth()]}-${date.getUTCFullYear()} ${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())} +0000"`;
}
