// The shapes classify() returns (StatementInfo, Classification) and the
// rule that says which statements count as writes.

import type { TimeKind } from './timespans.js';
import type { OrderCheck } from './walk.js';

export type { OrderCheck };

export type StatementKind =
  | 'read'
  | 'write'
  | 'begin'
  | 'commit'
  | 'rollback'
  | 'savepoint'
  | 'release'
  | 'rollback_to'
  | 'prepare_transaction'
  | 'commit_prepared'
  | 'rollback_prepared'
  | 'set_transaction'
  | 'session'
  | 'listen'
  | 'unlisten'
  | 'notify'
  | 'copy_from'
  | 'copy_to'
  | 'create_database'
  | 'drop_database'
  | 'alter_database'
  | 'non_transactional'
  | 'prepare'
  | 'execute'
  | 'deallocate'
  | 'declare_cursor'
  | 'fetch'
  | 'close_cursor'
  | 'checkpoint'
  | 'load'
  | 'other_utility';

export interface TxnOptions {
  readOnly?: boolean;
  isolation?: 'serializable' | 'repeatable read' | 'read committed' | 'read uncommitted';
  deferrable?: boolean;
}

/** See src/sql/keyed-write.ts. */
export interface KeyedWrite {
  /** UPDATE / DELETE: the columns its WHERE compares with `=` to a value; null for INSERT ... VALUES */
  eq: string[] | null;
}

/** A SELECT of one table whose WHERE compares columns with `=` to values (src/sql/keyed-write.ts keyedRead). */
export interface KeyedRead {
  /** the table (quoted regclass text) */
  table: string;
  /** the columns compared with `=` to a value */
  eq: string[];
  /** it calls a function by name (which may be slow): never sent over a shared read connection, where it would hold up the reads pipelined behind it */
  calls: boolean;
}

export interface StatementInfo {
  kind: StatementKind;
  /** the command tag PostgreSQL would send, without counts ('' after a syntax error) */
  tag: string;
  /** this statement's own text (slice of the input, trimmed, without the trailing ';') */
  text: string;
  /** begin / set_transaction: parsed options */
  txn?: TxnOptions;
  /** relations read or written, as written (schema-qualified when given); CTE names excluded */
  relations: string[];
  /** CREATE TEMP TABLE|VIEW|SEQUENCE, SELECT INTO TEMP, CREATE TABLE pg_temp.x: the created relation name (unqualified) */
  createsTemp?: string;
  /** functions called anywhere in the statement ('schema.fn' when qualified) */
  functions: string[];
  /**
   * savepoint / prepared statement / cursor name, notification channel, GID of
   * 2PC statements, database name, SET / RESET / SHOW variable, LOAD file
   */
  name?: string;
  /** prepare: the inner statement; declare_cursor and copy_to (query form): the query; explain: the explained statement */
  inner?: StatementInfo;
  /** SELECT ... FOR UPDATE/SHARE (also inside subqueries): needs the main node */
  locksRows?: boolean;
  /** DISCARD target */
  discard?: 'all' | 'temp' | 'plans' | 'sequences';
  /** the text could not be parsed: send it to the main node and let PostgreSQL report the error */
  syntaxError?: boolean;
  /** the parser's message for a syntax error (or why the statement could not be analysed) */
  error?: string;
  /** nested too deeply to analyse (thousands of levels): treated as a write, nothing else known */
  tooComplex?: boolean;
  /** SET LOCAL / SET CONSTRAINTS: lasts until the end of the transaction */
  setLocal?: boolean;
  /** COMMIT AND CHAIN / ROLLBACK AND CHAIN */
  chain?: boolean;
  /** DECLARE ... WITH HOLD */
  holdCursor?: boolean;
  /** this statement holds time constructs that rewrite.ts replaces */
  needsRewrite?: boolean;
  /**
   * 'prepare' whose body had time constructs: rewriteSimple() turns them into
   * extra parameters; EXECUTE must then pass these values (see rewriteExecute()).
   */
  timeParams?: TimeKind[];
  /** builtins called in a write that give a different value on each node (random(), ...) */
  nondeterministic?: string[];
  /** a 'now'/'today'/'tomorrow'/'yesterday' string not under a time-type cast: PostgreSQL may still read it as a time */
  untypedTimeLiteral?: boolean;
  /** calls random()/random_normal() or a UUID generator (rewritten to random()): the coordinator seeds every node */
  random?: boolean;
  /** sequences drawn from or set (nextval/setval; '*' = not a constant name) */
  sequences?: string[];
  /** constructs that cannot agree across nodes (txid_current(), ctid, ...), in a statement that writes */
  unsafe?: string[];
  /** SET col = DEFAULT / DEFAULT in VALUES */
  setDefault?: boolean;
  /** SELECTs with LIMIT/OFFSET (or INSERT ... SELECT) whose order the planner must prove total */
  orderChecks?: OrderCheck[];
  /** user functions (effect unknown) */
  unknownFunctions?: string[];
  /** a write only because of unknown functions: a read if the catalog says none is volatile */
  readUnlessVolatile?: boolean;
  /** INSERT: the shape default filling needs */
  insert?: InsertShape;
  /** COPY FROM: the column list, or null for all columns */
  copyColumns?: string[] | null;
  /** tables INSERT/UPDATE/DELETE/MERGE write, data-modifying CTEs included (quoted regclass text) */
  written?: string[];
  /** UPDATE / DELETE / MERGE / INSERT / COPY FROM target (quoted regclass text) */
  target?: string;
  /** CREATE FUNCTION / PROCEDURE / DO: non-deterministic calls found in the body */
  bodyCalls?: string[];
  /** changes data (INSERT/UPDATE/DELETE/MERGE, data-modifying CTE, SELECT INTO, CREATE TABLE AS, COPY FROM) */
  dataWrite?: boolean;
  /** INSERT ... VALUES, or UPDATE / DELETE selecting rows by `column = value` terms: may wait until COMMIT to reach the other nodes (src/sql/keyed-write.ts) */
  keyed?: KeyedWrite;
  /** a read of one table by `column = value` terms: with a unique key among them, it may run on its node as a prepared statement (docs/routing.md) */
  keyedRead?: KeyedRead;
}

