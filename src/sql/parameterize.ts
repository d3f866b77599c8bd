// Keyed writes (and keyed reads) sent by the simple protocol run on the nodes
// as server-side prepared statements (docs/routing.md "Keyed statements as
// prepared statements"):
// `UPDATE pgbench_accounts SET abalance = abalance + -17 WHERE aid = 4711`
// goes to every node as `... + $1 WHERE aid = $2`, parsed once per node
// connection, then bound with this text's numbers. PostgreSQL then skips
// parsing, analysis and (with its plan cache's generic plan) planning.
//
// Only numeric constants become parameters, each typed as PostgreSQL types
// the literal (gram.y / make_const: an integer that fits int4 is int4, one
// that fits int8 is int8, anything else numeric), with a folded minus sign
// taken into the value as PostgreSQL folds it. A text is not parameterized
// when any number token is not such a constant (typmods as in
// numeric(10,2), positional ORDER BY / GROUP BY / DISTINCT ON references),
// when it holds a $n parameter reference, or when the parser disagrees with
// the shape. Time functions become extra parameters as in the extended
// protocol (rewrite.ts). Whether a statement qualifies at all (one table,
// rows chosen by a unique key, so that the generic plan is the obvious
// one) is the router's decision; this module only builds the messages.
import { encodeBind, encodeParse } from '../protocol/frontend.js';
import type { Obj } from './ast.js';
import { shapeSpans } from './classify.js';
import { Lru } from './lru.js';
import { parseSql } from './parser.js';
import { formatTimestamptz, rewriteExtended, type ParamRewrite, type TimeValues } from './rewrite.js';

const INT4 = 23;
const INT8 = 20;
const NUMERIC = 1700;

/** One statement as the nodes know it: created once per node connection. */
export interface NodeStatement {
  /** The statement's name on the nodes. */
  name: string;
  /** The text sent in the Parse message. */
  sql: string;
  parse: Buffer;
}

export interface ParamForm {
  stmt: NodeStatement;
  /** The Bind of the unnamed portal with this text's values. */
  bind: Buffer;
  /** SELECT, RETURNING: the portal is described, so that the rows come with their RowDescription as in the simple protocol. */
  describe: boolean;
  /** A position (1-based, characters) in `stmt.sql` mapped to the client's text. */
  position(p: number): number;
}

interface Template {
  /** For each number token of the shape: bytes before it that belong to the constant (a folded minus sign and the spaces after it). */
  dash: number[];
  base: string;
  rw: ParamRewrite | null;
  describe: boolean;
  /** Its statements by parameter types ("23,20,0"). */
  statements: Map<string, NodeStatement>;
}

/** Templates by shape key; null: that shape is not parameterized. */
const templates = new Lru<string, Template | null>(2048);
/** Statements by text and parameter types: shapes that differ only in a folded minus sign share one. */
const statements = new Lru<string, NodeStatement>(4096);
/** Statements made so far: each gets the next name (a name is never reused for another text). */
let made = 0;

