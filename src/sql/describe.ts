// Turns one raw statement node into a StatementInfo: decides its kind from
// the node type and options, walks it (walk.ts) for relations, functions and
// time constructs, and describes inner statements (PREPARE, DECLARE, EXPLAIN,
// COPY (query)).

import { constString, nameParts, nodeType, type Obj } from './ast.js';
import { nextToken, parenEnd, skipSpace, tokenIs, type Token } from './lexer.js';
import { commandTag } from './tags.js';
import type { Edit, TimeKind } from './timespans.js';
import { addRelationName, newCtx, quotedRangeVarName, walkWith, type WalkCtx } from './walk.js';
import { insertShape } from './insert-shape.js';
import { keyedRead, keyedWrite } from './keyed-write.js';
import { isWriteStatement, type StatementInfo, type StatementKind, type TxnOptions } from './types.js';

export interface DescribeEnv {
  buf: Uint8Array;
  edits: Edit[];
  /** scope tag for edits found in this statement */
  scope: number;
  /** false where nothing is executed now (plain EXPLAIN) */
  allowEdits: boolean;
  /** this top-level statement's index (the scope of its PREPARE body) */
  prepareIndex: number;
}

const decoder = new TextDecoder();

const TXN_KIND: Record<string, StatementKind> = {
  TRANS_STMT_BEGIN: 'begin',
  TRANS_STMT_START: 'begin',
  TRANS_STMT_COMMIT: 'commit',
  TRANS_STMT_ROLLBACK: 'rollback',
  TRANS_STMT_SAVEPOINT: 'savepoint',
  TRANS_STMT_RELEASE: 'release',
  TRANS_STMT_ROLLBACK_TO: 'rollback_to',
  TRANS_STMT_PREPARE: 'prepare_transaction',
  TRANS_STMT_COMMIT_PREPARED: 'commit_prepared',
  TRANS_STMT_ROLLBACK_PREPARED: 'rollback_prepared',
};

const TXN_GUCS = new Set(['transaction_isolation', 'transaction_read_only', 'transaction_deferrable']);
const ISOLATIONS = new Set(['serializable', 'repeatable read', 'read committed', 'read uncommitted']);
const RELATION_OBJECTS = new Set(['OBJECT_TABLE', 'OBJECT_VIEW', 'OBJECT_MATVIEW', 'OBJECT_SEQUENCE', 'OBJECT_INDEX', 'OBJECT_FOREIGN_TABLE']);
const CURSOR_OPT_HOLD = 0x20;

function textBool(s: string): boolean | undefined {
  const v = s.trim().toLowerCase();
  if (['on', 'true', 'yes', '1', 't', 'y'].includes(v)) return true;
  if (['off', 'false', 'no', '0', 'f', 'n'].includes(v)) return false;
  return undefined;
}

/** A DefElem / SET argument read as a boolean (no argument means true). */
function boolArg(arg: unknown): boolean | undefined {
  if (arg === undefined) return true;
  const o = arg as Obj;
  const c = (o.A_Const ?? o) as Obj;
  if (c.String || c.sval) return textBool(String(((c.String ?? c.sval) as { sval?: string }).sval ?? ''));
  if (c.Integer || c.ival) return Boolean(((c.Integer ?? c.ival) as { ival?: number }).ival ?? 0);
  if (c.Boolean || c.boolval) return Boolean(((c.Boolean ?? c.boolval) as { boolval?: boolean }).boolval);
  return undefined;
}

function defElems(list: unknown): Array<{ name: string; arg: unknown }> {
  if (!Array.isArray(list)) return [];
  return list
    .map((d) => (d as { DefElem?: Obj }).DefElem)
    .filter((d): d is Obj => d !== undefined)
    .map((d) => ({ name: String(d.defname ?? ''), arg: d.arg }));
}

function txnOption(txn: TxnOptions, name: string, arg: unknown): void {
  if (name === 'transaction_isolation') {
    const s = constString(arg) ?? ((arg as Obj | undefined)?.String as { sval?: string } | undefined)?.sval;
    const v = s?.toLowerCase();
    if (v && ISOLATIONS.has(v)) txn.isolation = v as TxnOptions['isolation'];
  } else if (name === 'transaction_read_only') {
    const b = boolArg(arg);
    if (b !== undefined) txn.readOnly = b;
  } else if (name === 'transaction_deferrable') {
    const b = boolArg(arg);
    if (b !== undefined) txn.deferrable = b;
  }
}

