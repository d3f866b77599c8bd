// Classifies client SQL with PostgreSQL's own parser: what kind of statement
// each one is (read, write, transaction control, session, ...), its command
// tag, the relations and functions it touches, and where the time constructs
// that rewrite.ts must replace are. Results are cached by text in an LRU;
// reads and INSERT/UPDATE/DELETE also by their text with numbers blanked out
// (shapeKey).

import { PgqError } from '../errors.js';
import { parseSql, initParser, type ParseTree } from './parser.js';
import { Lru } from './lru.js';
import { nextToken } from './lexer.js';
import { setReadOnlyFunctionNames, setWriteFunctionNames } from './functions.js';
import { describeStatement, type DescribeEnv } from './describe.js';
import { executeArgEdits, type Edit, type TimeKind } from './timespans.js';
import { isWriteStatement, type Classification, type InsertShape, type StatementInfo } from './types.js';

export { initParser };
export type { TimeKind };
export { isWriteStatement };
export type { Classification, StatementInfo, StatementKind, TxnOptions } from './types.js';

/** Everything derived from one text; classification plus rewrite spans. */
export interface Analyzed {
  cls: Classification;
  /** sorted, non-overlapping byte edits over the whole text */
  edits: Edit[];
  /** the text between edits, decoded: pieces.length === edits.length + 1 */
  pieces: string[];
  /** highest $n outside PREPARE bodies */
  maxParam: number;
  /** rewrite.ts memo for rewriteExtended(), keyed by declared parameter count */
  extended?: Map<number, unknown>;
}

const DEFAULT_CACHE_SIZE = 10_000;
/** texts longer than this are classified but not cached (they are rarely repeated, and big) */
const MAX_CACHED_TEXT = 64 * 1024;
const cache = new Lru<string, Analyzed>(DEFAULT_CACHE_SIZE);

function deepFreeze<T>(o: T): T {
  if (o !== null && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o as object)) deepFreeze(v);
  }
  return o;
}

function syntaxErrorResult(sql: string, err: unknown): Analyzed {
  const message = err instanceof Error ? err.message : String(err);
  const info: StatementInfo = { kind: 'write', tag: '', text: sql.trim(), relations: [], functions: [], syntaxError: true, error: message };
  return { cls: deepFreeze({ statements: [info], write: true, needsRewrite: false }), edits: [], pieces: [sql], maxParam: 0 };
}

/**
 * Nesting too deep for JavaScript's stack (thousands of levels): nothing is
 * known, so it is a write, flagged tooComplex (the executor may refuse it
 * with SQLSTATE 54001 like PostgreSQL's own stack depth limit would).
 */
function tooComplexResult(sql: string): Analyzed {
  const info: StatementInfo = {
    kind: 'write',
    tag: '',
    text: sql.trim(),
    relations: [],
    functions: [],
    tooComplex: true,
    error: 'statement is nested too deeply to classify',
  };
  return { cls: deepFreeze({ statements: [info], write: true, needsRewrite: false }), edits: [], pieces: [sql], maxParam: 0 };
}

const decoder = new TextDecoder();

function analyzeUncached(sql: string): Analyzed {
  let tree;
  try {
    tree = parseSql(sql);
  } catch (err) {
    if (err instanceof PgqError) throw err; // parser not initialised
    if (err instanceof RangeError) return tooComplexResult(sql); // JSON.parse of a very deep tree
    return syntaxErrorResult(sql, err);
  }
  try {
    return describeAll(sql, tree);
  } catch (err) {
    if (err instanceof RangeError) return tooComplexResult(sql);
    throw err;
  }
}

/** The text between the (sorted) edits, decoded. */
function piecesOf(buf: Buffer, edits: readonly Edit[]): string[] {
  const pieces: string[] = [];
  let pos = 0;
  for (const e of edits) {
    pieces.push(decoder.decode(buf.subarray(pos, e.start)));
    pos = e.end;
  }
  pieces.push(decoder.decode(buf.subarray(pos)));
  return pieces;
}

