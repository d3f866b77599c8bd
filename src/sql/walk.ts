// Walks one statement's raw parse tree and collects what classification and
// rewriting need: relations, called functions and their effects, nested
// data-modifying statements, row locks, SELECT INTO, $n parameters, and the
// byte spans of time constructs to rewrite (see timespans.ts).

import { functionEffect, type FunctionEffect } from './functions.js';
import { NONDETERMINISTIC_BUILTINS, RANDOM_BUILTINS, REFUSED_IN_WRITES, SEQUENCE_BUILTINS, SYSTEM_COLUMNS, UUID_BUILTINS } from './builtins.js';
import { aliasEdit, castTimeType, timeEditFor, type Edit } from './timespans.js';
import { constString, nameParts, nodeType, type Obj } from './ast.js';
import { callEnd } from './lexer.js';

/**
 * What gen_random_uuid() / uuid_generate_v4() become: a version-4 UUID made
 * from two random() draws, so that the seed the coordinator sets before the
 * statement gives every node the same value (docs/determinism.md).
 */
export const UUID_FROM_RANDOM =
  "pg_catalog.overlay(pg_catalog.overlay(pg_catalog.md5(pg_catalog.random()::pg_catalog.text || ':' || pg_catalog.random()::pg_catalog.text), '4', 13), '8', 17)::pg_catalog.uuid";

/** A SELECT with LIMIT/OFFSET whose ORDER BY does not cover its output: total only if it covers a key of `relation`. */
export interface OrderCheck {
  /** the single relation in FROM, or undefined (joins, subqueries: cannot be proven total) */
  relation: string | undefined;
  /** plain column names in ORDER BY */
  sortColumns: string[];
  /** why the order is needed, for the error */
  what: 'LIMIT' | 'INSERT ... SELECT';
}

export interface WalkCtx {
  readonly buf: Uint8Array;
  relations: string[];
  functions: string[];
  effects: Set<FunctionEffect>;
  nondeterministic: string[];
  modifying: boolean;
  locking: boolean;
  into: boolean;
  maxParam: number;
  untypedTime: boolean;
  notifyChannel: string | undefined;
  edits: Edit[];
  /** scope tag put on each edit: -1 for the statement itself, else a PREPARE body */
  scope: number;
  /** collect time edits (false inside stored definitions: views, defaults, function bodies...) */
  collect: boolean;
  /** CTE names visible at this point, innermost last */
  ctes: string[];
  /** random(), random_normal(), or a UUID function (rewritten to random()) is called */
  random: boolean;
  /** CURRENT_DATE, CURRENT_TIMESTAMP, LOCALTIME ... seen (also where nothing is rewritten) */
  timeSeen: boolean;
  /** UPDATE/DELETE/MERGE: random, UUID and sequence draws are wrapped to be evaluated once */
  drawOnce: boolean;
  /** sequences drawn from or set by nextval()/setval() (name as written; '*' when not a constant) */
  sequences: string[];
  /** constructs that cannot give the same value on every node (txid_current(), ctid, ...) */
  unsafe: string[];
  /** UPDATE ... SET col = DEFAULT, or DEFAULT in a VALUES list */
  setDefault: boolean;
  /** LIMIT/OFFSET selects whose order is not obviously total */
  orderChecks: OrderCheck[];
  /** functions whose effect is unknown (user functions): the statement is a write unless the catalog says otherwise */
  unknownFunctions: string[];
  /** tables that INSERT/UPDATE/DELETE/MERGE write, data-modifying CTEs included (quoted regclass text) */
  written: string[];
}

export function newCtx(buf: Uint8Array, edits: Edit[], scope: number): WalkCtx {
  return {
    buf,
    relations: [],
    functions: [],
    effects: new Set(),
    nondeterministic: [],
    modifying: false,
    locking: false,
    into: false,
    maxParam: 0,
    untypedTime: false,
    notifyChannel: undefined,
    edits,
    scope,
    collect: false,
    ctes: [],
    random: false,
    timeSeen: false,
    drawOnce: false,
    sequences: [],
    unsafe: [],
    setDefault: false,
    orderChecks: [],
    unknownFunctions: [],
    written: [],
  };
}

