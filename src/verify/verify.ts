// `pgquorum verify`: are the `up` nodes identical? (docs/cli.md "verify")
//
// 1. Ask the coordinator which nodes are `up` (SHOW pgquorum.nodes).
// 2. Consistent cut: take the commit barrier through the coordinator
//    (SET pgquorum.commit_barrier = on: no commit runs anywhere), open a
//    REPEATABLE READ READ ONLY transaction on every node and fix its snapshot,
//    read every sequence, release the barrier. Every snapshot then holds the
//    same committed transactions; the comparison runs in them while the
//    cluster goes on committing.
// 3. Tables (relkind 'r' outside the system schemas): the same columns and
//    key everywhere, then the rows in key order (primary key, else a unique
//    index over NOT NULL columns, else the whole row text) in chunks of
//    `chunkRows`: per chunk, count and md5 of the md5s of the rows. A chunk
//    that differs is compared row by row to name the first differing key.
//    Nodes are compared against the majority (ties: the group of the main
//    node).
// 4. Sequences: last_value and is_called. They are not transactional, so
//    they are read while the barrier is held and re-read for a moment when
//    they differ (a statement may be half-way through its nodes).
//
// Exit codes: 0 identical, 1 differences, 2 could not check.
import type { Config } from '../config/types.js';
import { SqlConn, SqlError, type Login } from './conn.js';

export const DEFAULT_CHUNK_ROWS = 10_000;
/** How long sequences may be re-read under one barrier hold when they differ. */
const SEQUENCE_SETTLE_MS = 100;
/** Barrier holds used for sequences in all (the first one is the snapshot's). */
const SEQUENCE_ROUNDS = 3;

export interface VerifyOptions {
  config: Config;
  /** User from config.users (default: the first). */
  user?: string;
  /** Database on the coordinator and the nodes (default: the user name). */
  dbname?: string;
  /** Only this table (`name` or `schema.name`); sequences are then skipped. */
  table?: string;
  chunkRows?: number;
  /** Coordinator address (default: config.coordinator, 0.0.0.0 -> 127.0.0.1). */
  host?: string;
  port?: number;
  /** Tests only: open the snapshots one node after the other with this pause in between (under the barrier). */
  snapshotStaggerMs?: number;
  /** Report lines as they become known (the text report, without summaryLine()). */
  print?: (line: string) => void;
}

export type DiffKind = 'missing table' | 'extra table' | 'columns' | 'key' | 'row differs' | 'row missing' | 'extra row' | 'rows' | 'value';

export interface Difference {
  /** The nodes that differ from `against`. */
  nodes: string[];
  /** The majority (or, without one, the main node's group). */
  against: string[];
  kind: DiffKind;
  /** First differing key, as PostgreSQL shows it: (id)=(42); for tables without a key: the row text. */
  key?: string;
  detail?: string;
}

export interface TableResult {
  name: string;
  status: 'ok' | 'differs' | 'error';
  /** How rows are ordered: key columns, or [] for the whole row. */
  key: string[];
  keyKind: 'primary key' | 'unique index' | 'row';
  /** Rows (when identical) */
  rows: number | null;
  /** Rows per node (when different). */
  counts?: Record<string, number | null>;
  chunks: number;
  differences: Difference[];
  error?: string;
}

export interface SequenceResult {
  name: string;
  status: 'ok' | 'differs';
  /** node -> "last_value, is_called" (null: no such sequence there). */
  values: Record<string, string | null>;
  differences: Difference[];
}

export interface VerifyReport {
  exitCode: 0 | 1 | 2;
  status: 'identical' | 'differences' | 'error';
  coordinator: string;
  database: string;
  user: string;
  nodes: string[];
  skipped: Array<{ id: string; state: string }>;
  /** Barrier holds, the snapshot's first: waited = taking it (commits in flight drain), held = as the coordinator measured it. */
  barrier: Array<{ waitedMs: number; heldMs: number }>;
  tables: TableResult[];
  sequences: SequenceResult[] | null;
  error?: string;
  elapsedMs: number;
}

/** Could not check: exit 2. */
class CannotCheck extends Error {}

