// A small byte-level SQL scanner: finds where tokens end, so that node
// locations from the parser (which only give starts) become byte spans.
// It follows PostgreSQL's scan.l closely enough for that purpose
// (standard_conforming_strings = on, as libpg_query assumes).

export type TokenType = 'ident' | 'qident' | 'string' | 'number' | 'param' | 'op' | 'punct' | 'eof';

export interface Token {
  type: TokenType;
  start: number;
  end: number;
}

const isSpace = (c: number): boolean => c === 32 || (c >= 9 && c <= 13);
const isIdentStart = (c: number): boolean =>
  (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || c >= 128;
const isIdentCont = (c: number): boolean => isIdentStart(c) || (c >= 48 && c <= 57) || c === 36;
const isDigit = (c: number): boolean => c >= 48 && c <= 57;
const OP_CHARS = new Set(Array.from('~!@#^&|`?+-*/%<>=', (ch) => ch.charCodeAt(0)));

/** Skips whitespace and comments from `pos`; returns the next significant byte offset. */
export function skipSpace(b: Uint8Array, pos: number): number {
  const n = b.length;
  for (;;) {
    while (pos < n && isSpace(b[pos]!)) pos++;
    if (pos + 1 < n && b[pos] === 45 && b[pos + 1] === 45) {
      while (pos < n && b[pos] !== 10 && b[pos] !== 13) pos++;
      continue;
    }
    if (pos + 1 < n && b[pos] === 47 && b[pos + 1] === 42) {
      let depth = 1;
      pos += 2;
      while (pos < n && depth > 0) {
        if (b[pos] === 47 && b[pos + 1] === 42) {
          depth++;
          pos += 2;
        } else if (b[pos] === 42 && b[pos + 1] === 47) {
          depth--;
          pos += 2;
        } else pos++;
      }
      continue;
    }
    return pos;
  }
}

/** End of a '...' body starting at the opening quote; `backslash` for E'' strings. */
function quotedEnd(b: Uint8Array, pos: number, quote: number, backslash: boolean): number {
  const n = b.length;
  pos++;
  while (pos < n) {
    const c = b[pos]!;
    if (backslash && c === 92) {
      pos += 2;
      continue;
    }
    if (c === quote) {
      if (b[pos + 1] === quote) {
        pos += 2;
        continue;
      }
      return pos + 1;
    }
    pos++;
  }
  return n;
}

/**
 * After a quoted string ending at `pos`: PostgreSQL joins `'a'\n'b'` when the
 * whitespace between contains a newline. Returns the new end (or `pos`).
 */
function continuation(b: Uint8Array, pos: number, backslash: boolean): number {
  const n = b.length;
  for (;;) {
    let p = pos;
    let newline = false;
    for (;;) {
      while (p < n && isSpace(b[p]!)) {
        if (b[p] === 10 || b[p] === 13) newline = true;
        p++;
      }
      if (newline && p + 1 < n && b[p] === 45 && b[p + 1] === 45) {
        while (p < n && b[p] !== 10 && b[p] !== 13) p++;
        continue;
      }
      break;
    }
    if (!newline || b[p] !== 39) return pos;
    pos = quotedEnd(b, p, 39, backslash);
  }
}

function dollarTagEnd(b: Uint8Array, pos: number): number {
  // pos at '$'; returns end of "$tag$" or -1 when this is not a dollar quote opener
  let p = pos + 1;
  if (p < b.length && isIdentStart(b[p]!)) {
    p++;
    while (p < b.length && isIdentCont(b[p]!) && b[p] !== 36) p++;
  }
  return p < b.length && b[p] === 36 ? p + 1 : -1;
}

function matchAt(b: Uint8Array, pos: number, tag: Uint8Array): boolean {
  if (pos + tag.length > b.length) return false;
  for (let i = 0; i < tag.length; i++) if (b[pos + i] !== tag[i]) return false;
  return true;
}

function lower(c: number): number {
  return c >= 65 && c <= 90 ? c + 32 : c;
}

/** Case-insensitive ASCII keyword comparison of a token. */
export function tokenIs(b: Uint8Array, t: Token, word: string): boolean {
  if (t.end - t.start !== word.length) return false;
  for (let i = 0; i < word.length; i++) if (lower(b[t.start + i]!) !== word.charCodeAt(i)) return false;
  return true;
}

/** Scans one token starting exactly at `pos` (which must not be whitespace). */
export function tokenAt(b: Uint8Array, pos: number): Token {
  const n = b.length;
  if (pos >= n) return { type: 'eof', start: n, end: n };
  const c = b[pos]!;
  const c1 = pos + 1 < n ? b[pos + 1]! : -1;
  // prefixed strings: E'', B'', X'', N'', U&'' and U&""
  const lc = lower(c);
  if ((lc === 101 || lc === 98 || lc === 120 || lc === 110) && c1 === 39) {
    const e = quotedEnd(b, pos + 1, 39, lc === 101);
    return { type: 'string', start: pos, end: continuation(b, e, lc === 101) };
  }
  if (lc === 117 && c1 === 38 && (b[pos + 2] === 39 || b[pos + 2] === 34)) {
    const q = b[pos + 2]!;
    let e = quotedEnd(b, pos + 2, q, false);
    if (q === 39) e = continuation(b, e, false);
    // optional UESCAPE 'x'
    const p = skipSpace(b, e);
    const kw = tokenAt0(b, p);
    if (kw.type === 'ident' && tokenIs(b, kw, 'uescape')) {
      const s = skipSpace(b, kw.end);
      if (b[s] === 39) e = quotedEnd(b, s, 39, false);
    }
    return { type: q === 39 ? 'string' : 'qident', start: pos, end: e };
  }
  return tokenAt0(b, pos);
}

function tokenAt0(b: Uint8Array, pos: number): Token {
  const n = b.length;
  if (pos >= n) return { type: 'eof', start: n, end: n };
  const c = b[pos]!;
  if (c === 39) return { type: 'string', start: pos, end: continuation(b, quotedEnd(b, pos, 39, false), false) };
  if (c === 34) return { type: 'qident', start: pos, end: quotedEnd(b, pos, 34, false) };
  if (c === 36) {
    if (pos + 1 < n && isDigit(b[pos + 1]!)) {
      let p = pos + 1;
      while (p < n && isDigit(b[p]!)) p++;
      return { type: 'param', start: pos, end: p };
    }
    const tagEnd = dollarTagEnd(b, pos);
    if (tagEnd > 0) {
      const tag = b.subarray(pos, tagEnd);
      let p = tagEnd;
      while (p < n && !matchAt(b, p, tag)) p++;
      return { type: 'string', start: pos, end: Math.min(n, p + tag.length) };
    }
    return { type: 'op', start: pos, end: pos + 1 };
  }
  if (isIdentStart(c)) {
    let p = pos + 1;
    while (p < n && isIdentCont(b[p]!)) p++;
    return { type: 'ident', start: pos, end: p };
  }
  if (isDigit(c) || (c === 46 && pos + 1 < n && isDigit(b[pos + 1]!))) {
    let p = pos;
    while (p < n && (isIdentCont(b[p]!) || b[p] === 46)) {
      if ((b[p] === 101 || b[p] === 69) && (b[p + 1] === 43 || b[p + 1] === 45)) p++;
      if (b[p] === 46 && b[p + 1] === 46) break; // "1..2" range syntax
      p++;
    }
    return { type: 'number', start: pos, end: p };
  }
  if (c === 58 && b[pos + 1] === 58) return { type: 'punct', start: pos, end: pos + 2 };
  if ('()[],;:.'.includes(String.fromCharCode(c))) return { type: 'punct', start: pos, end: pos + 1 };
  if (OP_CHARS.has(c)) {
    let p = pos + 1;
    while (p < n && OP_CHARS.has(b[p]!)) {
      if ((b[p] === 45 && b[p + 1] === 45) || (b[p] === 47 && b[p + 1] === 42)) break;
      p++;
    }
    return { type: 'op', start: pos, end: p };
  }
  return { type: 'op', start: pos, end: pos + 1 };
}

/** The next significant token at or after `pos`. */
export function nextToken(b: Uint8Array, pos: number): Token {
  return tokenAt(b, skipSpace(b, pos));
}

/**
 * From `pos` (start of a function name), skips the possibly qualified name
 * and its parenthesised argument list; returns the end of the closing ')',
 * or -1 when the text does not look like `name(...)`.
 */
export function callEnd(b: Uint8Array, pos: number): number {
  let t = nextToken(b, pos);
  for (;;) {
    if (t.type !== 'ident' && t.type !== 'qident') return -1;
    t = nextToken(b, t.end);
    if (t.type === 'punct' && b[t.start] === 46) {
      t = nextToken(b, t.end);
      continue;
    }
    break;
  }
  if (!(t.type === 'punct' && b[t.start] === 40)) return -1;
  return parenEnd(b, t.start);
}

/** `pos` at '('; returns the offset just after the matching ')', or -1. */
export function parenEnd(b: Uint8Array, pos: number): number {
  let depth = 0;
  let t = tokenAt(b, pos);
  for (;;) {
    if (t.type === 'eof') return -1;
    if (t.type === 'punct') {
      const ch = b[t.start];
      if (ch === 40) depth++;
      else if (ch === 41 && --depth === 0) return t.end;
    }
    t = nextToken(b, t.end);
  }
}