const TIME_WORDS = new Set(['now', 'today', 'tomorrow', 'yesterday']);

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function pushUnique(list: string[], v: string): void {
  if (!list.includes(v)) list.push(v);
}

export function rangeVarName(rv: Obj): string {
  const parts: string[] = [];
  if (str(rv.catalogname)) parts.push(rv.catalogname as string);
  if (str(rv.schemaname)) parts.push(rv.schemaname as string);
  parts.push(str(rv.relname) ?? '');
  return parts.join('.');
}

/** The RangeVar's name as SQL text with every part quoted ("s"."t"), for regclass input. */
export function quotedRangeVarName(rv: Obj): string {
  const parts: string[] = [];
  if (str(rv.schemaname)) parts.push(rv.schemaname as string);
  parts.push(str(rv.relname) ?? '');
  return parts.map((p) => `"${p.replace(/"/g, '""')}"`).join('.');
}

function addRangeVar(rv: Obj, ctx: WalkCtx): void {
  const name = rangeVarName(rv);
  if (!rv.schemaname && ctx.ctes.includes(name)) return; // a CTE, not a relation
  pushUnique(ctx.relations, name);
}

export function addRelationName(name: string, ctx: WalkCtx): void {
  pushUnique(ctx.relations, name);
}

/** Walks any JSON value of the parse tree. */
export function walk(v: unknown, ctx: WalkCtx): void {
  if (Array.isArray(v)) {
    for (const x of v) walk(x, ctx);
    return;
  }
  if (v === null || typeof v !== 'object') return;
  const o = v as Obj;
  let only: string | undefined;
  let count = 0;
  for (const k in o) {
    if (count++ === 0) only = k;
  }
  if (count === 1 && only !== undefined) {
    const c = only.charCodeAt(0);
    if (c >= 65 && c <= 90) {
      visitNode(only, o[only] as Obj, ctx);
      return;
    }
  }
  if (typeof o.relname === 'string' && 'relpersistence' in o) addRangeVar(o, ctx);
  for (const k in o) {
    const x = o[k];
    if (x !== null && typeof x === 'object') walk(x, ctx);
  }
}

/** Walks `v` with edit collection switched on or off. */
export function walkWith(v: unknown, ctx: WalkCtx, collect: boolean): void {
  const saved = ctx.collect;
  ctx.collect = collect;
  walk(v, ctx);
  ctx.collect = saved;
}

function walkFields(body: Obj, ctx: WalkCtx, skip?: string): void {
  for (const k in body) {
    if (k === skip) continue;
    const x = body[k];
    if (x !== null && typeof x === 'object') walk(x, ctx);
  }
}

/**
 * A WITH clause: each CTE body sees the CTEs before it (all of them when
 * RECURSIVE); afterwards the statement sees them all. Returns the names.
 */
function visitWith(wc: Obj, ctx: WalkCtx): string[] {
  const names: string[] = [];
  const ctes = Array.isArray(wc.ctes) ? wc.ctes : [];
  const all = ctes.map((c) => String((c as { CommonTableExpr?: Obj }).CommonTableExpr?.ctename ?? ''));
  const depth = ctx.ctes.length;
  if (wc.recursive) ctx.ctes.push(...all);
  for (let i = 0; i < ctes.length; i++) {
    walk(ctes[i], ctx);
    if (!wc.recursive) ctx.ctes.push(all[i]!);
    names.push(all[i]!);
  }
  ctx.ctes.length = depth;
  return names;
}