const SESSION_SETTINGS = [
  "SET TimeZone = 'UTC'",
  "SET DateStyle = 'ISO, MDY'",
  'SET extra_float_digits = 3',
  "SET IntervalStyle = 'postgres'",
  "SET bytea_output = 'hex'",
  'SET standard_conforming_strings = on',
  'SET search_path = pg_catalog',
  'SET statement_timeout = 0',
  "SET lock_timeout = '10s'",
  'SET idle_in_transaction_session_timeout = 0',
].join('; ');

const USER_SCHEMAS = "n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'";

/** Sequences of user schemas, by quoted name. */
const SEQUENCE_LIST = `SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'S' AND ${USER_SCHEMAS} ORDER BY 1`;

/**
 * Tables of user schemas: quoted name, schema, name, columns (json: quoted
 * name, type, not null) and the key (json: primary, columns [quoted name,
 * type]) or null.
 */
const TABLE_LIST = `
SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), n.nspname, c.relname,
  (SELECT json_agg(json_build_array(quote_ident(a.attname), format_type(a.atttypid, a.atttypmod), a.attnotnull) ORDER BY a.attnum)
     FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped)::text,
  (SELECT json_build_object('primary', i.indisprimary, 'cols',
            (SELECT json_agg(json_build_array(quote_ident(a.attname), format_type(a.atttypid, a.atttypmod)) ORDER BY g.k)
               FROM generate_series(0, i.indnkeyatts - 1) g(k) JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[g.k]))
     FROM pg_index i
    WHERE i.indrelid = c.oid AND i.indisunique AND i.indisvalid AND i.indimmediate AND i.indpred IS NULL AND i.indexprs IS NULL
      AND NOT EXISTS (SELECT 1 FROM generate_series(0, i.indnkeyatts - 1) g(k) JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[g.k]
                      WHERE NOT a.attnotnull)
    ORDER BY i.indisprimary DESC, i.indnkeyatts, i.indexrelid LIMIT 1)::text
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND ${USER_SCHEMAS}
ORDER BY 1`;

interface TableDef {
  name: string;
  schema: string;
  rel: string;
  cols: string;
  keyJson: string;
  key: Array<{ col: string; type: string }>;
  primary: boolean;
}

function lit(v: string): string {
  return `'${v.replace(/'/g, "''")}'`;
}

