// Classifies client SQL with PostgreSQL's own parser: what kind of statement
// each one is (read, write, transaction control, session, ...), its command
// tag, the relations and functions it touches, and where the time constructs
// that rewrite.ts must replace are. Results are cached by text in an LRU.

import { PgqError } from '../errors.js';
import { parseSql, initParser, type ParseTree } from './parser.js';
import { Lru } from './lru.js';
import { setReadOnlyFunctionNames, setWriteFunctionNames } from './functions.js';
import { describeStatement, type DescribeEnv } from './describe.js';
import { executeArgEdits, type Edit, type TimeKind } from './timespans.js';
import { isWriteStatement, type Classification, type StatementInfo } from './types.js';

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
  const pieces: string[] = [];
  let pos = 0;
  for (const e of edits) {
    pieces.push(decoder.decode(buf.subarray(pos, e.start)));
    pos = e.end;
  }
  pieces.push(decoder.decode(buf.subarray(pos)));
  const cls: Classification = {
    statements,
    write: statements.some(isWriteStatement),
    needsRewrite: edits.some((e) => e.kind !== null || e.replace === true),
  };
  return { cls: deepFreeze(cls), edits, pieces, maxParam };
}

/** The cached analysis of `sql` (parses on a miss). Used by rewrite.ts. */
export function analyze(sql: string): Analyzed {
  const hit = cache.get(sql);
  if (hit) return hit;
  const a = analyzeUncached(sql);
  if (sql.length <= MAX_CACHED_TEXT) cache.set(sql, a);
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
}

/** Function names (config) declared safe to run on one node; replaces the previous list. */
export function setReadOnlyFunctions(names: Iterable<string>): void {
  setReadOnlyFunctionNames(names);
  cache.clear();
}

export function setClassifyCacheSize(entries: number): void {
  cache.resize(entries);
}

export function clearClassifyCache(): void {
  cache.clear();
}

export function classifyCacheStats(): { size: number; capacity: number; hits: number; misses: number } {
  return { size: cache.size, capacity: cache.capacity, hits: cache.hits, misses: cache.misses };
}
