// What the determinism planner needs to know from the nodes' catalog: each
// table's columns and defaults (which defaults call now(), random(),
// gen_random_uuid() or a sequence), its key, and the volatility of user
// functions. Read from the main node through the session's own connection
// (same database, same search_path), cached for every session, and dropped
// after DDL (docs/determinism.md "Catalog cache").

import type { NodeConnection } from '../backend/node-connection.js';
import { firstRowText } from '../protocol/backend.js';
import { encodeQuery } from '../protocol/frontend.js';
import { PgqError, SqlState } from '../errors.js';
import { classify } from '../sql/classify.js';

export interface ColumnInfo {
  name: string;
  /** the default expression as pg_get_expr() prints it, or null */
  default: string | null;
  /** attidentity: '' | 'a' (ALWAYS) | 'd' (BY DEFAULT) */
  identity: string;
  /** attgenerated: '' | 's' */
  generated: string;
  /** the default must be given an explicit value: it reads a clock or the random generator */
  fill: boolean;
  /** sequences the default (or the identity) draws from */
  sequences: string[];
  /** the default calls random() (after the UUID rewrite) */
  random: boolean;
  /** no default, or one that calls no function and reads no table */
  constant: boolean;
  /** the default or generation expression calls a function that is not built in */
  userFunctions: boolean;
}

export interface TableInfo {
  /** regclass text (quoted, qualified when not visible) */
  name: string;
  columns: ColumnInfo[];
  /** primary key, or a unique index over NOT NULL columns; null if none */
  key: string[] | null;
  /**
   * Its writes read nothing beyond the rows they lock (writes held until
   * COMMIT, docs/routing.md): an ordinary table without inheritance
   * children, rules, row security or user triggers, whose column defaults
   * are constants.
   */
  selfContained: boolean;
  /**
   * Its writes run no user code beyond the functions the statement itself
   * calls: an ordinary table without inheritance children, rules, row
   * security or user triggers, whose defaults and generated columns call
   * only built-in functions (Router.readsShareable()).
   */
  noUserCode: boolean;
}

const TABLE_SQL = (rel: string): string => `SELECT pg_catalog.json_build_object(
 'name', c.oid::pg_catalog.regclass::pg_catalog.text,
 'columns', (SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
     'n', a.attname, 'd', pg_catalog.pg_get_expr(d.adbin, d.adrelid), 'i', a.attidentity, 'g', a.attgenerated,
     's', CASE WHEN a.attidentity <> '' THEN pg_catalog.pg_get_serial_sequence(c.oid::pg_catalog.regclass::pg_catalog.text, a.attname) END)
     ORDER BY a.attnum)
   FROM pg_catalog.pg_attribute a LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
   WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
 'plain', c.relkind = 'r' AND NOT c.relhassubclass AND NOT c.relhasrules AND NOT c.relrowsecurity
   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t WHERE t.tgrelid = c.oid AND NOT t.tgisinternal),
 'key', (SELECT pg_catalog.json_agg(a.attname ORDER BY k.ord)
   FROM (SELECT i.indkey, i.indrelid FROM pg_catalog.pg_index i
         WHERE i.indrelid = c.oid AND i.indisunique AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.unnest(i.indkey) u(n) JOIN pg_catalog.pg_attribute x
                           ON x.attrelid = i.indrelid AND x.attnum = u.n WHERE NOT x.attnotnull)
         ORDER BY i.indisprimary DESC, i.indnatts LIMIT 1) ix
        CROSS JOIN LATERAL pg_catalog.unnest(ix.indkey) WITH ORDINALITY k(attnum, ord)
        JOIN pg_catalog.pg_attribute a ON a.attrelid = ix.indrelid AND a.attnum = k.attnum))
FROM pg_catalog.pg_class c WHERE c.oid = pg_catalog.to_regclass(${quoteLiteral(rel)})`;

const FUNC_SQL = (name: string): string => {
  const dot = name.lastIndexOf('.');
  const bare = name.slice(dot + 1);
  const where = dot < 0
    ? `p.proname = ${quoteLiteral(bare)} AND pg_catalog.pg_function_is_visible(p.oid)`
    : `p.proname = ${quoteLiteral(bare)} AND p.pronamespace = pg_catalog.to_regnamespace(pg_catalog.quote_ident(${quoteLiteral(name.slice(0, dot))}))`;
  return `SELECT pg_catalog.count(*), pg_catalog.count(*) FILTER (WHERE p.provolatile = 'v' OR p.prokind = 'p') FROM pg_catalog.pg_proc p WHERE ${where}`;
};

export function quoteLiteral(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}