function round1(ms: number): number {
  return Math.round(ms * 10) / 10;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Where a client reaches a coordinator that listens on `host`. */
function connectHost(host: string): string {
  if (host === '' || host === '0.0.0.0' || host === '*') return '127.0.0.1';
  if (host === '::' || host === '[::]') return '::1';
  return host;
}

/**
 * Group the nodes by signature; the majority is the largest group, ties go
 * to the group of the earliest node in `order`.
 */
export function majority(sig: Map<string, string>, order: string[]): { majority: string[]; others: string[][] } {
  const groups = new Map<string, string[]>();
  for (const id of order) {
    const s = sig.get(id);
    if (s === undefined) continue;
    const g = groups.get(s);
    if (g) g.push(id);
    else groups.set(s, [id]);
  }
  const list = [...groups.values()];
  let best = list[0] ?? [];
  for (const g of list) if (g.length > best.length) best = g;
  return { majority: best, others: list.filter((g) => g !== best) };
}

export function describeDifference(d: Difference): string {
  const who = d.nodes.join(', ');
  const vs = `${who} vs ${d.against.join(', ')}`;
  switch (d.kind) {
    case 'missing table':
      return `missing on ${who} (present on ${d.against.join(', ')})`;
    case 'extra table':
      return `only on ${who} (absent on ${d.against.join(', ')})`;
    case 'columns':
    case 'key':
    case 'rows':
    case 'value':
      return `${vs}: ${d.detail ?? d.kind}`;
    case 'row differs':
      return `${vs}: row differs at ${d.key}`;
    case 'row missing':
      return `${vs}: row missing on ${who} at ${d.key}`;
    case 'extra row':
      return `${vs}: extra row on ${who} at ${d.key}`;
  }
}

/** Compare the `up` nodes of the cluster; never throws (a failure is exit code 2). */
export async function verify(opts: VerifyOptions): Promise<VerifyReport> {
  const started = performance.now();
  const cfg = opts.config;
  const user = opts.user ?? cfg.users[0]?.name ?? '';
  const host = opts.host ?? connectHost(cfg.coordinator.host);
  const port = opts.port ?? cfg.coordinator.port;
  const database = opts.dbname ?? user;
  const print = opts.print ?? (() => {});
  const report: VerifyReport = {
    exitCode: 2,
    status: 'error',
    coordinator: `${host}:${port}`,
    database,
    user,
    nodes: [],
    skipped: [],
    barrier: [],
    tables: [],
    sequences: null,
    elapsedMs: 0,
  };
  const conns: SqlConn[] = [];
  let coord: SqlConn | null = null;
  try {
    const u = cfg.users.find((x) => x.name === user);
    if (!u) throw new CannotCheck(`user "${user}" is not in the config's users (${cfg.users.map((x) => x.name).join(', ')})`);
    const login: Login = { user, password: u.password, database, connectTimeoutMs: cfg.backend.connect_timeout * 1000 };
    try {
      coord = await SqlConn.connect({ id: 'coordinator', host, port }, login);
    } catch (e) {
      const state = e instanceof SqlError ? e.sqlstate : null;
      throw new CannotCheck(`${state === null || state.startsWith('08') ? 'the coordinator is unreachable' : 'the coordinator refused the login'}: ${errText(e)}`);
    }
    // 1. The up nodes.
    const shown = (await coord.query('SHOW pgquorum.nodes')).rows;
    const up: Array<{ id: string; host: string; port: number }> = [];
    for (const r of shown) {
      const id = r[0] ?? '';
      const state = r[3] ?? '';
      const conf = cfg.nodes.find((n) => n.id === id);
      if (state !== 'up') report.skipped.push({ id, state });
      else up.push({ id, host: conf?.host ?? r[1] ?? '', port: conf?.port ?? Number(r[2]) });
    }
    report.nodes = up.map((n) => n.id);
    const skippedText = report.skipped.length > 0 ? `; not checked: ${report.skipped.map((s) => `${s.id} (${s.state})`).join(', ')}` : '';
    if (up.length < 2) throw new CannotCheck(`only ${up.length} node(s) up (${report.nodes.join(', ') || 'none'}); at least 2 are needed${skippedText}`);
    print(`verify: database ${database}, nodes ${report.nodes.join(', ')}${skippedText}`);
    // Direct connections to every up node, with identical settings.
    const opened = await Promise.allSettled(up.map((n) => SqlConn.connect(n, login)));
    for (const o of opened) if (o.status === 'fulfilled') conns.push(o.value);
    const failed = opened.find((o): o is PromiseRejectedResult => o.status === 'rejected');
    if (failed) throw new CannotCheck(errText(failed.reason));
    await all(conns, SESSION_SETTINGS);
    if (opts.table === undefined) {
      // Warm the nodes' caches for what runs under the barrier, so that it is held for less time.
      const pre = await all(conns, SEQUENCE_LIST);
      await readSequences(conns, new Map([...pre].map(([id, rows]) => [id, rows.map((r) => r[0]!)]))).catch(() => null);
    }

    // 2. The consistent cut.
    const seqLists = new Map<string, string[]>();
    let seqValues = new Map<string, Map<string, string>>();
    await withBarrier(coord, report, async () => {
      const snap = `BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; ${opts.table === undefined ? SEQUENCE_LIST : 'SELECT 1'}`;
      const lists = opts.snapshotStaggerMs ? await staggered(conns, snap, opts.snapshotStaggerMs) : await all(conns, snap);
      if (opts.table !== undefined) return;
      for (const c of conns) seqLists.set(c.id, lists.get(c.id)!.map((r) => r[0]!));
      seqValues = await settleSequences(conns, seqLists);
    });
    for (let round = 1; round < SEQUENCE_ROUNDS && opts.table === undefined && !sequencesAgree(seqValues, seqLists); round++) {
      await withBarrier(coord, report, async () => {
        seqValues = await settleSequences(conns, seqLists);
      });
    }
    const b = report.barrier;
    print(
      `commit barrier: held ${b[0]!.heldMs.toFixed(1)} ms (taking it took ${b[0]!.waitedMs.toFixed(1)} ms)` +
        (b.length > 1 ? `; ${b.length - 1} more hold(s) to re-read sequences, longest ${Math.max(...b.slice(1).map((x) => x.heldMs)).toFixed(1)} ms` : ''),
    );

    // 3. Tables.
    const ids = conns.map((c) => c.id);
    const lists = await all(conns, TABLE_LIST);
    const defs = new Map<string, Map<string, TableDef>>(); // table -> node -> def
    for (const c of conns) {
      for (const r of lists.get(c.id)!) {
        const keyJson = r[4] ?? 'null';
        const k = JSON.parse(keyJson) as { primary: boolean; cols: Array<[string, string]> } | null;
        const def: TableDef = {
          name: r[0]!,
          schema: r[1]!,
          rel: r[2]!,
          cols: r[3] ?? '[]',
          keyJson,
          key: k ? k.cols.map(([col, type]) => ({ col, type })) : [],
          primary: k?.primary ?? false,
        };
        if (opts.table !== undefined && !tableMatches(opts.table, def)) continue;
        let m = defs.get(def.name);
        if (!m) defs.set(def.name, (m = new Map()));
        m.set(c.id, def);
      }
    }
    if (opts.table !== undefined && defs.size === 0) throw new CannotCheck(`no table matches "${opts.table}" on any node`);
    const chunkRows = opts.chunkRows ?? DEFAULT_CHUNK_ROWS;
    for (const name of [...defs.keys()].sort()) {
      const t = await compareTable(name, defs.get(name)!, conns, ids, chunkRows);
      report.tables.push(t);
      print(tableLine(t));
    }

    // 4. Sequences.
    if (opts.table === undefined) {
      report.sequences = compareSequences(seqValues, seqLists, ids);
      for (const s of report.sequences) print(sequenceLine(s));
    } else print('sequences: not checked (--table)');

    const differs = report.tables.some((t) => t.status === 'differs') || (report.sequences ?? []).some((s) => s.status === 'differs');
    const errors = report.tables.filter((t) => t.status === 'error');
    report.exitCode = differs ? 1 : errors.length > 0 ? 2 : 0;
    report.status = differs ? 'differences' : errors.length > 0 ? 'error' : 'identical';
    if (!differs && errors.length > 0) report.error = `could not check ${errors.map((t) => t.name).join(', ')}`;
  } catch (e) {
    report.exitCode = 2;
    report.status = 'error';
    report.error = e instanceof CannotCheck || e instanceof SqlError ? e.message : `internal error: ${errText(e)}`;
  } finally {
    for (const c of conns) c.close();
    coord?.close();
    report.elapsedMs = round1(performance.now() - started);
  }
  return report;
}

/** Run `sql` on every connection in parallel; rows by connection id. */
async function all(conns: SqlConn[], sql: string): Promise<Map<string, (string | null)[][]>> {
  const res = await Promise.all(conns.map((c) => c.query(sql)));
  return new Map(conns.map((c, i) => [c.id, res[i]!.rows]));
}

async function staggered(conns: SqlConn[], sql: string, pauseMs: number): Promise<Map<string, (string | null)[][]>> {
  const out = new Map<string, (string | null)[][]>();
  for (const [i, c] of conns.entries()) {
    if (i > 0) await sleep(pauseMs);
    out.set(c.id, (await c.query(sql)).rows);
  }
  return out;
}

/** Hold the commit barrier around `fn`; records the hold in the report. */
async function withBarrier(coord: SqlConn, report: VerifyReport, fn: () => Promise<void>): Promise<void> {
  const t0 = performance.now();
  try {
    await coord.query('SET pgquorum.commit_barrier = on');
  } catch (e) {
    throw new CannotCheck(`could not take the commit barrier: ${errText(e)}`);
  }
  const t1 = performance.now();
  let ok = false;
  try {
    await fn();
    ok = true;
  } finally {
    // On failure the connection may be closed anyway: the coordinator releases the barrier then.
    const r = await coord.query('SET pgquorum.commit_barrier = off').catch((e: unknown) => (ok ? Promise.reject(e) : null));
    const t2 = performance.now();
    if (r) {
      const warn = r.notices.find((n) => n['V'] === 'WARNING' || n['S'] === 'WARNING');
      if (warn) throw new CannotCheck(`${warn['M']}: the cut may not be consistent; retry`);
      const said = r.notices.map((n) => /released after ([\d.]+) ms/.exec(n['M'] ?? '')).find((m) => m);
      report.barrier.push({ waitedMs: round1(t1 - t0), heldMs: said ? Number(said[1]) : round1(t2 - t1) });
    }
  }
}

/** Read every sequence on every node; re-read while they differ, for at most SEQUENCE_SETTLE_MS. */
async function settleSequences(conns: SqlConn[], lists: Map<string, string[]>): Promise<Map<string, Map<string, string>>> {
  const t0 = performance.now();
  let values = await readSequences(conns, lists);
  while (!sequencesAgree(values, lists) && performance.now() - t0 < SEQUENCE_SETTLE_MS) {
    await sleep(10);
    values = await readSequences(conns, lists);
  }
  return values;
}

async function readSequences(conns: SqlConn[], lists: Map<string, string[]>): Promise<Map<string, Map<string, string>>> {
  const out = new Map<string, Map<string, string>>();
  await Promise.all(
    conns.map(async (c) => {
      const names = lists.get(c.id) ?? [];
      const m = new Map<string, string>();
      out.set(c.id, m);
      if (names.length === 0) return;
      const sql = names.map((n) => `SELECT ${lit(n)}, last_value::text, is_called::text FROM ${n}`).join(' UNION ALL ');
      for (const r of (await c.query(sql)).rows) m.set(r[0]!, `${r[1]}, ${r[2] === 'true' ? 't' : 'f'}`);
    }),
  );
  return out;
}

function sequencesAgree(values: Map<string, Map<string, string>>, lists: Map<string, string[]>): boolean {
  const names = new Set([...lists.values()].flat());
  for (const n of names) {
    const seen = new Set([...values.values()].map((m) => m.get(n) ?? null));
    if (seen.size > 1) return false;
  }
  return true;
}

function compareSequences(values: Map<string, Map<string, string>>, lists: Map<string, string[]>, ids: string[]): SequenceResult[] {
  const names = [...new Set([...lists.values()].flat())].sort();
  return names.map((name) => {
    const vals: Record<string, string | null> = {};
    const sig = new Map<string, string>();
    for (const id of ids) {
      const v = values.get(id)?.get(name) ?? null;
      vals[id] = v;
      sig.set(id, v ?? '\u0000absent');
    }
    const g = majority(sig, ids);
    const differences: Difference[] = g.others.map((nodes) => {
      const mine = vals[nodes[0]!];
      const theirs = vals[g.majority[0]!];
      if (mine === null) return { nodes, against: g.majority, kind: 'missing table' as const };
      if (theirs === null) return { nodes, against: g.majority, kind: 'extra table' as const };
      return { nodes, against: g.majority, kind: 'value' as const, detail: `last_value, is_called (${mine}) vs (${theirs})` };
    });
    return { name, status: differences.length > 0 ? 'differs' : 'ok', values: vals, differences };
  });
}

/** `NAME` or `schema.NAME` (double quotes allowed) against a table definition. */
function tableMatches(want: string, t: TableDef): boolean {
  const parts = want.match(/"(?:[^"]|"")*"|[^.]+/g)?.map((p) => (p.startsWith('"') ? p.slice(1, -1).replace(/""/g, '"') : p)) ?? [];
  if (parts.length === 1) return parts[0] === t.rel || want === t.name;
  if (parts.length === 2) return (parts[0] === t.schema && parts[1] === t.rel) || want === t.name;
  return false;
}