/** Where an INSERT's parts are (byte offsets into the analysed text), for adding columns to it. */
export interface InsertShape {
  relation: string;
  /** the column list as written, or null */
  columns: string[] | null;
  /** where new columns go: before the ')' of the column list, or (no list) before the source */
  colsAt: number;
  source: 'values' | 'select' | 'default';
  /** VALUES rows: offset of each row's ')' and its DEFAULT items */
  rows?: Array<{ end: number; items: number; defaults: Array<{ index: number; start: number; end: number }> }>;
  /** INSERT ... SELECT: how many columns the source yields, when countable */
  selectWidth?: number;
  /** INSERT ... SELECT: the source query's span */
  select?: { start: number; end: number };
  /** DEFAULT VALUES: its span */
  defaultValues?: { start: number; end: number };
  /** the SELECT source's order when it is not obviously total */
  orderCheck?: OrderCheck;
  /** OVERRIDING SYSTEM/USER VALUE given */
  overriding?: boolean;
}

export interface Classification {
  /** empty for an empty (or comment-only) query string */
  statements: StatementInfo[];
  /** true when any statement is not a pure read / transaction-control / session statement */
  write: boolean;
  /** some statement holds time constructs that rewrite.ts replaces */
  needsRewrite: boolean;
}

const NOT_WRITE: ReadonlySet<StatementKind> = new Set<StatementKind>([
  'read', 'begin', 'commit', 'rollback', 'savepoint', 'release', 'rollback_to', 'set_transaction', 'session',
  'listen', 'unlisten', 'copy_to', 'prepare', 'execute', 'deallocate', 'declare_cursor', 'fetch', 'close_cursor',
  'load',
]);

/** Whether one statement changes replicated data or is not known to be safe. */
export function isWriteStatement(s: StatementInfo): boolean {
  if (!NOT_WRITE.has(s.kind) || s.locksRows) return true;
  return (s.kind === 'copy_to' || s.kind === 'declare_cursor') && s.inner?.kind === 'write';
}

