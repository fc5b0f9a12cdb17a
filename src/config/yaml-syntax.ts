/**
 * A YAML syntax error as one problem. The parser goes on after the first error and reports what follows from it
 * (one tab in an indentation gave ten "All mapping items must start at the same column"), so only the first is
 * shown, with its line, column and the line itself; the rest is re-read once that is fixed.
 */
import type { YAMLError } from 'yaml';
import type { ConfigProblem } from './problems.js';

/** Fixes for the mistakes people make in a hand-edited config, by the parser's error code. */
const fixes: Partial<Record<string, string>> = {
  TAB_AS_INDENT: 'indent with spaces, never tabs (YAML forbids tabs in indentation)',
  BAD_INDENT: 'line this key up with the other keys of its block (spaces only)',
  MISSING_CHAR: 'add the missing character (a `:` after a key, or a closing quote or bracket)',
  DUPLICATE_KEY: 'write each key once in its block',
  MULTILINE_IMPLICIT_KEY: 'a key must fit on one line: check for a missing `:` or quote on the line before',
  BLOCK_AS_IMPLICIT_KEY: 'a key must fit on one line: check for a missing `:` or quote on the line before',
};

export function yamlSyntaxProblem(errors: readonly YAMLError[], text: string): ConfigProblem {
  const first = errors[0]!;
  const pos = first.linePos?.[0];
  const where = pos ? `line ${pos.line}, column ${pos.col}` : 'the file';
  const lineText = pos ? text.split(/\r?\n/)[pos.line - 1] : undefined;
  const message = (first.message.split('\n')[0] ?? first.message).replace(/ at line \d+, column \d+:?$/, '');
  const more = errors.length > 1 ? ` (${errors.length - 1} later error${errors.length === 2 ? '' : 's'} may follow from this one: check again after fixing it)` : '';
  return {
    path: `(syntax) ${where}`,
    shown: lineText === undefined ? undefined : JSON.stringify(lineText.length > 80 ? `${lineText.slice(0, 77)}...` : lineText),
    message: `${message}${more}`,
    hint: fixes[first.code] ?? `fix the YAML at ${where}`,
  };
}