function keyText(cols: string[], vals: (string | null)[]): string {
  return `(${cols.join(', ')})=(${vals.map((v) => v ?? 'NULL').join(', ')})`;
}

function shorten(s: string, n = 200): string {
  return s.length <= n ? s : `${s.slice(0, n)}...`;
}

async function compareTable(name: string, byNode: Map<string, TableDef>, conns: SqlConn[], ids: string[], chunkRows: number): Promise<TableResult> {
  const res: TableResult = { name, status: 'ok', key: [], keyKind: 'row', rows: null, chunks: 0, differences: [] };
  // Same table, columns and key on every node?
  const sig = new Map<string, string>();
  for (const id of ids) {
    const d = byNode.get(id);
    sig.set(id, d ? `${d.cols}\u0000${d.keyJson}` : '\u0000absent');
  }
  const g = majority(sig, ids);
  const ref = byNode.get(g.majority[0]!) ?? [...byNode.values()][0]!;
  res.key = ref.key.map((k) => k.col);
  res.keyKind = ref.key.length === 0 ? 'row' : ref.primary ? 'primary key' : 'unique index';
  if (g.others.length > 0) {
    res.status = 'differs';
    for (const nodes of g.others) {
      const mine = byNode.get(nodes[0]!);
      const theirs = byNode.get(g.majority[0]!);
      if (!mine) res.differences.push({ nodes, against: g.majority, kind: 'missing table' });
      else if (!theirs) res.differences.push({ nodes, against: g.majority, kind: 'extra table' });
      else if (mine.cols !== theirs.cols) {
        res.differences.push({ nodes, against: g.majority, kind: 'columns', detail: `columns (${colsText(mine.cols)}) vs (${colsText(theirs.cols)})` });
      } else {
        res.differences.push({ nodes, against: g.majority, kind: 'key', detail: `row order key (${keyDefText(mine)}) vs (${keyDefText(theirs)})` });
      }
    }
    return res;
  }
  const tconns = conns.filter((c) => byNode.has(c.id));
  try {
    await all(tconns, 'SAVEPOINT pgquorum_verify');
    if (ref.key.length > 0) await compareKeyed(res, ref, tconns, chunkRows);
    else await compareWholeRows(res, ref, tconns, chunkRows);
    await all(tconns, 'RELEASE SAVEPOINT pgquorum_verify');
    if (res.status === 'differs') {
      const counts = await all(tconns, `SELECT count(*)::text FROM ${ref.name}`);
      res.counts = {};
      for (const c of tconns) res.counts[c.id] = Number(counts.get(c.id)![0]![0]);
    }
  } catch (e) {
    res.status = 'error';
    res.error = errText(e);
    await Promise.all(tconns.map((c) => c.query('ROLLBACK TO SAVEPOINT pgquorum_verify; RELEASE SAVEPOINT pgquorum_verify').catch(() => null)));
  }
  return res;
}