function describeAll(sql: string, tree: ParseTree): Analyzed {
  const buf = Buffer.from(sql, 'utf8');
  const edits: Edit[] = [];
  const statements: StatementInfo[] = [];
  let maxParam = 0;
  const prepared = new Map<string, readonly TimeKind[]>();
  tree.stmts.forEach((raw, index) => {
    const start = raw.stmt_location ?? 0;
    const end = raw.stmt_len ? start + raw.stmt_len : buf.length;
    const env: DescribeEnv = { buf, edits, scope: -1, allowEdits: true, prepareIndex: index };
    const { info, maxParam: m } = describeStatement(raw.stmt, env, start, end);
    if (info.kind !== 'prepare' && m > maxParam) maxParam = m;
    if (info.kind === 'prepare' && info.name !== undefined) prepared.set(info.name, info.timeParams ?? []);
    const kinds = info.kind === 'execute' && info.name !== undefined ? prepared.get(info.name) : undefined;
    if (kinds && kinds.length > 0) {
      // EXECUTE of a statement PREPAREd earlier in this same text with time parameters
      const more = executeArgEdits(buf, start, kinds);
      if (more) {
        edits.push(...more);
        info.needsRewrite = true;
      }
    }
    statements.push(info);
  });
  edits.sort((a, b) => a.start - b.start || a.end - b.end);
  const pieces = piecesOf(buf, edits);
  const cls: Classification = {
    statements,
    write: statements.some(isWriteStatement),
    needsRewrite: edits.some((e) => e.kind !== null || e.replace === true),
  };
  return { cls: deepFreeze(cls), edits, pieces, maxParam };
}

/**
 * Statements that differ only in their numeric constants (`... WHERE aid =
 * 4711`, `SET abalance = abalance + -17`: the commonest uncached texts)
 * share one analysis. The key is the text with every number token blanked;
 * a hit gets its own text, and every byte offset of the shared analysis
 * (rewrite edits, INSERT shape) moved by the difference in length of the
 * number tokens before it. Only analyses that took nothing from a number's
 * value are shared: one SELECT, INSERT, UPDATE or DELETE, without a number
 * inside a rewritten span (CURRENT_TIME(3)), without ORDER BY checks (which
 * read ORDER BY 1 positions) and without an inner statement.
 */
interface ShapeEntry {
  a: Analyzed;
  /** characters before and after the statement's text in the analysed string */
  lead: number;
  trail: number;
  /** byte spans of the number tokens of the analysed text: start0, end0, start1, end1, ... */
  spans: number[];
}

const SHAPE_MAX_TEXT = 4096;
const shapes = new Lru<string, ShapeEntry>(DEFAULT_CACHE_SIZE);

interface Shape {
  key: string;
  /** the text, as the UTF-8 decoder gives it back (the single piece of an analysis without edits) */
  text: string;
  buf: Buffer;
  spans: number[];
}

/** The last text shapeOf() saw: the router asks again for the text it just classified (src/sql/parameterize.ts). */
let lastShape: { sql: string; shape: Shape | null } = { sql: '', shape: null };

function shapeOf(sql: string): Shape | null {
  if (lastShape.sql === sql) return lastShape.shape;
  const shape = shapeOfUncached(sql);
  lastShape = { sql, shape };
  return shape;
}

function shapeOfUncached(sql: string): Shape | null {
  if (sql.length > SHAPE_MAX_TEXT || !/[0-9]/.test(sql)) return null;
  const b = Buffer.from(sql, 'utf8');
  let out = '';
  let last = 0;
  const spans: number[] = [];
  for (let pos = 0; ; ) {
    const t = nextToken(b, pos);
    if (t.type === 'eof' || t.end <= pos) break;
    if (t.type === 'number') {
      out += b.toString('latin1', last, t.start) + '\u0000';
      last = t.end;
      spans.push(t.start, t.end);
    }
    pos = t.end;
  }
  if (last === 0) return null;
  // A lone surrogate became U+FFFD in the UTF-8 bytes: the text is then what they decode to (as piecesOf gives it).
  const text = (sql as unknown as { isWellFormed(): boolean }).isWellFormed() ? sql : decoder.decode(b);
  return { key: out + b.toString('latin1', last), text, buf: b, spans };
}

/** The text with its number tokens replaced by NUL (which SQL text cannot hold), or null when it has none. */
export function shapeKey(sql: string): string | null {
  return shapeOf(sql)?.key ?? null;
}

/** The shape key, the UTF-8 bytes and the byte spans of the number tokens of `sql`, or null when it has none. */
export function shapeSpans(sql: string): { key: string; buf: Buffer; spans: number[] } | null {
  return shapeOf(sql);
}

const SHARED_WRITE_TAGS = new Set(['INSERT', 'UPDATE', 'DELETE']);

/**
 * The byte offsets a one-statement analysis holds (edit ends, INSERT shape
 * positions), each passed through `move`: the edits and the INSERT shape
 * rebuilt with the moved offsets.
 */
function moveOffsets(a: Analyzed, move: (p: number) => number): { edits: Edit[]; insert: InsertShape | undefined } {
  const edits = a.edits.map((x) => ({ ...x, start: move(x.start), end: move(x.end) }));
  const ins = a.cls.statements[0]?.insert;
  if (!ins) return { edits, insert: undefined };
  const span = (x: { start: number; end: number }) => ({ start: move(x.start), end: move(x.end) });
  const insert: InsertShape = { ...ins, colsAt: move(ins.colsAt) };
  if (ins.rows) insert.rows = ins.rows.map((r) => ({ ...r, end: move(r.end), defaults: r.defaults.map((d) => ({ ...d, ...span(d) })) }));
  if (ins.select) insert.select = span(ins.select);
  if (ins.defaultValues) insert.defaultValues = span(ins.defaultValues);
  return { edits, insert };
}