function visitQuery(type: string, body: Obj, ctx: WalkCtx): void {
  if (type !== 'SelectStmt') {
    ctx.modifying = true;
    // the target of INSERT/UPDATE/DELETE/MERGE is always a table, even if a CTE has its name
    const target = body.relation as Obj | undefined;
    if (target && typeof target.relname === 'string') {
      pushUnique(ctx.relations, rangeVarName(target));
      pushUnique(ctx.written, quotedRangeVarName(target));
    }
  } else {
    if (Array.isArray(body.lockingClause) && body.lockingClause.length > 0) ctx.locking = true;
    if (body.intoClause) ctx.into = true;
    if (body.limitCount || body.limitOffset) {
      const check = orderCheck(body, 'LIMIT');
      if (check) ctx.orderChecks.push(check);
    }
  }
  const depth = ctx.ctes.length;
  if (body.withClause) ctx.ctes.push(...visitWith(body.withClause as Obj, ctx));
  for (const k in body) {
    const x = body[k];
    if (x === null || typeof x !== 'object' || k === 'withClause') continue;
    if ((k === 'targetList' && type === 'SelectStmt') || k === 'returningList') visitTargets(x, ctx);
    else if (k === 'larg' || k === 'rarg') visitQuery('SelectStmt', x as Obj, ctx); // bare SelectStmt of UNION etc.
    else walk(x, ctx);
  }
  ctx.ctes.length = depth;
}

/** SELECT lists and RETURNING lists: time constructs keep their column name. */
function visitTargets(list: unknown, ctx: WalkCtx): void {
  if (!Array.isArray(list)) return walk(list, ctx);
  for (const item of list) {
    const rt = (item as { ResTarget?: Obj }).ResTarget;
    if (!rt) {
      walk(item, ctx);
      continue;
    }
    const before = ctx.edits.length;
    walk(rt.val, ctx);
    if (!ctx.collect || rt.name || ctx.edits.length !== before + 1) continue;
    const colname = implicitTimeColname(rt.val);
    if (colname === undefined) continue;
    const edit = aliasEdit(ctx.buf, (rt.location as number | undefined) ?? 0, ctx.edits[before]!, colname, ctx.scope);
    if (edit) ctx.edits.push(edit);
  }
}

/** Column name PostgreSQL gives a target that is a time function, possibly under casts/COLLATE. */
function implicitTimeColname(val: unknown): string | undefined {
  let v = val as Obj | undefined;
  for (;;) {
    if (!v) return undefined;
    const inner = (v.TypeCast ?? v.CollateClause) as Obj | undefined;
    if (!inner) break;
    v = inner.arg as Obj | undefined;
  }
  const fc = v.FuncCall as Obj | undefined;
  if (fc) {
    const parts = nameParts(fc.funcname);
    return parts[parts.length - 1];
  }
  const svf = v.SQLValueFunction as { op?: string } | undefined;
  if (svf?.op) return svf.op.replace(/^SVFOP_/, '').replace(/_N$/, '').toLowerCase();
  return undefined;
}

function visitNode(type: string, body: Obj, ctx: WalkCtx): void {
  switch (type) {
    case 'RangeVar':
      addRangeVar(body, ctx);
      walkFields(body, ctx);
      return;
    case 'SelectStmt':
    case 'InsertStmt':
    case 'UpdateStmt':
    case 'DeleteStmt':
    case 'MergeStmt':
      visitQuery(type, body, ctx);
      return;
    case 'FuncCall':
      visitFuncCall(body, ctx);
      return;
    case 'SQLValueFunction':
      if (/TIME|DATE/.test(String(body.op ?? ''))) ctx.timeSeen = true;
      if (ctx.collect) addEdit(timeEditFor(ctx.buf, 'SQLValueFunction', body), ctx);
      return;
    case 'TypeCast': {
      const arg = body.arg as { A_Const?: Obj } | undefined;
      const word = timeWord(arg?.A_Const);
      if (word !== undefined && castTimeType(body) !== undefined) {
        // a time literal under a time-type cast: rewritten, or rejected by every node alike
        if (ctx.collect) addEdit(timeEditFor(ctx.buf, 'TypeCast', body), ctx);
        walkFields(body, ctx, 'arg');
        return;
      }
      if (castTypeName(body) === 'regclass' && nameParts((body.arg as { ColumnRef?: Obj } | undefined)?.ColumnRef?.fields).at(-1) === 'tableoid') {
        return; // tableoid::regclass is the table's name: the same everywhere
      }
      walkFields(body, ctx);
      return;
    }
    case 'A_Const':
      if (ctx.collect && timeWord(body) !== undefined) ctx.untypedTime = true;
      return;
    case 'ColumnRef': {
      const fields = nameParts(body.fields);
      const last = fields[fields.length - 1];
      if (last !== undefined && SYSTEM_COLUMNS.has(last)) pushUnique(ctx.unsafe, last);
      return;
    }
    case 'SetToDefault':
      ctx.setDefault = true;
      return;
    case 'ParamRef': {
      const n = (body.number as number | undefined) ?? 0;
      if (n > ctx.maxParam) ctx.maxParam = n;
      return;
    }
    default:
      walkFields(body, ctx);
  }
}

