// Which writes may reach the other nodes at commit time instead of right
// after the main node ran them (docs/routing.md "Writes held until COMMIT").
//
// A write can wait only if its effect is fixed by rows it locks on the main
// node: then no transaction can change what it reads between its run on the
// main node and its run elsewhere (they would queue on the main node's row
// locks first, and reach the other nodes in that order). Here that means:
//   - INSERT ... VALUES of expressions without subqueries, no ON CONFLICT,
//     no WITH: it reads nothing but its own new rows;
//   - UPDATE / DELETE of one table with no FROM / USING, no WITH, no
//     subquery, no WHERE CURRENT OF, whose WHERE is an AND of terms, some of
//     them `column = <expression without columns>`: the router then asks the
//     catalog whether those columns cover a unique key, and the executor
//     whether the main node touched exactly one row (that row is locked, so
//     every term and every SET expression sees the same row version on
//     every node).
// Everything else a statement could read (triggers, rules, row security,
// inheritance children, column defaults) is the catalog's part (router.ts).
import type { Obj } from './ast.js';
import type { KeyedWrite } from './types.js';

/**
 * The table and `=` columns of a SelectStmt that reads one table and
 * nothing else (no join, subquery, CTE, set operation, locking clause or
 * INTO), or undefined. With a unique key among the columns (the router asks
 * the catalog) it reads at most one row, and its generic plan is the
 * obvious one, so it may run as a prepared statement (parameterize.ts).
 */
export function keyedRead(body: Obj): { rel: Obj; eq: string[]; calls: boolean } | undefined {
  if (body.withClause || body.intoClause || nonEmpty(body.lockingClause) || nonEmpty(body.valuesLists)) return undefined;
  if (body.op !== undefined && body.op !== 'SETOP_NONE') return undefined;
  const from = body.fromClause;
  if (!Array.isArray(from) || from.length !== 1) return undefined;
  const rel = (from[0] as { RangeVar?: Obj }).RangeVar;
  if (!rel || typeof rel.relname !== 'string' || rel.inh !== true) return undefined; // ONLY t: left alone
  for (const k in body) if (k !== 'fromClause' && hasAny(body[k], READERS)) return undefined;
  const eq: string[] = [];
  for (const term of andTerms(body.whereClause)) {
    const col = equalityColumn(term);
    if (col !== null && !eq.includes(col)) eq.push(col);
  }
  return eq.length > 0 ? { rel, eq, calls: hasAny(body, CALLS) } : undefined;
}

/** A function called by name: it may take its time (pg_sleep, a user function), so the read is not pipelined behind others'. */
const CALLS = new Set(['FuncCall']);

/** The KeyedWrite of an InsertStmt / UpdateStmt / DeleteStmt body, or undefined when it is not one. */
export function keyedWrite(type: string, body: Obj): KeyedWrite | undefined {
  if (body.withClause) return undefined;
  if (type === 'InsertStmt') {
    if (body.onConflictClause || (body.override !== undefined && body.override !== 'OVERRIDING_NOT_SET')) return undefined;
    const sel = (body.selectStmt as { SelectStmt?: Obj } | undefined)?.SelectStmt;
    if (!sel) return undefined; // DEFAULT VALUES: the defaults decide (left to the catalog rule, so refused here)
    if (!Array.isArray(sel.valuesLists) || sel.withClause || sel.sortClause || sel.limitCount || sel.limitOffset) return undefined;
    if (hasAny(sel.valuesLists, READERS)) return undefined;
    return { eq: null };
  }
  if (type !== 'UpdateStmt' && type !== 'DeleteStmt') return undefined;
  if (nonEmpty(body.fromClause) || nonEmpty(body.usingClause)) return undefined;
  if (hasAny(body.whereClause, READERS) || hasAny(body.targetList, READERS) || hasAny(body.returningList, READERS)) return undefined;
  const eq: string[] = [];
  for (const term of andTerms(body.whereClause)) {
    const col = equalityColumn(term);
    if (col !== null && !eq.includes(col)) eq.push(col);
  }
  if (eq.length === 0) return undefined;
  return { eq };
}

/** Nodes that read other rows than the statement's own, or a cursor's position. */
const READERS = new Set(['SubLink', 'RangeSubselect', 'CurrentOfExpr', 'SelectStmt']);

function nonEmpty(v: unknown): boolean {
  return Array.isArray(v) && v.length > 0;
}

/** Whether any node of the tree has one of `types` as its key. */
function hasAny(v: unknown, types: ReadonlySet<string>): boolean {
  if (v === null || typeof v !== 'object') return false;
  if (Array.isArray(v)) return v.some((x) => hasAny(x, types));
  for (const k in v as Obj) {
    if (types.has(k)) return true;
    if (hasAny((v as Obj)[k], types)) return true;
  }
  return false;
}

/** The terms of a WHERE that are ANDed at the top. */
function andTerms(where: unknown): unknown[] {
  const b = (where as { BoolExpr?: { boolop?: string; args?: unknown[] } } | undefined)?.BoolExpr;
  if (b && b.boolop === 'AND_EXPR' && Array.isArray(b.args)) return b.args.flatMap(andTerms);
  return where === undefined || where === null ? [] : [where];
}

/** `column = expression without columns` (either way round): the column's name, else null. */
function equalityColumn(term: unknown): string | null {
  const e = (term as { A_Expr?: Obj } | undefined)?.A_Expr;
  if (!e || e.kind !== 'AEXPR_OP') return null;
  const name = e.name as { String?: { sval?: string } }[] | undefined;
  if (!Array.isArray(name) || name.length !== 1 || name[0]?.String?.sval !== '=') return null;
  const l = columnName(e.lexpr);
  const r = columnName(e.rexpr);
  if (l !== null && r === null && !hasAny(e.rexpr, COLUMNS)) return l;
  if (r !== null && l === null && !hasAny(e.lexpr, COLUMNS)) return r;
  return null;
}

const COLUMNS = new Set(['ColumnRef']);

/** The column a ColumnRef names (its last field), or null. */
function columnName(v: unknown): string | null {
  const fields = (v as { ColumnRef?: { fields?: { String?: { sval?: string } }[] } } | undefined)?.ColumnRef?.fields;
  if (!Array.isArray(fields) || fields.length === 0 || fields.length > 3) return null;
  const last = fields[fields.length - 1]?.String?.sval;
  return typeof last === 'string' ? last : null;
}