function shareable(a: Analyzed, sql: string, spans: number[]): ShapeEntry | null {
  const st = a.cls.statements;
  if (st.length !== 1) return null;
  const s = st[0]!;
  const write = s.kind === 'write' && s.dataWrite === true && SHARED_WRITE_TAGS.has(s.tag);
  if (!(s.kind === 'read' && s.tag === 'SELECT') && !write) return null;
  if (s.inner || s.syntaxError || s.tooComplex || s.orderChecks || s.insert?.orderCheck || s.createsTemp) return null;
  if (s.timeParams || s.sequences?.includes('*')) return null;
  // no offset may fall inside a number, and no number inside a rewritten span
  let inside = false;
  moveOffsets(a, (o) => {
    for (let i = 0; i < spans.length; i += 2) if (o > spans[i]! && o < spans[i + 1]!) inside = true;
    return o;
  });
  if (inside) return null;
  for (const e of a.edits) {
    for (let i = 0; i < spans.length; i += 2) if (spans[i]! >= e.start && spans[i + 1]! <= e.end) return null;
  }
  const lead = sql.indexOf(s.text);
  if (lead < 0 || sql.lastIndexOf(s.text) !== lead) return null; // found once: the same place in every text of this shape
  return { a, lead, trail: sql.length - lead - s.text.length, spans };
}

function fromShape(e: ShapeEntry, sql: string, shape: Shape): Analyzed {
  const a = e.a;
  const s = a.cls.statements[0]!;
  const text = sql.slice(e.lead, sql.length - e.trail);
  if (a.edits.length === 0 && !s.insert) {
    // The common case (a plain SELECT, UPDATE or DELETE): no offset to move, one piece.
    return { cls: freezeHit(a.cls, { ...s, text }), edits: [], pieces: [shape.text], maxParam: a.maxParam };
  }
  const from = e.spans;
  const to = shape.spans;
  /** Where byte offset `p` of the analysed text is in this one. */
  const move = (p: number): number => {
    let d = 0;
    for (let i = 0; i < from.length && from[i + 1]! <= p; i += 2) d += to[i + 1]! - to[i]! - (from[i + 1]! - from[i]!);
    return p + d;
  };
  const { edits, insert } = moveOffsets(a, move);
  const info: StatementInfo = { ...s, text };
  if (insert) info.insert = deepFreeze(insert);
  return { cls: freezeHit(a.cls, info), edits, pieces: piecesOf(shape.buf, edits), maxParam: a.maxParam };
}

/** A shape hit's classification: its own statement over the shared (frozen) parts of `shared`. */
function freezeHit(shared: Classification, info: StatementInfo): Classification {
  const statements = [Object.freeze(info)];
  Object.freeze(statements);
  return Object.freeze<Classification>({ statements, write: shared.write, needsRewrite: shared.needsRewrite });
}

/** The cached analysis of `sql` (parses on a miss). Used by rewrite.ts. */
export function analyze(sql: string): Analyzed {
  const hit = cache.get(sql);
  if (hit) return hit;
  const shape = shapeOf(sql);
  if (shape !== null) {
    const e = shapes.get(shape.key);
    if (e) return fromShape(e, sql, shape);
  }
  const a = analyzeUncached(sql);
  if (sql.length <= MAX_CACHED_TEXT) cache.set(sql, a);
  if (shape !== null) {
    const e = shareable(a, sql, shape.spans);
    if (e) shapes.set(shape.key, e);
  }
  return a;
}

/**
 * Classifies a query string (one or more statements). Never throws for bad
 * SQL: a syntax error gives one 'write' statement with syntaxError set.
 * The result is shared and frozen: do not modify it.
 */
export function classify(sql: string): Classification {
  return analyze(sql).cls;
}

/** Extra function names (config) that make a read a write; replaces the previous list. */
export function setWriteFunctions(names: Iterable<string>): void {
  setWriteFunctionNames(names);
  cache.clear();
  shapes.clear();
}

/** Function names (config) declared safe to run on one node; replaces the previous list. */
export function setReadOnlyFunctions(names: Iterable<string>): void {
  setReadOnlyFunctionNames(names);
  cache.clear();
  shapes.clear();
}

export function setClassifyCacheSize(entries: number): void {
  cache.resize(entries);
  shapes.resize(entries);
}

export function clearClassifyCache(): void {
  cache.clear();
  shapes.clear();
}

export function classifyCacheStats(): { size: number; capacity: number; hits: number; misses: number } {
  return { size: cache.size, capacity: cache.capacity, hits: cache.hits, misses: cache.misses };
}