function txnOptions(list: unknown): TxnOptions {
  const txn: TxnOptions = {};
  for (const d of defElems(list)) txnOption(txn, d.name, d.arg);
  return txn;
}

function tempName(rv: unknown): string | undefined {
  const r = rv as Obj | undefined;
  if (!r || typeof r.relname !== 'string') return undefined;
  return r.relpersistence === 't' || r.schemaname === 'pg_temp' ? r.relname : undefined;
}

function isPunct(b: Uint8Array, t: Token, ch: number): boolean {
  return t.type === 'punct' && b[t.start] === ch && t.end - t.start === 1;
}

/** Offset where the inner statement of PREPARE / DECLARE / EXPLAIN / COPY (...) starts, or -1. */
function innerStart(type: string, b: Uint8Array, start: number, end: number): number {
  let t = nextToken(b, start);
  const next = (): Token => (t = nextToken(b, t.end));
  if (type === 'PrepareStmt') {
    next(); // name
    next();
    if (isPunct(b, t, 40)) {
      const e = parenEnd(b, t.start);
      if (e < 0) return -1;
      t = nextToken(b, e);
    }
    return tokenIs(b, t, 'as') ? skipSpace(b, t.end) : -1;
  }
  if (type === 'DeclareCursorStmt') {
    while (t.end <= end && !tokenIs(b, t, 'cursor')) next();
    while (t.end <= end && !tokenIs(b, t, 'for')) next();
    return t.end <= end ? skipSpace(b, t.end) : -1;
  }
  if (type === 'ExplainStmt') {
    next();
    if (isPunct(b, t, 40)) {
      const e = parenEnd(b, t.start);
      return e < 0 ? -1 : skipSpace(b, e);
    }
    while (['analyze', 'analyse', 'verbose'].some((w) => tokenIs(b, t, w))) next();
    return t.start;
  }
  // COPY ( query ) TO ...
  next();
  return isPunct(b, t, 40) ? skipSpace(b, t.end) : -1;
}

function describeInner(type: string, query: unknown, env: DescribeEnv, start: number, end: number, scope: number, allowEdits: boolean) {
  const b = env.buf;
  let s = innerStart(type, b, start, end);
  let e = end;
  if (s < 0 || s > end) s = start;
  else if (type === 'CopyStmt') {
    const close = parenEnd(b, nextToken(b, nextToken(b, start).end).start);
    if (close > 0) e = close - 1;
  }
  return describeStatement(query, { ...env, scope, allowEdits }, s, e);
}

function queryKind(ctx: WalkCtx, info: StatementInfo): StatementKind {
  if (ctx.modifying || ctx.into) return 'write';
  if (ctx.locking) {
    info.locksRows = true;
    return 'write';
  }
  const e = ctx.effects;
  if (e.has('unknown') && !e.has('write') && !e.has('session') && !e.has('notify')) info.readUnlessVolatile = true;
  if (e.has('write') || e.has('unknown') || (e.has('session') && e.has('notify'))) return 'write';
  if (e.has('session')) return 'session';
  if (e.has('notify')) {
    if (ctx.notifyChannel !== undefined) info.name = ctx.notifyChannel;
    return 'notify';
  }
  return 'read';
}

function copyFrom(info: StatementInfo, inner: StatementInfo): void {
  for (const r of inner.relations) if (!info.relations.includes(r)) info.relations.push(r);
  for (const f of inner.functions) if (!info.functions.includes(f)) info.functions.push(f);
}

