// Finds where the parts of an INSERT are in its text, so that the
// determinism planner (src/determinism/plan.ts) can name columns the INSERT
// left to their defaults and give them explicit values: the column list, the
// VALUES rows and their DEFAULT items, the source query, DEFAULT VALUES.
// Byte offsets come from the parse tree's locations and the lexer; when the
// text does not look as expected nothing is returned (and the planner then
// refuses rather than guessing).

import { nodeType, type Obj } from './ast.js';
import { nextToken, parenEnd, tokenIs, type Token } from './lexer.js';
import { orderCheck, quotedRangeVarName } from './walk.js';
import type { InsertShape } from './types.js';

const isPunct = (b: Uint8Array, t: Token, ch: string): boolean =>
  t.type === 'punct' && t.end - t.start === 1 && b[t.start] === ch.charCodeAt(0);

/** The InsertShape of an InsertStmt body spanning [start, end) of `b`, or undefined. */
export function insertShape(body: Obj, b: Uint8Array, end: number): InsertShape | undefined {
  const rv = body.relation as Obj | undefined;
  if (!rv || typeof rv.location !== 'number') return undefined;
  const relation = quotedRangeVarName(rv);
  // skip the (qualified) name
  let t = nextToken(b, rv.location);
  for (;;) {
    if (t.type !== 'ident' && t.type !== 'qident') return undefined;
    t = nextToken(b, t.end);
    if (isPunct(b, t, '.')) {
      t = nextToken(b, t.end);
      continue;
    }
    break;
  }
  const alias = (rv.alias as { Alias?: unknown } | undefined) ?? undefined;
  if (alias) {
    if (tokenIs(b, t, 'as')) t = nextToken(b, t.end);
    t = nextToken(b, t.end); // the alias itself
  }
  const cols = Array.isArray(body.cols) ? body.cols : [];
  let columns: string[] | null = null;
  let colsAt: number;
  if (cols.length > 0) {
    if (!isPunct(b, t, '(')) return undefined;
    const close = parenEnd(b, t.start);
    if (close < 0) return undefined;
    colsAt = close - 1;
    columns = [];
    for (const c of cols) {
      const rt = (c as { ResTarget?: Obj }).ResTarget;
      if (!rt || typeof rt.name !== 'string' || (Array.isArray(rt.indirection) && rt.indirection.length > 0)) return undefined;
      columns.push(rt.name);
    }
    t = nextToken(b, close);
  } else colsAt = t.start;
  const overriding = body.override !== undefined && body.override !== 'OVERRIDING_NOT_SET';
  if (overriding) {
    if (!tokenIs(b, t, 'overriding')) return undefined;
    t = nextToken(b, nextToken(b, nextToken(b, t.end).end).end); // OVERRIDING SYSTEM|USER VALUE
  }
  const shape: InsertShape = { relation, columns, colsAt, source: 'select', overriding };
  const sel = (body.selectStmt as { SelectStmt?: Obj } | undefined)?.SelectStmt;
  if (!sel) {
    if (!tokenIs(b, t, 'default')) return undefined;
    const v = nextToken(b, t.end);
    if (!tokenIs(b, v, 'values')) return undefined;
    shape.source = 'default';
    shape.defaultValues = { start: t.start, end: v.end };
    return shape;
  }
  const plainValues =
    Array.isArray(sel.valuesLists) && !sel.sortClause && !sel.limitCount && !sel.limitOffset && !sel.withClause;
  if (plainValues && tokenIs(b, t, 'values')) {
    shape.source = 'values';
    shape.rows = [];
    let r = nextToken(b, t.end);
    for (const row of sel.valuesLists as unknown[]) {
      if (!isPunct(b, r, '(')) return undefined;
      const close = parenEnd(b, r.start);
      if (close < 0 || close > end) return undefined;
      const items = ((row as { List?: { items?: unknown[] } }).List?.items ?? []) as unknown[];
      const defaults: Array<{ index: number; start: number; end: number }> = [];
      items.forEach((it, index) => {
        if (nodeType(it) !== 'SetToDefault') return;
        const loc = ((it as { SetToDefault: Obj }).SetToDefault.location as number | undefined) ?? -1;
        const d = nextToken(b, loc);
        if (loc >= 0 && tokenIs(b, d, 'default')) defaults.push({ index, start: d.start, end: d.end });
      });
      if (defaults.length !== items.filter((it) => nodeType(it) === 'SetToDefault').length) return undefined;
      shape.rows.push({ end: close - 1, items: items.length, defaults });
      r = nextToken(b, close);
      if (isPunct(b, r, ',')) r = nextToken(b, r.end);
    }
    return shape;
  }
  // INSERT ... SELECT / TABLE / (query) / WITH ...: up to ON CONFLICT, RETURNING or the end
  const start = t.start;
  let stop = end;
  let u = t;
  while (u.type !== 'eof' && u.start < end) {
    if (isPunct(b, u, '(')) {
      const close = parenEnd(b, u.start);
      if (close < 0) return undefined;
      u = nextToken(b, close);
      continue;
    }
    if (tokenIs(b, u, 'returning')) {
      stop = u.start;
      break;
    }
    if (tokenIs(b, u, 'on') && tokenIs(b, nextToken(b, u.end), 'conflict')) {
      stop = u.start;
      break;
    }
    u = nextToken(b, u.end);
  }
  while (stop > start && (b[stop - 1] === 32 || (b[stop - 1]! >= 9 && b[stop - 1]! <= 13))) stop--;
  shape.select = { start, end: stop };
  const width = selectWidth(sel);
  if (width !== undefined) shape.selectWidth = width;
  const check = orderCheck(sel, 'INSERT ... SELECT');
  if (check) shape.orderCheck = check;
  return shape;
}

/** Names of the columns an UPDATE sets (SET a = ..., (b, c) = ...). */
export function updateColumns(body: Obj): string[] {
  const out: string[] = [];
  for (const t of Array.isArray(body.targetList) ? body.targetList : []) {
    const rt = (t as { ResTarget?: Obj }).ResTarget;
    if (rt && typeof rt.name === 'string') out.push(rt.name);
  }
  return out;
}


/** Output columns of a SELECT, when countable without the catalog (no *). */
function selectWidth(sel: Obj): number | undefined {
  if (sel.op && sel.op !== 'SETOP_NONE') return selectWidth((sel.larg ?? {}) as Obj);
  if (Array.isArray(sel.valuesLists)) return ((sel.valuesLists[0] as { List?: { items?: unknown[] } }).List?.items ?? []).length;
  const targets = Array.isArray(sel.targetList) ? sel.targetList : [];
  for (const t of targets) {
    const fields = ((t as { ResTarget?: Obj }).ResTarget?.val as { ColumnRef?: Obj } | undefined)?.ColumnRef?.fields;
    if (Array.isArray(fields) && fields.some((f) => nodeType(f) === 'A_Star')) return undefined;
  }
  return targets.length > 0 ? targets.length : undefined;
}