function colsText(json: string): string {
  const cols = JSON.parse(json) as Array<[string, string, boolean]> | null;
  return (cols ?? []).map(([n, t, nn]) => `${n} ${t}${nn ? ' not null' : ''}`).join(', ');
}

function keyDefText(d: TableDef): string {
  return d.key.length === 0 ? 'whole row' : `${d.primary ? 'primary key' : 'unique'} ${d.key.map((k) => k.col).join(', ')}`;
}

function keyedChunkSql(t: TableDef, after: string[] | null, limit: number): { chunk: string; rows: string } {
  const cols = t.key.map((k) => `pgq_t.${k.col}`);
  const where = after ? ` WHERE (${cols.join(', ')}) > (${after.map((v, i) => `${lit(v)}::${t.key[i]!.type}`).join(', ')})` : '';
  const order = cols.join(', ');
  const ks = t.key.map((_, i) => `k${i}`);
  const chunk =
    `WITH c AS MATERIALIZED (SELECT md5(ROW(pgq_t.*)::text) AS h, ${cols.map((c, i) => `${c} AS k${i}`).join(', ')}` +
    ` FROM ${t.name} pgq_t${where} ORDER BY ${order} LIMIT ${limit})` +
    ` SELECT (SELECT count(*) FROM c)::text, (SELECT md5(string_agg(h, '' ORDER BY ${ks.join(', ')})) FROM c), l.*` +
    ` FROM (SELECT 1) one LEFT JOIN LATERAL (SELECT ${ks.map((k) => `c.${k}::text AS last_${k}`).join(', ')} FROM c ORDER BY ${ks.map((k) => `c.${k} DESC`).join(', ')} LIMIT 1) l ON true`;
  const rows = `SELECT md5(ROW(pgq_t.*)::text), ${cols.map((c) => `${c}::text`).join(', ')} FROM ${t.name} pgq_t${where} ORDER BY ${order} LIMIT ${limit}`;
  return { chunk, rows };
}