/** Describes one statement node spanning bytes [start, end) of env.buf. */
export function describeStatement(node: unknown, env: DescribeEnv, start: number, end: number): { info: StatementInfo; maxParam: number } {
  const type = nodeType(node) ?? '';
  const body = ((node as Obj)[type] ?? {}) as Obj;
  const b = env.buf;
  const text = decoder.decode(b.subarray(start, end)).trim();
  const ctx = newCtx(b, env.edits, env.scope);
  const info: StatementInfo = { kind: 'write', tag: commandTag(type, body), text, relations: ctx.relations, functions: ctx.functions };
  const editsBefore = env.edits.length;
  const E = env.allowEdits;
  const walkAll = (collect: boolean): void => walkWith(node, ctx, collect && E);
  let maxParam = -1;

  switch (type) {
    case 'SelectStmt': {
      walkAll(true);
      info.kind = queryKind(ctx, info);
      if (ctx.modifying || ctx.into) info.dataWrite = true;
      if (info.kind === 'read') {
        const k = keyedRead(body);
        if (k) info.keyedRead = { table: quotedRangeVarName(k.rel), eq: k.eq, calls: k.calls };
      }
      const t = tempName((body.intoClause as Obj | undefined)?.rel);
      if (t) info.createsTemp = t;
      break;
    }
    case 'InsertStmt':
    case 'UpdateStmt':
    case 'DeleteStmt':
    case 'MergeStmt': {
      ctx.drawOnce = type !== 'InsertStmt';
      walkAll(true);
      if (ctx.locking) info.locksRows = true;
      info.dataWrite = true;
      const rel = (body.relation as Obj | undefined) ?? undefined;
      if (rel && typeof rel.relname === 'string') info.target = quotedRangeVarName(rel);
      const keyed = rel ? keyedWrite(type, body) : undefined;
      if (keyed) info.keyed = keyed;
      if (type === 'InsertStmt') {
        const shape = insertShape(body, b, end);
        if (shape) info.insert = shape;
      }
      break;
    }
    case 'CreateFunctionStmt':
    case 'DoStmt': {
      walkAll(false);
      const calls = bodyCalls(type === 'DoStmt' ? body.args : body.options, body.sql_body, ctx);
      if (calls.length > 0) info.bodyCalls = calls;
      break;
    }
    case 'TransactionStmt': {
      info.kind = TXN_KIND[String(body.kind)] ?? 'other_utility';
      const name = body.savepoint_name ?? body.gid;
      if (typeof name === 'string') info.name = name;
      if (info.kind === 'begin') info.txn = txnOptions(body.options);
      if (body.chain) info.chain = true;
      break;
    }
    case 'VariableSetStmt': {
      const name = String(body.name ?? '');
      if (body.is_local) info.setLocal = true;
      if (name !== '' && body.kind !== 'VAR_SET_MULTI') info.name = name;
      if ((body.kind === 'VAR_SET_MULTI' && name.startsWith('TRANSACTION')) || name === 'SESSION CHARACTERISTICS') {
        info.kind = 'set_transaction';
        info.txn = txnOptions(body.args);
      } else if (TXN_GUCS.has(name) && (body.kind === 'VAR_SET_VALUE' || body.kind === 'VAR_SET_CURRENT')) {
        info.kind = 'set_transaction';
        const txn: TxnOptions = {};
        if (Array.isArray(body.args)) txnOption(txn, name, body.args[0]);
        info.txn = txn;
      } else info.kind = 'session';
      break;
    }
    case 'VariableShowStmt':
      info.kind = 'read';
      if (typeof body.name === 'string') info.name = body.name;
      break;
    case 'DiscardStmt':
      info.kind = 'session';
      info.discard = String(body.target ?? '').replace(/^DISCARD_/, '').toLowerCase() as StatementInfo['discard'];
      break;
    case 'ConstraintsSetStmt':
      info.kind = 'session';
      info.setLocal = true;
      break;
    case 'ListenStmt':
    case 'UnlistenStmt':
    case 'NotifyStmt':
      info.kind = type === 'ListenStmt' ? 'listen' : type === 'UnlistenStmt' ? 'unlisten' : 'notify';
      if (typeof body.conditionname === 'string') info.name = body.conditionname;
      break;
    case 'CopyStmt': {
      walkWith({ ...body, query: undefined }, ctx, false);
      if (body.query) {
        const r = describeInner(type, body.query, env, start, end, env.scope, E);
        info.inner = r.info;
        copyFrom(info, r.info);
        maxParam = r.maxParam;
      }
      if (body.filename !== undefined || body.is_program) info.kind = 'write';
      else info.kind = body.is_from ? 'copy_from' : 'copy_to';
      if (body.is_from) {
        info.dataWrite = true;
        const rel = body.relation as Obj | undefined;
        if (rel && typeof rel.relname === 'string') info.target = quotedRangeVarName(rel);
        info.copyColumns = Array.isArray(body.attlist) ? nameParts(body.attlist) : null;
      }
      break;
    }
    case 'CreatedbStmt':
    case 'DropdbStmt':
    case 'AlterDatabaseStmt':
    case 'AlterDatabaseSetStmt':
    case 'AlterDatabaseRefreshCollStmt':
      info.kind = type === 'CreatedbStmt' ? 'create_database' : type === 'DropdbStmt' ? 'drop_database' : 'alter_database';
      if (typeof body.dbname === 'string') info.name = body.dbname;
      break;
    case 'RenameStmt':
    case 'AlterOwnerStmt':
      walkAll(false);
      if ((body.renameType ?? body.objectType) === 'OBJECT_DATABASE') {
        info.kind = 'alter_database';
        const o = typeof body.subname === 'string' ? body.subname : (body.object as { String?: { sval?: string } } | undefined)?.String?.sval;
        if (o !== undefined) info.name = o;
      }
      break;
    case 'VacuumStmt':
      walkAll(false);
      if (body.is_vacuumcmd) info.kind = 'non_transactional';
      break;
    case 'IndexStmt':
      walkAll(false);
      if (body.concurrent) info.kind = 'non_transactional';
      break;
    case 'DropStmt':
      walkAll(false);
      if (body.concurrent) info.kind = 'non_transactional';
      if (RELATION_OBJECTS.has(String(body.removeType)) && Array.isArray(body.objects)) {
        for (const o of body.objects) addRelationName(nameParts((o as { List?: { items?: unknown } }).List?.items).join('.'), ctx);
      }
      break;
    case 'ReindexStmt':
      walkAll(false);
      if (defElems(body.params).some((d) => d.name === 'concurrently' && boolArg(d.arg)) ||
          ['REINDEX_OBJECT_SCHEMA', 'REINDEX_OBJECT_SYSTEM', 'REINDEX_OBJECT_DATABASE'].includes(String(body.kind))) {
        info.kind = 'non_transactional';
      }
      break;
    case 'CreateTableSpaceStmt':
    case 'DropTableSpaceStmt':
    case 'AlterSystemStmt':
      walkAll(false);
      info.kind = 'non_transactional';
      break;
    case 'ClusterStmt':
      walkAll(false);
      if (!body.relation) info.kind = 'non_transactional';
      break;
    case 'AlterTableStmt':
      walkAll(false);
      if (Array.isArray(body.cmds) && body.cmds.some((c) => {
        const cmd = (c as { AlterTableCmd?: Obj }).AlterTableCmd;
        return cmd?.subtype === 'AT_DetachPartition' && ((cmd.def as Obj | undefined)?.PartitionCmd as Obj | undefined)?.concurrent;
      })) info.kind = 'non_transactional';
      break;
    case 'CheckPointStmt':
      info.kind = 'checkpoint';
      break;
    case 'LoadStmt':
      info.kind = 'load';
      if (typeof body.filename === 'string') info.name = body.filename;
      break;
    case 'PrepareStmt': {
      info.kind = 'prepare';
      if (typeof body.name === 'string') info.name = body.name;
      walkWith({ ...body, query: undefined }, ctx, false);
      const r = describeInner(type, body.query, env, start, end, env.prepareIndex, E);
      info.inner = r.info;
      copyFrom(info, r.info);
      maxParam = r.maxParam;
      const params = assignPrepareParams(env.edits, editsBefore, env.prepareIndex, r.maxParam);
      if (params.length > 0) info.timeParams = params;
      break;
    }
    case 'ExecuteStmt':
      info.kind = 'execute';
      if (typeof body.name === 'string') info.name = body.name;
      walkAll(true);
      break;
    case 'DeallocateStmt':
      info.kind = 'deallocate';
      if (typeof body.name === 'string') info.name = body.name;
      break;
    case 'DeclareCursorStmt': {
      info.kind = 'declare_cursor';
      if (typeof body.portalname === 'string') info.name = body.portalname;
      if (((body.options as number | undefined) ?? 0) & CURSOR_OPT_HOLD) info.holdCursor = true;
      const r = describeInner(type, body.query, env, start, end, env.scope, E);
      info.inner = r.info;
      copyFrom(info, r.info);
      maxParam = r.maxParam;
      if (r.info.locksRows) info.locksRows = true;
      break;
    }
    case 'FetchStmt':
    case 'ClosePortalStmt':
      info.kind = type === 'FetchStmt' ? 'fetch' : 'close_cursor';
      if (typeof body.portalname === 'string') info.name = body.portalname;
      break;
    case 'ExplainStmt': {
      let analyze = false;
      for (const d of defElems(body.options)) if (d.name === 'analyze') analyze = boolArg(d.arg) ?? false;
      const r = describeInner(type, body.query, env, start, end, env.scope, E && analyze);
      info.inner = r.info;
      copyFrom(info, r.info);
      maxParam = r.maxParam;
      const k = r.info.kind;
      info.kind = !analyze || k === 'read' ? 'read' : k === 'session' || k === 'notify' ? k : 'write';
      if (analyze && r.info.locksRows) info.locksRows = true;
      break;
    }
    case 'CreateTableAsStmt': {
      const matview = body.objtype === 'OBJECT_MATVIEW';
      walkWith({ ...body, query: undefined }, ctx, false);
      walkWith(body.query, ctx, !matview && E);
      info.dataWrite = true;
      const t = tempName((body.into as Obj | undefined)?.rel);
      if (t) info.createsTemp = t;
      break;
    }
    case 'CreateStmt':
    case 'ViewStmt':
    case 'CreateSeqStmt': {
      walkAll(false);
      const t = tempName(body.relation ?? body.view ?? body.sequence);
      if (t) info.createsTemp = t;
      break;
    }
    case 'CallStmt':
      // funccall is a bare FuncCall struct: wrap it so the walker sees the procedure name
      walkWith({ FuncCall: body.funccall }, ctx, E);
      break;
    case 'CreateSubscriptionStmt':
    case 'AlterSubscriptionStmt':
    case 'DropSubscriptionStmt':
      walkAll(false);
      info.kind = 'other_utility';
      break;
    default:
      walkAll(false);
  }

  if (maxParam < 0) maxParam = ctx.maxParam;
  if (ctx.untypedTime) info.untypedTimeLiteral = true;
  if (ctx.nondeterministic.length > 0 && isWriteStatement(info)) info.nondeterministic = ctx.nondeterministic;
  if (ctx.random) info.random = true;
  if (ctx.sequences.length > 0) info.sequences = ctx.sequences;
  if (ctx.setDefault) info.setDefault = true;
  if (ctx.orderChecks.length > 0) info.orderChecks = ctx.orderChecks;
  if (ctx.unknownFunctions.length > 0) info.unknownFunctions = ctx.unknownFunctions;
  if (ctx.written.length > 0) info.written = ctx.written;
  if (ctx.unsafe.length > 0 && isWriteStatement(info)) info.unsafe = ctx.unsafe;
  for (let i = editsBefore; i < env.edits.length; i++) {
    if (env.edits[i]!.kind !== null || env.edits[i]!.replace) {
      info.needsRewrite = true;
      break;
    }
  }
  return { info, maxParam };
}