function timeWord(aconst: Obj | undefined): string | undefined {
  const s = (aconst?.sval as { sval?: string } | undefined)?.sval;
  if (s === undefined) return undefined;
  const w = s.trim().toLowerCase();
  return TIME_WORDS.has(w) ? w : undefined;
}

function addEdit(edit: Edit | undefined, ctx: WalkCtx): void {
  if (!edit) return;
  edit.scope = ctx.scope;
  ctx.edits.push(edit);
}

function visitFuncCall(body: Obj, ctx: WalkCtx): void {
  const parts = nameParts(body.funcname);
  const sqlSyntax = body.funcformat === 'COERCE_SQL_SYNTAX';
  const schema = parts.length > 1 ? parts.slice(0, -1).join('.') : undefined;
  const bare = parts[parts.length - 1] ?? '';
  const builtinCall = schema === undefined || schema === 'pg_catalog';
  pushUnique(ctx.functions, sqlSyntax ? bare : parts.join('.'));
  const effect = functionEffect(schema, bare);
  ctx.effects.add(effect);
  if (effect === 'unknown') pushUnique(ctx.unknownFunctions, parts.join('.'));
  if (builtinCall && NONDETERMINISTIC_BUILTINS.has(bare)) pushUnique(ctx.nondeterministic, bare);
  if (builtinCall && REFUSED_IN_WRITES.has(bare)) pushUnique(ctx.unsafe, `${bare}()`);
  if (builtinCall && RANDOM_BUILTINS.has(bare)) ctx.random = true;
  if (builtinCall && SEQUENCE_BUILTINS.has(bare)) pushUnique(ctx.sequences, sequenceArg(body.args));
  const uuid = (builtinCall || schema === 'public') && UUID_BUILTINS.has(bare) && !body.args;
  if (uuid) ctx.random = true;
  const draw = uuid || (builtinCall && (RANDOM_BUILTINS.has(bare) || SEQUENCE_BUILTINS.has(bare)));
  if (ctx.collect && (uuid || (draw && ctx.drawOnce))) {
    const start = typeof body.location === 'number' ? body.location : 0;
    const end = callEnd(ctx.buf, start);
    if (end > 0) {
      // In UPDATE/DELETE/MERGE a draw becomes an uncorrelated subquery (an InitPlan): evaluated
      // once, and not again when PostgreSQL re-checks a row another transaction updated
      // meanwhile (EvalPlanQual), which happens on some nodes and not on others.
      const call = uuid ? UUID_FROM_RANDOM : Buffer.from(ctx.buf.subarray(start, end)).toString('utf8');
      const text = ctx.drawOnce ? `(SELECT ${call})` : `(${call})`;
      ctx.edits.push({ start, end, kind: null, prefix: text, suffix: '', scope: ctx.scope, replace: true });
      walkWith(body.args, ctx, false); // count $n; nothing inside is rewritten (arguments are constants)
      return;
    }
  }
  if (effect === 'notify' && Array.isArray(body.args)) {
    const first = (body.args[0] as { A_Const?: { sval?: { sval?: string } } }).A_Const?.sval?.sval;
    if (first !== undefined) ctx.notifyChannel = first;
  }
  if (ctx.collect && builtinCall) addEdit(timeEditFor(ctx.buf, 'FuncCall', body), ctx);
  walkFields(body, ctx);
}

/** The sequence a nextval()/setval() call names: its constant text argument, or '*' when computed. */
function sequenceArg(args: unknown): string {
  if (!Array.isArray(args) || args.length === 0) return '*';
  let a = args[0] as Obj;
  const cast = a.TypeCast as Obj | undefined;
  if (cast) a = cast.arg as Obj;
  const s = constString(a);
  return s === undefined ? '*' : s;
}