async function compareKeyed(res: TableResult, t: TableDef, conns: SqlConn[], chunkRows: number): Promise<void> {
  const ids = conns.map((c) => c.id);
  let after: string[] | null = null;
  let rows = 0;
  for (;;) {
    const q = keyedChunkSql(t, after, chunkRows);
    const out = await all(conns, q.chunk);
    const sig = new Map(ids.map((id) => [id, JSON.stringify(out.get(id)![0] ?? null)]));
    const g = majority(sig, ids);
    if (g.others.length === 0) {
      const r = out.get(ids[0]!)![0]!;
      const n = Number(r[0]);
      if (n === 0) break;
      rows += n;
      res.chunks++;
      if (n < chunkRows) break;
      after = r.slice(2).map((v) => v ?? '');
      continue;
    }
    // This chunk differs: row by row, each other group against the majority.
    res.status = 'differs';
    res.chunks++;
    const byId = new Map(conns.map((c) => [c.id, c]));
    const ref = byId.get(g.majority[0]!)!;
    const refRows = (await ref.query(q.rows)).rows;
    for (const nodes of g.others) {
      const other = byId.get(nodes[0]!)!;
      const otherRows = (await other.query(q.rows)).rows;
      const d = await firstDifference(refRows, otherRows, (r) => r.slice(1), (a, b) => rowLess(ref, t, a, b));
      const key = d ? keyText(res.key, d.row.slice(1)) : undefined;
      res.differences.push(
        d
          ? { nodes, against: g.majority, kind: d.kind, key }
          : { nodes, against: g.majority, kind: 'rows', detail: `chunk after ${after ? keyText(res.key, after) : 'the start'} differs` },
      );
    }
    return;
  }
  res.rows = rows;
}

