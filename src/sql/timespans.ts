// Finds the byte span of each time construct (now(), CURRENT_DATE, 'now'::date,
// ...) and says what to put there: prefix + <timestamptz value> + suffix, where
// the value is a literal (simple protocol) or a $n parameter (extended).
// The node converts the timestamptz itself, so its TimeZone setting counts.

import { callEnd, nextToken, parenEnd, tokenAt, tokenIs, type Token } from './lexer.js';
import { nameParts, type Obj } from './ast.js';

export type TimeKind = 'transaction' | 'statement' | 'clock';

export interface Edit {
  start: number;
  end: number;
  /** the value substituted between prefix and suffix; null for plain insertions */
  kind: TimeKind | null;
  prefix: string;
  suffix: string;
  /** -1: the statement itself; otherwise the index of the PREPARE statement whose body holds it */
  scope: number;
  /** PREPARE bodies only: the $n this construct becomes */
  param?: number;
  /** kind null: the span is replaced by `prefix` (a rewrite of its own, e.g. gen_random_uuid()) */
  replace?: boolean;
}

const FUNC_KIND: Record<string, TimeKind> = {
  now: 'transaction',
  transaction_timestamp: 'transaction',
  statement_timestamp: 'statement',
  clock_timestamp: 'clock',
  timeofday: 'clock',
};

/** timeofday()'s format: 'Sun Nov 22 06:30:00.123456 2026 UTC', in the session time zone. */
export const TIMEOFDAY_FORMAT = 'Dy Mon DD HH24:MI:SS.US YYYY TZ';

const SVF: Record<string, { word: string; cast: string }> = {
  SVFOP_CURRENT_DATE: { word: 'current_date', cast: 'date' },
  SVFOP_CURRENT_TIME: { word: 'current_time', cast: 'timetz' },
  SVFOP_CURRENT_TIME_N: { word: 'current_time', cast: 'timetz' },
  SVFOP_CURRENT_TIMESTAMP: { word: 'current_timestamp', cast: '' },
  SVFOP_CURRENT_TIMESTAMP_N: { word: 'current_timestamp', cast: 'timestamptz' },
  SVFOP_LOCALTIME: { word: 'localtime', cast: 'time' },
  SVFOP_LOCALTIME_N: { word: 'localtime', cast: 'time' },
  SVFOP_LOCALTIMESTAMP: { word: 'localtimestamp', cast: 'timestamp' },
  SVFOP_LOCALTIMESTAMP_N: { word: 'localtimestamp', cast: 'timestamp' },
};

const TIME_TYPES = new Set(['timestamptz', 'timestamp', 'date', 'time', 'timetz']);

const decoder = new TextDecoder();

function isPunct(b: Uint8Array, t: Token, ch: string): boolean {
  return t.type === 'punct' && t.end - t.start === ch.length && b[t.start] === ch.charCodeAt(0);
}

/** The edit for one node, or undefined when it is not a rewritable time construct. */
export function timeEditFor(b: Uint8Array, type: 'FuncCall' | 'SQLValueFunction' | 'TypeCast', body: Obj): Edit | undefined {
  const loc = (v: unknown): number => (typeof v === 'number' ? v : 0);
  if (type === 'FuncCall') {
    const parts = nameParts(body.funcname);
    const bare = parts[parts.length - 1] ?? '';
    const kind = Object.prototype.hasOwnProperty.call(FUNC_KIND, bare) ? FUNC_KIND[bare] : undefined;
    if (!kind) return undefined;
    if (body.args || body.agg_star || body.over || body.agg_filter || body.agg_order || body.agg_distinct || body.func_variadic) {
      return undefined;
    }
    const start = loc(body.location);
    const end = callEnd(b, start);
    if (end < 0) return undefined;
    if (bare === 'timeofday') return { start, end, kind, prefix: 'to_char(', suffix: `, '${TIMEOFDAY_FORMAT}')`, scope: -1 };
    return { start, end, kind, prefix: '(', suffix: ')', scope: -1 };
  }
  if (type === 'SQLValueFunction') {
    const op = String(body.op ?? '');
    const spec = SVF[op];
    if (!spec) return undefined;
    const start = loc(body.location);
    const tok = tokenAt(b, start);
    if (tok.type !== 'ident' || !tokenIs(b, tok, spec.word)) return undefined;
    let end = tok.end;
    let cast = spec.cast;
    if (op.endsWith('_N')) {
      const open = nextToken(b, end);
      if (!isPunct(b, open, '(')) return undefined;
      end = parenEnd(b, open.start);
      if (end < 0) return undefined;
      cast = `${cast}(${Number(body.typmod ?? 0)})`;
    }
    return { start, end, kind: 'transaction', prefix: '(', suffix: cast ? `)::${cast}` : ')', scope: -1 };
  }
  // TypeCast of a 'now' / 'today' / 'tomorrow' / 'yesterday' literal
  const aconst = (body.arg as { A_Const?: Obj }).A_Const!;
  const word = String((aconst.sval as { sval?: string }).sval ?? '').trim().toLowerCase();
  const base = castTimeType(body);
  if (base === undefined) return undefined;
  // 'today'/'tomorrow'/'yesterday' are not valid time/timetz input: every node rejects them alike
  if (word !== 'now' && (base === 'time' || base === 'timetz')) return undefined;
  const tn = body.typeName as Obj;
  const argStart = loc(aconst.location);
  const tok = tokenAt(b, argStart);
  if (tok.type !== 'string') return undefined;
  const [pre, post] = literalExpr(word, base);
  const typeLoc = loc(tn.location);
  if (typeLoc >= 0 && typeLoc < argStart) {
    // typed literal: timestamp 'now'  ->  (<expr>::timestamp )
    const typeText = decoder.decode(b.subarray(typeLoc, argStart));
    return { start: typeLoc, end: tok.end, kind: 'transaction', prefix: `(${pre}`, suffix: `${post}::${typeText})`, scope: -1 };
  }
  return { start: argStart, end: tok.end, kind: 'transaction', prefix: `(${pre}`, suffix: `${post})`, scope: -1 };
}