/** PREPARE bodies: each distinct time kind becomes $max+1, $max+2, ... in order of appearance. */
function assignPrepareParams(edits: Edit[], from: number, scope: number, maxParam: number): TimeKind[] {
  const kinds: TimeKind[] = [];
  const mine = edits.slice(from).filter((e) => e.scope === scope && e.kind !== null).sort((a, b) => a.start - b.start);
  for (const e of mine) {
    let i = kinds.indexOf(e.kind!);
    if (i < 0) i = kinds.push(e.kind!) - 1;
    e.param = maxParam + i + 1;
  }
  return kinds;
}

/** Calls in a function body or DO block that would give each node a different result. */
const BODY_CALL = /\b(now|random|random_normal|gen_random_uuid|uuid_generate_v4|clock_timestamp|statement_timestamp|transaction_timestamp|timeofday|current_timestamp|current_date|current_time|localtime|localtimestamp|nextval|setval|txid_current|pg_current_xact_id|pg_backend_pid|inet_server_port|inet_server_addr)\b/gi;

function bodyCalls(options: unknown, sqlBody: unknown, ctx: WalkCtx): string[] {
  const found = new Set<string>();
  for (const d of defElems(options)) {
    if (d.name !== 'as') continue;
    const parts = Array.isArray((d.arg as { List?: { items?: unknown[] } } | undefined)?.List?.items)
      ? ((d.arg as { List: { items: unknown[] } }).List.items)
      : [d.arg];
    for (const p of parts) {
      const text = (p as { String?: { sval?: string } } | undefined)?.String?.sval;
      if (typeof text !== 'string') continue;
      for (const m of text.matchAll(BODY_CALL)) found.add(m[1]!.toLowerCase());
    }
  }
  if (sqlBody) {
    // BEGIN ATOMIC ... END / RETURN expr: parsed statements, already walked
    for (const f of ctx.functions) {
      const bare = f.slice(f.lastIndexOf('.') + 1).toLowerCase();
      BODY_CALL.lastIndex = 0;
      if (BODY_CALL.test(bare)) found.add(bare);
    }
    if (ctx.random) found.add('random');
    if (ctx.timeSeen) found.add('current_timestamp');
  }
  return [...found];
}