async function compareWholeRows(res: TableResult, t: TableDef, conns: SqlConn[], chunkRows: number): Promise<void> {
  const ids = conns.map((c) => c.id);
  const rowText = `(SELECT ROW(pgq_t.*)::text AS r FROM ${t.name} pgq_t) s0`;
  const out = await all(
    conns,
    `SELECT count(*)::text, md5(string_agg(h, '' ORDER BY rn)) FROM (SELECT row_number() OVER (ORDER BY r) AS rn, md5(r) AS h FROM ${rowText}) s` +
      ` GROUP BY (rn - 1) / ${chunkRows} ORDER BY (rn - 1) / ${chunkRows}`,
  );
  const most = Math.max(...ids.map((id) => out.get(id)!.length));
  for (let i = 0; i < most; i++) {
    const sig = new Map(ids.map((id) => [id, JSON.stringify(out.get(id)![i] ?? null)]));
    const g = majority(sig, ids);
    res.chunks++;
    if (g.others.length === 0) continue;
    res.status = 'differs';
    const byId = new Map(conns.map((c) => [c.id, c]));
    const ref = byId.get(g.majority[0]!)!;
    const q = `SELECT r, '' FROM ${rowText} ORDER BY r LIMIT ${chunkRows} OFFSET ${i * chunkRows}`;
    const refRows = (await ref.query(q)).rows;
    for (const nodes of g.others) {
      const otherRows = (await byId.get(nodes[0]!)!.query(q)).rows;
      const d = await firstDifference(refRows, otherRows, (r) => [r[0]], (a, b) => textLess(ref, a[0]!, b[0]!));
      res.differences.push(
        d
          ? { nodes, against: g.majority, kind: d.kind, key: `row ${shorten(d.row[0] ?? '')}` }
          : { nodes, against: g.majority, kind: 'rows', detail: `rows ${i * chunkRows + 1}-${(i + 1) * chunkRows} in row order differ` },
      );
    }
    return;
  }
  res.rows = ids.length > 0 ? out.get(ids[0]!)!.reduce((n, r) => n + Number(r[0]), 0) : 0;
}

