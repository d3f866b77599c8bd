// Removes secrets from SQL text before it goes into a log line or an error
// detail: the literal after PASSWORD (CREATE/ALTER ROLE/USER/GROUP, with or
// without ENCRYPTED, in every spelling: '..', E'..', U&'..', $tag$..$tag$,
// continued '..' literals, comments in between, unterminated literals), and
// password=... or user:password@ in connection strings (CREATE SUBSCRIPTION,
// CREATE SERVER ... OPTIONS, dblink).
import { nextToken, tokenIs } from './lexer.js';

// password=value in a conninfo string: the value quoted with '' (doubled
// because the conninfo sits inside an SQL literal), with ', or bare.
const CONNSTR_PASSWORD = /(\bpassword\s*=\s*)(''(?:\\''|\\[^']|[^'\\])*''|'(?:[^'\\]|\\.)*'|[^\s']+)/gi;
// scheme://user:password@host in a connection URI.
const URI_PASSWORD = /(\b[a-z][a-z0-9+.-]*:\/\/[^:/@\s'"]*:)([^@\s'"]*)(@)/gi;

/**
 * End of a '...' literal read with backslash escapes (as PostgreSQL reads it
 * when standard_conforming_strings is off); `pos` is at the opening quote.
 */
function backslashQuotedEnd(b: Uint8Array, pos: number): number {
  for (let p = pos + 1; p < b.length; p++) {
    if (b[p] === 92) p++;
    else if (b[p] === 39) {
      if (b[p + 1] === 39) p++;
      else return p + 1;
    }
  }
  return b.length;
}

/** Byte spans of the literals that follow a PASSWORD keyword. */
function passwordLiteralSpans(b: Uint8Array): [number, number][] {
  const spans: [number, number][] = [];
  let t = nextToken(b, 0);
  while (t.type !== 'eof') {
    if (t.type === 'ident' && tokenIs(b, t, 'password')) {
      const lit = nextToken(b, t.end);
      if (lit.type === 'string') {
        let end = lit.end;
        // A plain '..' literal may end later when the session has standard_conforming_strings off.
        if (b[lit.start] === 39) end = Math.max(end, backslashQuotedEnd(b, lit.start));
        spans.push([lit.start, end]);
        t = nextToken(b, end);
        continue;
      }
    }
    t = nextToken(b, t.end);
  }
  return spans;
}

export function redactSql(text: string): string {
  if (!/password|:\/\//i.test(text)) return text;
  let out = text;
  if (/password/i.test(text)) {
    const b = Buffer.from(text, 'utf8');
    const spans = passwordLiteralSpans(b);
    if (spans.length > 0) {
      const parts: string[] = [];
      let pos = 0;
      for (const [s, e] of spans) {
        parts.push(b.subarray(pos, s).toString('utf8'), "'***'");
        pos = e;
      }
      parts.push(b.subarray(pos).toString('utf8'));
      out = parts.join('');
    }
  }
  return out.replace(CONNSTR_PASSWORD, '$1***').replace(URI_PASSWORD, '$1***$3');
}
