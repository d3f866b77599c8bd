// Makes time values deterministic across nodes: replaces now(), CURRENT_*,
// LOCALTIME*, 'now'-style literals, statement_timestamp(), clock_timestamp()
// and timeofday() with a timestamptz chosen by the coordinator, either as a
// literal (simple protocol) or as an extra $n parameter (extended protocol).
// Works from the cached byte spans of classify.ts: nothing is re-parsed.

import { PgqError, SqlState } from '../errors.js';
import { analyze, type Analyzed } from './classify.js';
import { executeArgEdits, type Edit, type TimeKind } from './timespans.js';

export type { TimeKind };

/** The three clocks of PostgreSQL, all chosen by the coordinator. */
export interface TimeValues {
  transaction: Date;
  statement: Date;
  clock: Date;
}

export interface ParamRewrite {
  sql: string;
  /** the value each added parameter takes: added[i] is $(originalParamCount + i + 1) */
  added: TimeKind[];
  /** parameters the statement had before (highest $n, or the declared count if larger) */
  originalParamCount: number;
  /** an error position in `sql`, moved to the text that was rewritten */
  position(p: number): number;
}

const pad = (n: number, w: number): string => String(n).padStart(w, '0');

/**
 * Text form of `d` (plus `micros` extra microseconds, 0-999, beyond its
 * milliseconds) that timestamptz input accepts in any DateStyle:
 * ISO 8601 with year first and UTC offset +00, e.g. '2026-11-22 06:30:00.123456+00'.
 */
export function formatTimestamptz(d: Date, micros = 0): string {
  const ms = d.getTime();
  if (!Number.isFinite(ms)) {
    throw new PgqError('ERR_SQL_BAD_TIME', 'cannot format an invalid Date as timestamptz', { sqlstate: SqlState.INTERNAL_ERROR });
  }
  if (!Number.isInteger(micros) || micros < 0 || micros > 999) {
    throw new PgqError('ERR_SQL_BAD_TIME', `micros must be an integer 0..999, got ${micros}`, { sqlstate: SqlState.INTERNAL_ERROR });
  }
  let year = d.getUTCFullYear();
  const bc = year <= 0;
  if (bc) year = 1 - year;
  const frac = pad(d.getUTCMilliseconds() * 1000 + micros, 6);
  return (
    `${pad(year, 4)}-${pad(d.getUTCMonth() + 1, 2)}-${pad(d.getUTCDate(), 2)} ` +
    `${pad(d.getUTCHours(), 2)}:${pad(d.getUTCMinutes(), 2)}:${pad(d.getUTCSeconds(), 2)}.${frac}+00${bc ? ' BC' : ''}`
  );
}

/** A timestamptz literal for `d`. */
export function timestamptzLiteral(d: Date): string {
  return `'${formatTimestamptz(d)}'::timestamptz`;
}

/** The text with each edit's span replaced; `emitted` (if given) gets what replaced each edit, in order. */
function render(a: Analyzed, value: (e: Edit) => string, emitted?: string[]): string {
  const { edits, pieces } = a;
  let out = pieces[0]!;
  for (let i = 0; i < edits.length; i++) {
    const e = edits[i]!;
    let s: string;
    if (e.kind === null) s = e.prefix;
    else if (e.scope >= 0) s = `${e.prefix}$${e.param}::timestamptz${e.suffix}`; // PREPARE body
    else s = e.prefix + value(e) + e.suffix;
    emitted?.push(s);
    out += s + pieces[i + 1]!;
  }
  return out;
}

/** Characters as PostgreSQL counts them (code points; a surrogate pair is one). */
function pgChars(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xdc00 || c > 0xdfff) n++;
  }
  return n;
}

/**
 * An error position (1-based, in characters) in the text render() made,
 * moved to the client's text `sql`: text outside the edits keeps its
 * place shifted by the length differences before it; a position inside a
 * replacement points at the start of what it replaced.
 */