/**
 * First difference between two lists of rows in the same order, from the same
 * start: [hash, key...]. A key present in only one list is missing or extra
 * depending on which key sorts first (asked of the node: `less`).
 */
async function firstDifference(
  a: (string | null)[][],
  b: (string | null)[][],
  key: (r: (string | null)[]) => (string | null)[],
  less: (ka: (string | null)[], kb: (string | null)[]) => Promise<boolean>,
): Promise<{ kind: 'row differs' | 'row missing' | 'extra row'; row: (string | null)[] } | null> {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const ra = a[i]!;
    const rb = b[i]!;
    const ka = key(ra);
    const kb = key(rb);
    const sameKey = ka.length === kb.length && ka.every((v, j) => v === kb[j]);
    if (sameKey) {
      if (ra[0] !== rb[0]) return { kind: 'row differs', row: ra };
      continue;
    }
    return (await less(ka, kb)) ? { kind: 'row missing', row: ra } : { kind: 'extra row', row: rb };
  }
  if (a.length > n) return { kind: 'row missing', row: a[n]! };
  if (b.length > n) return { kind: 'extra row', row: b[n]! };
  return null;
}

async function rowLess(c: SqlConn, t: TableDef, a: (string | null)[], b: (string | null)[]): Promise<boolean> {
  const row = (v: (string | null)[]) => `ROW(${v.map((x, i) => `${lit(x ?? '')}::${t.key[i]!.type}`).join(', ')})`;
  const r = await c.query(`SELECT (${row(a)} < ${row(b)})::text`);
  return r.rows[0]?.[0] === 'true';
}

async function textLess(c: SqlConn, a: string, b: string): Promise<boolean> {
  const r = await c.query(`SELECT (${lit(a)}::text < ${lit(b)}::text)::text`);
  return r.rows[0]?.[0] === 'true';
}

// ---- text report -------------------------------------------------------------

export function tableLine(t: TableResult): string {
  const how = t.keyKind === 'row' ? 'whole rows' : `${t.keyKind} ${t.key.join(', ')}`;
  if (t.status === 'ok') return `table ${t.name}: OK, ${t.rows} rows, ${t.chunks} chunk${t.chunks === 1 ? '' : 's'} (${how})`;
  if (t.status === 'error') return `table ${t.name}: COULD NOT CHECK: ${t.error}`;
  const counts = t.counts ? `; rows ${Object.entries(t.counts).map(([id, n]) => `${id} ${n}`).join(', ')}` : '';
  return `table ${t.name}: DIFFERS: ${t.differences.map(describeDifference).join('; ')}${counts}`;
}

export function sequenceLine(s: SequenceResult): string {
  if (s.status === 'ok') return `sequence ${s.name}: OK (last_value, is_called = ${Object.values(s.values)[0]})`;
  return `sequence ${s.name}: DIFFERS: ${s.differences.map(describeDifference).join('; ')}`;
}

export function summaryLine(r: VerifyReport): string {
  if (r.exitCode === 2 && r.tables.length === 0) return `verify: could not check: ${r.error}`;
  const nt = r.tables.length;
  const ns = r.sequences?.length ?? 0;
  const diffT = r.tables.filter((t) => t.status === 'differs').length;
  const diffS = (r.sequences ?? []).filter((s) => s.status === 'differs').length;
  const what = `${nt} table${nt === 1 ? '' : 's'}${r.sequences ? `, ${ns} sequence${ns === 1 ? '' : 's'}` : ''} on ${r.nodes.join(', ')}`;
  const time = `in ${(r.elapsedMs / 1000).toFixed(1)} s`;
  if (r.exitCode === 0) return `verify: IDENTICAL: ${what} ${time}`;
  if (r.exitCode === 1) {
    return `verify: DIFFERENT: ${diffT} table${diffT === 1 ? '' : 's'} and ${diffS} sequence${diffS === 1 ? '' : 's'} differ (${what}) ${time}`;
  }
  return `verify: could not check: ${r.error} (${what})`;
}