const INTEGER = /^[0-9]+$/;
const DECIMAL = /^(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$/;
const INT4_MAX = 2147483647n;
const INT8_MAX = 9223372036854775807n;

/** The type PostgreSQL gives a numeric literal written `text` (sign included). */
export function literalType(text: string): number | null {
  const neg = text.startsWith('-');
  const digits = neg ? text.slice(1) : text;
  if (INTEGER.test(digits)) {
    if (digits.length <= 9) return INT4;
    const v = BigInt(digits);
    const max = (m: bigint): bigint => (neg ? m + 1n : m);
    if (v <= max(INT4_MAX)) return INT4;
    if (v <= max(INT8_MAX)) return INT8;
    return NUMERIC;
  }
  return DECIMAL.test(digits) ? NUMERIC : null;
}

/**
 * The prepared form of a one-statement text, or null when it has none.
 * `times` gives the transaction's clock values, asked for only by
 * statements with time functions; null (reads): such a statement has no
 * prepared form (a read takes the node's own clock, as sent).
 */
export function parameterize(text: string, times: (() => TimeValues) | null): ParamForm | null {
  const shape = shapeSpans(text);
  if (!shape) return null;
  let t = templates.get(shape.key);
  if (t === undefined) {
    t = template(text, shape.buf, shape.spans);
    templates.set(shape.key, t);
  }
  if (!t || (t.rw && times === null)) return null;
  const { buf, spans } = shape;
  const values: Buffer[] = [];
  const types: number[] = [];
  for (let i = 0; i < spans.length; i += 2) {
    const dash = t.dash[i / 2]!;
    const token = buf.toString('latin1', spans[i]!, spans[i + 1]!);
    const v = dash > 0 ? `-${token}` : token;
    const type = literalType(v);
    if (type === null) return null;
    values.push(dash > 1 ? Buffer.from(v, 'latin1') : buf.subarray(spans[i]! - dash, spans[i + 1]!));
    types.push(type);
  }
  if (t.rw && times) {
    const tv = times();
    for (const k of t.rw.added) {
      values.push(Buffer.from(formatTimestamptz(tv[k])));
      types.push(0); // the rewrite casts explicitly
    }
  }
  const sql = t.rw ? t.rw.sql : t.base;
  const key = types.join(',');
  let stmt = t.statements.get(key);
  if (!stmt) {
    stmt = nodeStatement(sql, types, key);
    t.statements.set(key, stmt);
  }
  const bind = encodeBind({ portal: '', statement: stmt.name, paramFormats: [], params: values, resultFormats: [] });
  // A position in the sent text: back over the time parameters (t.rw), then over the constants' parameters.
  return { stmt, bind, describe: t.describe, position: (p) => mapPosition(t.rw ? t.rw.position(p) : p, buf, spans, t.dash) };
}

/**
 * The coordinator's own statement for a text and its parameter types
 * (`key`: the types joined by commas, when the caller has made it): one
 * name per distinct pair, so every node connection that has it prepared
 * has the same statement under that name.
 */
export function nodeStatement(sql: string, types: readonly number[], key = types.join(',')): NodeStatement {
  const full = `${sql}\u0000${key}`;
  let stmt = statements.get(full);
  if (!stmt) {
    const name = `pgquorum_${++made}`;
    stmt = { name, sql, parse: encodeParse({ name, sql, paramTypes: [...types] }) };
    statements.set(full, stmt);
  }
  return stmt;
}

/**
 * The template of a shape, from one text of it; null when the shape is not
 * parameterized. Every number token must be a constant the parser saw at
 * that place (or at a minus sign right before it, folded into the value).
 */
function template(text: string, buf: Buffer, spans: number[]): Template | null {
  let tree;
  try {
    tree = parseSql(text);
  } catch {
    return null;
  }
  if (tree.stmts.length !== 1) return null;
  const stmt = tree.stmts[0]!.stmt;
  const consts = new Set<number>();
  if (!collect(stmt, consts, false)) return null;
  const dash: number[] = [];
  let out = '';
  let last = 0;
  for (let i = 0; i < spans.length; i += 2) {
    const s = spans[i]!;
    let at = s;
    if (!consts.delete(s)) {
      let p = s - 1;
      while (p >= 0 && (buf[p] === 32 || (buf[p]! >= 9 && buf[p]! <= 13))) p--;
      if (p < 0 || buf[p] !== 45 || !consts.delete(p)) return null; // not a constant the parser saw here
      at = p;
    }
    dash.push(s - at);
    out += buf.toString('utf8', last, at) + `$${i / 2 + 1}`;
    last = spans[i + 1]!;
  }
  if (consts.size > 0) return null; // a constant the shape did not see as a number token
  const base = out + buf.toString('utf8', last);
  const rw = rewriteExtended(base);
  const body = Object.values(stmt)[0] as Obj;
  // Rows come back with their RowDescription, as in the simple protocol: a SELECT's, or a RETURNING list's.
  const describe = 'SelectStmt' in stmt || (Array.isArray(body.returningList) && body.returningList.length > 0);
  return { dash, base, rw, describe, statements: new Map() };
}

/** Keys whose integer constants PostgreSQL reads as output column positions. */
const POSITIONAL = new Set(['sortClause', 'groupClause', 'distinctClause']);

/**
 * Adds the locations of the numeric constants under `v` to `out`; false
 * when the tree holds something that rules parameters out: a $n reference,
 * or a numeric constant where a parameter cannot stand (a type modifier, a
 * positional reference).
 */
function collect(v: unknown, out: Set<number>, banned: boolean): boolean {
  if (v === null || typeof v !== 'object') return true;
  if (Array.isArray(v)) return v.every((x) => collect(x, out, banned));
  const o = v as Obj;
  for (const k in o) {
    const child = o[k];
    if (k === 'ParamRef') return false;
    if (k === 'A_Const') {
      const c = child as Obj;
      if (c.ival === undefined && c.fval === undefined) continue;
      if (banned || typeof c.location !== 'number') return false;
      out.add(c.location);
      continue;
    }
    if (!collect(child, out, banned || k === 'TypeName' || k === 'typeName' || POSITIONAL.has(k))) return false;
  }
  return true;
}

/** Character (code point) count of `buf[from, to)`, UTF-8. */
function chars(buf: Buffer, from: number, to: number): number {
  let n = 0;
  for (let i = from; i < to; i++) if ((buf[i]! & 0xc0) !== 0x80) n++;
  return n;
}

/**
 * A 1-based character position in the sent text, mapped to the client's
 * text: shifted by the length differences of the constants replaced before
 * it; a position inside a parameter points at its constant.
 */
function mapPosition(p: number, buf: Buffer, spans: number[], dash: number[]): number {
  const x = p - 1;
  let shift = 0; // sent minus client characters so far
  for (let i = 0; i < spans.length; i += 2) {
    const start = spans[i]! - dash[i / 2]!;
    const clientStart = chars(buf, 0, start);
    const clientLen = spans[i + 1]! - start; // ASCII
    const sentLen = `$${i / 2 + 1}`.length;
    const sentStart = clientStart + shift;
    if (x < sentStart) break;
    if (x < sentStart + sentLen) return clientStart + 1;
    shift += sentLen - clientLen;
  }
  return x - shift + 1;
}

export function clearParameterizeCache(): void {
  templates.clear();
}
