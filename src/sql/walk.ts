// Walks one statement's raw parse tree and collects what classification and
// rewriting need: relations, called functions and their effects, nested
// data-modifying statements, row locks, SELECT INTO, $n parameters, and the
// byte spans of time constructs to rewrite (see timespans.ts).

import { functionEffect, type FunctionEffect } from './functions.js';
import { NONDETERMINISTIC_BUILTINS } from './builtins.js';
import { aliasEdit, castTimeType, timeEditFor, type Edit } from './timespans.js';
import { nameParts, type Obj } from './ast.js';

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
    if (target && typeof target.relname === 'string') pushUnique(ctx.relations, rangeVarName(target));
  } else {
    if (Array.isArray(body.lockingClause) && body.lockingClause.length > 0) ctx.locking = true;
    if (body.intoClause) ctx.into = true;
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
      walkFields(body, ctx);
      return;
    }
    case 'A_Const':
      if (ctx.collect && timeWord(body) !== undefined) ctx.untypedTime = true;
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
  if (builtinCall && NONDETERMINISTIC_BUILTINS.has(bare)) pushUnique(ctx.nondeterministic, bare);
  if (effect === 'notify' && Array.isArray(body.args)) {
    const first = (body.args[0] as { A_Const?: { sval?: { sval?: string } } }).A_Const?.sval?.sval;
    if (first !== undefined) ctx.notifyChannel = first;
  }
  if (ctx.collect && builtinCall) addEdit(timeEditFor(ctx.buf, 'FuncCall', body), ctx);
  walkFields(body, ctx);
}