function mapRendered(p: number, sql: string, a: Analyzed, emitted: readonly string[]): number {
  const x = p - 1;
  const buf = Buffer.from(sql, 'utf8');
  let sent = 0; // characters before this point in the sent text
  let client = 0; // and in the client's
  for (let i = 0; i < a.edits.length; i++) {
    const piece = pgChars(a.pieces[i]!);
    if (x < sent + piece) return client + (x - sent) + 1;
    sent += piece;
    client += piece;
    const e = a.edits[i]!;
    const sentLen = pgChars(emitted[i]!);
    if (x < sent + sentLen) return client + 1;
    sent += sentLen;
    client += pgChars(buf.subarray(e.start, e.end).toString('utf8'));
  }
  return client + (x - sent) + 1;
}

/** A rewritten text, and how to move an error position in it to the client's text. */
export interface MappedRewrite {
  sql: string;
  position(p: number): number;
}

/**
 * Simple-query protocol: the text with every time construct replaced by a
 * literal giving PostgreSQL's semantics, or null when there is nothing to
 * replace. Inside a SQL-level PREPARE body the constructs become extra
 * parameters instead (see StatementInfo.timeParams and rewriteExecute()).
 */
export function rewriteSimple(sql: string, t: TimeValues): string | null {
  return rewriteSimpleMapped(sql, t)?.sql ?? null;
}

/** rewriteSimple(), with the map of error positions back to `sql`. */
export function rewriteSimpleMapped(sql: string, t: TimeValues): MappedRewrite | null {
  const a = analyze(sql);
  if (!a.cls.needsRewrite) return null;
  const lit: Partial<Record<TimeKind, string>> = {};
  const emitted: string[] = [];
  const out = render(a, (e) => (lit[e.kind!] ??= timestamptzLiteral(t[e.kind!])), emitted);
  return { sql: out, position: (p) => mapRendered(p, sql, a, emitted) };
}

/**
 * Extended protocol: each distinct kind of time construct becomes one new
 * parameter $k (k after the highest $n in the text, or after
 * `declaredParamCount` when the Parse message declared more types), cast
 * explicitly to timestamptz. The caller appends the values at every Bind.
 * Null when there is nothing to rewrite. Cached by text.
 */
export function rewriteExtended(sql: string, declaredParamCount = 0): ParamRewrite | null {
  const a = analyze(sql);
  if (!a.cls.needsRewrite) return null;
  a.extended ??= new Map();
  const memo = a.extended.get(declaredParamCount) as ParamRewrite | undefined;
  if (memo) return memo;
  const base = Math.max(a.maxParam, declaredParamCount);
  const added: TimeKind[] = [];
  const emitted: string[] = [];
  const sqlOut = render(
    a,
    (e) => {
      let i = added.indexOf(e.kind!);
      if (i < 0) i = added.push(e.kind!) - 1;
      return `$${base + i + 1}::timestamptz`;
    },
    emitted,
  );
  const result: ParamRewrite = Object.freeze({
    sql: sqlOut,
    added: Object.freeze(added) as TimeKind[],
    originalParamCount: base,
    position: (p: number) => mapRendered(p, sql, a, emitted),
  });
  a.extended.set(declaredParamCount, result);
  return result;
}

/**
 * For `EXECUTE name [(args)]` of a statement PREPAREd through rewriteSimple()
 * with timeParams: the same EXECUTE with the time values appended as extra
 * arguments. `sql` is one EXECUTE statement (StatementInfo.text).
 */
export function rewriteExecute(sql: string, added: readonly TimeKind[], t: TimeValues): string {
  if (added.length === 0) return sql;
  const b = Buffer.from(sql, 'utf8');
  const edits = executeArgEdits(b, 0, added);
  if (!edits) {
    throw new PgqError('ERR_SQL_NOT_EXECUTE', 'rewriteExecute() needs one EXECUTE statement', {
      sqlstate: SqlState.INTERNAL_ERROR,
      context: { sql },
    });
  }
  const pos = edits[0]!.start;
  const args = edits.map((e) => e.prefix + timestamptzLiteral(t[e.kind!]) + e.suffix).join('');
  return b.subarray(0, pos).toString('utf8') + args + b.subarray(pos).toString('utf8');
}