function analyseDefault(expr: string): Pick<ColumnInfo, 'fill' | 'sequences' | 'random' | 'constant' | 'userFunctions'> {
  const st = classify(`SELECT ${expr}`).statements[0];
  if (!st || st.syntaxError) return { fill: false, sequences: [], random: false, constant: false, userFunctions: true };
  const random = st.random === true;
  const constant = st.functions.length === 0 && st.relations.length === 0;
  const userFunctions = (st.unknownFunctions?.length ?? 0) > 0;
  return { fill: st.needsRewrite === true || random, sequences: st.sequences ?? [], random, constant, userFunctions };
}

/** Whether a generation expression may call a function that is not built in (unparsable: it may). */
function callsUserFunctions(expr: string | null): boolean {
  if (expr === null) return false;
  const st = classify(`SELECT ${expr}`).statements[0];
  return !st || st.syntaxError === true || (st.unknownFunctions?.length ?? 0) > 0;
}

interface Entry<T> {
  value: T;
  at: number;
}

/** How long an entry is trusted without DDL through this coordinator (DDL straight on the nodes, other coordinators). */
const TTL_MS = 10_000;

export class CatalogCache {
  private readonly tables = new Map<string, Entry<TableInfo | null>>();
  private readonly functions = new Map<string, Entry<boolean>>();
  private generation = 0;

  /** After DDL: everything may have changed. */
  invalidate(): void {
    this.generation++;
    this.tables.clear();
    this.functions.clear();
  }

  get size(): number {
    return this.tables.size + this.functions.size;
  }

  private fresh<T>(e: Entry<T> | undefined): e is Entry<T> {
    return e !== undefined && Date.now() - e.at < TTL_MS;
  }

  /** Cached table info, without asking a node (undefined: not cached). */
  peekTable(scope: string, rel: string): TableInfo | null | undefined {
    const e = this.tables.get(`${scope}\0${rel}`);
    return this.fresh(e) ? e.value : undefined;
  }

  /** Table info (null when the name is not a table the session can see). `cacheable` false inside a transaction that ran DDL. */
  async table(conn: NodeConnection, scope: string, rel: string, cacheable: boolean): Promise<TableInfo | null> {
    const key = `${scope}\0${rel}`;
    const hit = this.tables.get(key);
    if (this.fresh(hit)) return hit.value;
    const gen = this.generation;
    const row = await queryOne(conn, TABLE_SQL(rel));
    let info: TableInfo | null = null;
    if (row && row[0] !== null) {
      const j = JSON.parse(row[0]!) as {
        name: string;
        columns: Array<{ n: string; d: string | null; i: string; g: string; s: string | null }> | null;
        key: string[] | null;
        plain: boolean;
      };
      const columns = (j.columns ?? []).map((c) => {
        const a =
          c.d !== null && c.g === ''
            ? analyseDefault(c.d)
            : { fill: false, sequences: [], random: false, constant: true, userFunctions: callsUserFunctions(c.d) };
        if (c.s) a.sequences = [...a.sequences, c.s];
        if (c.i !== '') a.constant = false;
        return { name: c.n, default: c.d, identity: c.i, generated: c.g, ...a };
      });
      info = {
        name: j.name,
        key: j.key,
        columns,
        selfContained: j.plain && columns.every((c) => c.constant),
        noUserCode: j.plain && columns.every((c) => !c.userFunctions),
      };
    }
    if (cacheable && gen === this.generation) this.tables.set(key, { value: info, at: Date.now() });
    return info;
  }

  /** Whether any function of that name the session can see is volatile (or a procedure), or unknown. */
  async functionVolatile(conn: NodeConnection, scope: string, name: string, cacheable: boolean): Promise<boolean> {
    const key = `${scope}\0${name}`;
    const hit = this.functions.get(key);
    if (this.fresh(hit)) return hit.value;
    const gen = this.generation;
    const row = await queryOne(conn, FUNC_SQL(name));
    // not found (a typo, or created in this very transaction): treat as volatile; the node reports the error
    const volatile = !row || row[0] === '0' || row[1] !== '0';
    if (cacheable && gen === this.generation) this.functions.set(key, { value: volatile, at: Date.now() });
    return volatile;
  }
}

/** One row of text values from a catalog query on `conn` (which must be idle). */
async function queryOne(conn: NodeConnection, sql: string): Promise<Array<string | null> | null> {
  const r = await conn.exchange(encodeQuery(sql), { buffer: true });
  if (r.lost) throw r.lost;
  if (r.error) {
    throw new PgqError('ERR_CATALOG_QUERY', `catalog lookup failed on node ${conn.node.id}: ${r.error['M'] ?? '?'}`, {
      sqlstate: r.error['C'] ?? SqlState.INTERNAL_ERROR,
    });
  }
  return firstRowText(r.frames);
}