/** The builtin date/time type a TypeCast node casts to (timestamptz, timestamp, date, time, timetz), if any. */
export function castTimeType(body: Obj): string | undefined {
  const tn = body.typeName as Obj | undefined;
  if (!tn || tn.arrayBounds || tn.setof || tn.pct_type) return undefined;
  const names = nameParts(tn.names);
  const base = names[names.length - 1] ?? '';
  if (!TIME_TYPES.has(base) || (names.length > 1 && !(names.length === 2 && names[0] === 'pg_catalog'))) return undefined;
  return base;
}

/** Text around V (a timestamptz) that gives what '<word>'::<type> gives on the node. */
function literalExpr(word: string, type: string): [string, string] {
  if (word === 'now') return type === 'timestamptz' ? ['', ''] : ['(', `)::${type}`];
  const shift = word === 'tomorrow' ? ' + 1' : word === 'yesterday' ? ' - 1' : '';
  const day = `)::date${shift})`;
  switch (type) {
    case 'date':
      return ['((', day];
    case 'timestamp':
      return ['((', `${day}::timestamp`];
    case 'timestamptz':
      return ['((', `${day}::timestamptz`];
    case 'time':
      return ['((', `${day}::timestamp::time`];
    default: // timetz
      return ['((', `${day}::timestamptz::timetz`];
  }
}

const TERMINATORS = new Set([
  'from', 'into', 'where', 'group', 'having', 'window', 'order', 'limit', 'offset', 'fetch', 'for',
  'union', 'intersect', 'except', 'returning', 'on',
]);

/**
 * `SELECT now()` names its column "now"; after rewriting it would be
 * "timestamptz". This returns an insertion of ` AS "now"` after the whole
 * target expression (which may wrap the construct in parentheses, casts or
 * COLLATE), or undefined when the shape is not recognised.
 */
export function aliasEdit(b: Uint8Array, resLoc: number, construct: Edit, colname: string, scope: number): Edit | undefined {
  let depth = 0;
  let p = resLoc;
  for (;;) {
    const t = nextToken(b, p);
    if (t.start >= construct.start) break;
    if (!isPunct(b, t, '(')) return undefined;
    depth++;
    p = t.end;
  }
  let end = construct.end;
  p = construct.end;
  for (;;) {
    const t = nextToken(b, p);
    if (t.type === 'eof') break;
    if (isPunct(b, t, ')') || isPunct(b, t, ']')) {
      if (depth === 0) break;
      depth--;
    } else if (isPunct(b, t, '(') || isPunct(b, t, '[')) {
      depth++;
    } else if (depth === 0) {
      if (isPunct(b, t, ',') || isPunct(b, t, ';')) break;
      if (t.type === 'ident' && TERMINATORS.has(decoder.decode(b.subarray(t.start, t.end)).toLowerCase())) break;
    }
    end = t.end;
    p = t.end;
  }
  if (depth !== 0) return undefined;
  return { start: end, end, kind: null, prefix: ` AS "${colname.replace(/"/g, '""')}"`, suffix: '', scope };
}

/**
 * Zero-width insertions that append one argument per `kinds` entry to
 * `EXECUTE name [(args)]` spanning [start, end): for statements PREPAREd
 * with time parameters (StatementInfo.timeParams).
 */
export function executeArgEdits(b: Uint8Array, start: number, kinds: readonly TimeKind[]): Edit[] | undefined {
  const kw = nextToken(b, start);
  const name = nextToken(b, kw.end);
  if (!tokenIs(b, kw, 'execute') || (name.type !== 'ident' && name.type !== 'qident')) return undefined;
  let pos = name.end;
  let first = ' (';
  let last = ')';
  const open = nextToken(b, name.end);
  if (isPunct(b, open, '(')) {
    const close = parenEnd(b, open.start);
    if (close < 0) return undefined;
    pos = close - 1;
    first = nextToken(b, open.end).start === pos ? '' : ', ';
    last = '';
  }
  return kinds.map((kind, i) => ({
    start: pos,
    end: pos,
    kind,
    prefix: i === 0 ? first : ', ',
    suffix: i === kinds.length - 1 ? last : '',
    scope: -1,
  }));
}