function castTypeName(body: Obj): string | undefined {
  const tn = body.typeName as Obj | undefined;
  const parts = nameParts(tn?.names);
  return parts[parts.length - 1];
}

/** Plain column name of an expression (t.col or col), or undefined. */
function columnName(v: unknown): string | undefined {
  const cr = (v as { ColumnRef?: Obj } | undefined)?.ColumnRef;
  if (!cr) return undefined;
  const parts = nameParts(cr.fields);
  return Array.isArray(cr.fields) && parts.length > 0 && parts.length === cr.fields.length ? parts[parts.length - 1] : undefined;
}

/**
 * Whether a SELECT's ORDER BY makes its row order total. Total when it sorts
 * by every output column (ties are then identical rows, whose order does not
 * matter) or when it has no FROM relation at all (VALUES, generate_series()).
 * Otherwise an OrderCheck for the planner, which can still prove it total
 * with a key of the single FROM relation; undefined when already total.
 */
export function orderCheck(body: Obj, what: OrderCheck['what']): OrderCheck | undefined {
  if (Array.isArray(body.valuesLists)) return undefined;
  const from = Array.isArray(body.fromClause) ? body.fromClause : [];
  const relations = from.filter((f) => nodeType(f) === 'RangeVar');
  if (from.length === 0 || from.every((f) => nodeType(f) === 'RangeFunction')) return undefined;
  if (body.op && body.op !== 'SETOP_NONE') return { relation: undefined, sortColumns: [], what };
  const sorts = Array.isArray(body.sortClause) ? body.sortClause : [];
  const sortColumns: string[] = [];
  const sortPositions = new Set<number>();
  for (const sb of sorts) {
    const node = (sb as { SortBy?: Obj }).SortBy?.node;
    const col = columnName(node);
    if (col !== undefined) sortColumns.push(col);
    const ival = ((node as { A_Const?: { ival?: { ival?: number } } } | undefined)?.A_Const?.ival?.ival);
    if (typeof ival === 'number') sortPositions.add(ival);
  }
  const targets = Array.isArray(body.targetList) ? body.targetList : [];
  const star = targets.some((t) => {
    const fields = ((t as { ResTarget?: Obj }).ResTarget?.val as { ColumnRef?: Obj } | undefined)?.ColumnRef?.fields;
    return Array.isArray(fields) && fields.some((f) => nodeType(f) === 'A_Star');
  });
  if (!star && targets.length > 0 && !body.distinctClause) {
    // a target is fixed by the sort when every column it reads is sorted on (constants and
    // random() read none: tied rows then differ only in values drawn in output order)
    const covered = targets.every((t, i) => {
      const rt = (t as { ResTarget?: Obj }).ResTarget;
      if (sortPositions.has(i + 1)) return true;
      if (typeof rt?.name === 'string' && sortColumns.includes(rt.name)) return true;
      const cols = columnRefs(rt?.val);
      return cols !== undefined && cols.every((c) => sortColumns.includes(c));
    });
    if (covered) return undefined;
  }
  const rel = relations.length === 1 && from.length === 1 ? quotedRangeVarName((relations[0] as { RangeVar: Obj }).RangeVar) : undefined;
  return { relation: rel, sortColumns, what };
}

/** Column names an expression reads (last name part), or undefined when it holds a subquery or a star. */
function columnRefs(v: unknown, out: string[] = []): string[] | undefined {
  if (Array.isArray(v)) {
    for (const x of v) if (columnRefs(x, out) === undefined) return undefined;
    return out;
  }
  if (v === null || typeof v !== 'object') return out;
  const o = v as Obj;
  if (o.SubLink || o.SelectStmt) return undefined;
  const cr = o.ColumnRef as Obj | undefined;
  if (cr) {
    const parts = nameParts(cr.fields);
    if (!Array.isArray(cr.fields) || parts.length !== cr.fields.length) return undefined;
    out.push(parts[parts.length - 1]!);
    return out;
  }
  for (const k in o) {
    const x = o[k];
    if (x !== null && typeof x === 'object' && columnRefs(x, out) === undefined) return undefined;
  }
  return out;
}
