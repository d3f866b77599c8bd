// Tests the byte-level SQL scanner that turns parser locations into spans.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { callEnd, nextToken, parenEnd, skipSpace, tokenAt } from '../../src/sql/lexer.js';

const buf = (s: string): Buffer => Buffer.from(s, 'utf8');

function tokenText(s: string, pos = 0): string {
  const b = buf(s);
  const t = tokenAt(b, pos);
  return b.subarray(t.start, t.end).toString('utf8');
}

describe('lexer', () => {
  it('skips whitespace and nested comments', () => {
    const b = buf(' -- x\n /* a /* b */ c */ \t y');
    assert.equal(b[skipSpace(b, 0)], 'y'.charCodeAt(0));
  });

  it('scans string literals of every form', () => {
    assert.equal(tokenText("'it''s' x"), "'it''s'");
    assert.equal(tokenText("E'a\\'b' x"), "E'a\\'b'");
    assert.equal(tokenText("'no'\n  'w' x"), "'no'\n  'w'");
    assert.equal(tokenText("'no'   'w'"), "'no'"); // no newline: not a continuation
    assert.equal(tokenText("'a' -- c\n 'b' x"), "'a'"); // a comment before the newline ends the literal
    assert.equal(tokenText("'a'\n-- c\n'b' x"), "'a'\n-- c\n'b'");
    assert.equal(tokenText('$$a$b$$ x'), '$$a$b$$');
    assert.equal(tokenText('$tag$ $$ $tag$ x'), '$tag$ $$ $tag$');
    assert.equal(tokenText("U&'d\\0061t' UESCAPE '\\' x"), "U&'d\\0061t' UESCAPE '\\'");
    assert.equal(tokenText("B'101' x"), "B'101'");
    assert.equal(tokenText("'ünï🎉' x"), "'ünï🎉'");
  });

  it('scans identifiers, parameters, numbers and operators', () => {
    assert.equal(tokenText('"a""b" x'), '"a""b"');
    assert.equal(tokenText('größe x'), 'größe');
    assert.equal(tokenText('$12 x'), '$12');
    assert.equal(tokenText('1.5e-3 x'), '1.5e-3');
    assert.equal(tokenText('::int'), '::');
    assert.equal(tokenText('<= 1'), '<=');
    assert.equal(tokenText('+-- c'), '+');
  });

  it('finds the end of calls and parenthesised lists', () => {
    const s = 'pg_catalog . "now" ( /* ) */ ) + 1';
    const b = buf(s);
    assert.equal(b.subarray(0, callEnd(b, 0)).toString(), 'pg_catalog . "now" ( /* ) */ )');
    const p = buf("(a, ')', (b)) tail");
    assert.equal(p.subarray(0, parenEnd(p, 0)).toString(), "(a, ')', (b))");
    assert.equal(callEnd(buf('1 + 2'), 0), -1);
    assert.equal(nextToken(buf('   '), 0).type, 'eof');
  });
});
