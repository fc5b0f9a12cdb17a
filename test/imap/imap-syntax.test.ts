/**
 * IMAP command syntax before login (RFC 9051 §9): tags, command names, atoms, quoted strings with escapes,
 * literal announcements, lists. Hostile shapes included.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ArgumentParser, astring, splitCommandLine } from '../../src/imap/imap-syntax.js';

function args(...fragments: Array<string | { literal: string }>) {
  const parser = new ArgumentParser();
  const announced: unknown[] = [];
  for (const f of fragments) {
    if (typeof f === 'string') announced.push(parser.feed(f));
    else parser.addLiteral(f.literal);
  }
  return { announced, args: parser.finish() };
}

test('tag and command: any ASTRING-CHAR but "+" in a tag; the name upper-cased', () => {
  assert.deepEqual(splitCommandLine('a1 login x y'), { tag: 'a1', name: 'LOGIN', rest: 'x y' });
  assert.deepEqual(splitCommandLine('A]1.x CAPABILITY'), { tag: 'A]1.x', name: 'CAPABILITY', rest: '' });
  for (const bad of ['+a NOOP', '* NOOP', 'a(b NOOP', 'a"b NOOP', 'a%b NOOP', 'a\\b NOOP', '\u0000 NOOP']) {
    assert.deepEqual(splitCommandLine(bad), { tag: null, problem: 'Invalid tag' }, bad);
  }
  assert.deepEqual(splitCommandLine('a1'), { tag: 'a1', problem: 'Missing command' });
  assert.deepEqual(splitCommandLine('a1 L0GIN!'), { tag: 'a1', problem: 'Invalid command name' });
});

test('atoms, quoted strings with \\" and \\\\, NIL stays an atom', () => {
  assert.deepEqual(args('mfp "pa\\"ss\\\\word" NIL').args, [
    { kind: 'atom', value: 'mfp' },
    { kind: 'string', value: 'pa"ss\\word' },
    { kind: 'atom', value: 'NIL' },
  ]);
  assert.deepEqual(args('"" "wörd"').args, [{ kind: 'string', value: '' }, { kind: 'string', value: 'wörd' }]);
  assert.deepEqual(args('"a\\n"').announced, [{ problem: 'Invalid escape in a quoted string (only \\" and \\\\)' }]);
  assert.deepEqual(args('"open').announced, [{ problem: 'Unterminated quoted string' }]);
  assert.deepEqual(args('a\u0007b').announced, [{ problem: 'Control character in an atom' }]);
});

test('literals: {n} and {n+} only at the end of a fragment; the content is inserted in place', () => {
  const r = args('{3}', { literal: 'mfp' }, ' {4+}', { literal: 'p w"' }, '');
  assert.deepEqual(r.announced, [{ size: 3, synchronizing: true }, { size: 4, synchronizing: false }, null]);
  assert.deepEqual(r.args, [{ kind: 'string', value: 'mfp' }, { kind: 'string', value: 'p w"' }]);
  assert.deepEqual(args('{999999999}').announced, [{ size: 999999999, synchronizing: true }]);
  assert.deepEqual(args('{12345678901}').announced, [{ problem: 'Invalid literal (expected {n} or {n+} at the end of the line)' }]);
  assert.deepEqual(args('{3} x').announced, [{ problem: 'Invalid literal (expected {n} or {n+} at the end of the line)' }]);
  assert.deepEqual(args('{-1}').announced, [{ problem: 'Invalid literal (expected {n} or {n+} at the end of the line)' }]);
});

test('lists, nested, with a literal inside (ID), unbalanced ones refused', () => {
  const r = args('("name" {3}', { literal: 'MFP' }, ' "os" ("a" b))');
  assert.deepEqual(r.args, [
    {
      kind: 'list',
      items: [
        { kind: 'string', value: 'name' },
        { kind: 'string', value: 'MFP' },
        { kind: 'string', value: 'os' },
        { kind: 'list', items: [{ kind: 'string', value: 'a' }, { kind: 'atom', value: 'b' }] },
      ],
    },
  ]);
  assert.deepEqual(args('(a').args, { problem: 'Unbalanced parenthesis' });
  assert.deepEqual(args('a)').announced, [{ problem: 'Unbalanced parenthesis' }]);
  assert.equal(astring({ kind: 'list', items: [] }), null);
  assert.equal(astring(undefined), null);
});
