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

function render(a: Analyzed, value: (e: Edit) => string): string {
  const { edits, pieces } = a;
  let out = pieces[0]!;
  for (let i = 0; i < edits.length; i++) {
    const e = edits[i]!;
    if (e.kind === null) out += e.prefix;
    else if (e.scope >= 0) out += `${e.prefix}$${e.param}::timestamptz${e.suffix}`; // PREPARE body
    else out += e.prefix + value(e) + e.suffix;
    out += pieces[i + 1]!;
  }
  return out;
}

/**
 * Simple-query protocol: the text with every time construct replaced by a
 * literal giving PostgreSQL's semantics, or null when there is nothing to
 * replace. Inside a SQL-level PREPARE body the constructs become extra
 * parameters instead (see StatementInfo.timeParams and rewriteExecute()).
 */
export function rewriteSimple(sql: string, t: TimeValues): string | null {
  const a = analyze(sql);
  if (!a.cls.needsRewrite) return null;
  const lit: Partial<Record<TimeKind, string>> = {};
  return render(a, (e) => (lit[e.kind!] ??= timestamptzLiteral(t[e.kind!])));
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
  const sqlOut = render(a, (e) => {
    let i = added.indexOf(e.kind!);
    if (i < 0) i = added.push(e.kind!) - 1;
    return `$${base + i + 1}::timestamptz`;
  });
  const result: ParamRewrite = Object.freeze({ sql: sqlOut, added: Object.freeze(added) as TimeKind[], originalParamCount: base });
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
