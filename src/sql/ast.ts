// Small helpers for reading libpg_query's JSON parse tree.

export type Obj = Record<string, unknown>;

/** The parts of a String-node list (function names, type names), as written. */
export function nameParts(list: unknown): string[] {
  const out: string[] = [];
  if (!Array.isArray(list)) return out;
  for (const item of list) {
    const s = (item as { String?: { sval?: string } }).String;
    if (s) out.push(s.sval ?? '');
  }
  return out;
}

/** The single node type name of a wrapped node ({"SelectStmt": {...}}), if it is one. */
export function nodeType(v: unknown): string | undefined {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
  let only: string | undefined;
  let count = 0;
  for (const k in v as Obj) if (count++ === 0) only = k;
  if (count !== 1 || only === undefined) return undefined;
  const c = only.charCodeAt(0);
  return c >= 65 && c <= 90 ? only : undefined;
}

/** A_Const string value, if the node is one. */
export function constString(v: unknown): string | undefined {
  const c = (v as { A_Const?: { sval?: { sval?: string } } } | undefined)?.A_Const;
  if (!c || !c.sval) return undefined;
  return c.sval.sval ?? '';
}
